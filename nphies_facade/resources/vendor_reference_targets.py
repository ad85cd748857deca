"""Builds `data/reference-targets.json` from the R4 StructureDefinitions: which types each Reference may name.

Run once when the source changes:
`python -m nphies_facade.resources.vendor_reference_targets /tmp/pkgs/hl7.fhir.r4.examples-4.0.1/package`

The table has one object per resource type and per complex datatype that holds references. Keys are
element paths below that type in JSON names, without the type (`insurance.coverage`, a choice expanded:
`valueReference`); a value is
- a list of the resource types a Reference there may name (absent from the table: any type, as for
  targetProfile `Resource`),
- `"@Identifier"`: the element is that datatype, whose own object continues the path,
- `"#item"`: the element repeats the element at that path (contentReference), whose keys continue it.
"""

import sys
from pathlib import Path

import orjson

DATA_FILE = Path(__file__).with_name("data") / "reference-targets.json"
ANY = ("Resource", "DomainResource", "Any")


def _definitions(package: Path) -> list[dict]:
    return [orjson.loads(path.read_bytes()) for path in sorted(package.glob("StructureDefinition-*.json"))]


def _json_names(element: dict, root: str) -> list[tuple[str, dict]]:
    """(path below the root in JSON names, type entry) for each type of the element."""
    path = element["path"][len(root) + 1 :]
    types = element.get("type") or []
    if not path.endswith("[x]"):
        return [(path, t) for t in types]
    stem = path[:-3]
    return [(stem + t["code"][0].upper() + t["code"][1:], t) for t in types]


def build(package: Path) -> dict:
    definitions = [
        sd
        for sd in _definitions(package)
        if sd.get("derivation") == "specialization" and sd.get("kind") in ("resource", "complex-type")
    ]
    type_of_url = {sd["url"]: sd["type"] for sd in definitions}
    datatypes = {sd["type"] for sd in definitions if sd["kind"] == "complex-type"}
    raw: dict[str, dict[str, object]] = {}
    for sd in definitions:
        root = sd["type"]
        entries: dict[str, object] = {}
        for element in sd["snapshot"]["element"][1:]:
            if "contentReference" in element:
                entries[element["path"][len(root) + 1 :]] = "#" + element["contentReference"].split(".", 1)[1]
                continue
            for name, kind in _json_names(element, root):
                if name.split(".")[-1] in ("extension", "modifierExtension"):
                    continue  # Extension: any target, handled by the walk
                if kind["code"] == "Reference":
                    targets = sorted(
                        {type_of_url.get(p, p.rsplit("/", 1)[-1]) for p in kind.get("targetProfile", [])}
                    )
                    entries[name] = [] if not targets or set(targets) & set(ANY) else targets
                elif kind["code"] in datatypes and kind["code"] not in (
                    "Extension",
                    "Element",
                    "BackboneElement",
                ):
                    entries[name] = "@" + kind["code"]
        raw[root] = entries
    holding = _holding_references(raw)
    table: dict[str, dict[str, object]] = {}
    for root, entries in raw.items():
        kept = {
            name: value
            for name, value in entries.items()
            if not (isinstance(value, str) and value.startswith("@") and value[1:] not in holding)
            and value != []
        }
        if kept and (root in holding or root not in datatypes):
            table[root] = kept
    return table


def _holding_references(raw: dict[str, dict[str, object]]) -> set[str]:
    """The types that hold a Reference somewhere, directly or through their datatypes."""
    holding = {root for root, entries in raw.items() if any(isinstance(v, list) for v in entries.values())}
    changed = True
    while changed:
        changed = False
        for root, entries in raw.items():
            if root not in holding and any(
                isinstance(v, str) and v.startswith("@") and v[1:] in holding for v in entries.values()
            ):
                holding.add(root)
                changed = True
    return holding


def main(argv: list[str]) -> None:
    table = build(Path(argv[1]))
    DATA_FILE.write_bytes(orjson.dumps(table, option=orjson.OPT_SORT_KEYS))
    print(f"wrote {sum(len(v) for v in table.values())} elements of {len(table)} types to {DATA_FILE}")


if __name__ == "__main__":
    main(sys.argv)
