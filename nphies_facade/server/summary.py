"""`_summary` and `_elements`: the parts of a resource a search returns, tagged SUBSETTED.

Which elements are summary and which are mandatory comes from the R4 4.0.1 StructureDefinitions
(`resources/data/r4-elements.json`, written by resources/vendor_schema.py).
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson

from .. import exact_json

ELEMENTS_FILE = Path(__file__).resolve().parents[1] / "resources" / "data" / "r4-elements.json"
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
ALWAYS = frozenset({"resourceType", "id", "meta"})


@dataclass(frozen=True, slots=True)
class Elements:
    """The JSON names of one resource type's elements: summary ones, mandatory ones, and each choice
    element's group (`deceased` -> deceasedBoolean, deceasedDateTime)."""

    summary: frozenset[str]
    mandatory: frozenset[str]
    choices: dict[str, frozenset[str]]


@cache
def _tables() -> dict[str, dict]:
    return orjson.loads(ELEMENTS_FILE.read_bytes())


@cache
def elements_of(resource_type: str) -> Elements:
    table = _tables().get(resource_type)
    if table is None:
        return Elements(frozenset(), frozenset(), {})
    return Elements(
        frozenset(table["summary"]),
        frozenset(table["mandatory"]),
        {group: frozenset(names) for group, names in table["choices"].items()},
    )


def _keep(resource: dict, names: set[str]) -> dict:
    """The resource with only `names` (and their `_name` primitive extensions), tagged SUBSETTED."""
    kept = {k: v for k, v in resource.items() if k in names or (k.startswith("_") and k[1:] in names)}
    return _tagged(kept)


def _tagged(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(t.get("code") == "SUBSETTED" and t.get("system") == SUBSETTED["system"] for t in tags):
        tags.append(SUBSETTED)
    meta["tag"] = tags
    resource["meta"] = meta
    return resource


def summarized(resource: dict, mode: str) -> dict:
    """`_summary=true|text|data` applied to a resource."""
    if mode == "data":
        return _tagged({k: v for k, v in resource.items() if k != "text"})
    known = elements_of(resource["resourceType"])
    if mode == "text":
        return _keep(resource, set(ALWAYS | known.mandatory | {"text"}))
    return _keep(resource, set(ALWAYS | known.summary))


def with_elements(resource: dict, names: tuple[str, ...]) -> dict:
    """`_elements=a,b` applied to a resource: those top-level elements plus the mandatory ones."""
    known = elements_of(resource["resourceType"])
    wanted = set(ALWAYS | known.mandatory)
    for name in names:
        wanted.add(name)
        wanted |= known.choices.get(name, frozenset())
    return _keep(resource, wanted)


def shaped_body(body: bytes, summary: str | None, elements: tuple[str, ...]) -> object:
    """The stored JSON as it goes into a searchset entry (untouched bytes when nothing is subsetted)."""
    if summary in (None, "false", "count") and not elements:
        return orjson.Fragment(body)
    resource = exact_json.loads(body)
    if summary in ("true", "text", "data"):
        return summarized(resource, summary)
    return with_elements(resource, elements)
