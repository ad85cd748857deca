"""Slim the official R4 SearchParameter bundle into the vendored `data/search-parameters.json`.

Run once when the source changes:
`python -m nphies_facade.resources.search.vendor_definitions ../shared/fhir-examples/Bundle-searchParams.json`
"""

import sys
from pathlib import Path

import orjson

KEPT_FIELDS = (
    "url",
    "code",
    "base",
    "type",
    "expression",
    "target",
    "component",
    "multipleOr",
    "multipleAnd",
    "modifier",
    "comparator",
    "xpathUsage",
)
DATA_FILE = Path(__file__).with_name("data") / "search-parameters.json"


def slim_definition(resource: dict) -> dict:
    """The fields the server uses, in a fixed order; components keep definition and expression only."""
    slim = {field: resource[field] for field in KEPT_FIELDS if field in resource}
    if "component" in slim:
        slim["component"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in slim["component"]
        ]
    return slim


def slim_bundle(bundle: dict) -> list[dict]:
    return [slim_definition(entry["resource"]) for entry in bundle["entry"]]


def main(argv: list[str]) -> None:
    source = Path(argv[1])
    definitions = slim_bundle(orjson.loads(source.read_bytes()))
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_bytes(orjson.dumps(definitions))
    print(f"wrote {len(definitions)} definitions to {DATA_FILE}")


if __name__ == "__main__":
    main(sys.argv)
