"""Small readers for FHIR JSON dicts: codings, extensions, identifiers and GUIDs."""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import exact_json

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, strings, numbers), several times faster than copy.deepcopy."""
    return exact_json.copy(value)


def new_guid() -> str:
    return str(uuid.uuid4())


def is_guid(value: Any) -> bool:
    """True for the 36-character GUID form NPHIES requires of Bundle.id and MessageHeader.id."""
    return isinstance(value, str) and bool(_GUID.match(value))


@dataclass(frozen=True)
class Identifier:
    """A business identifier (system, value); the correlation key of claims and their responses."""

    system: str | None
    value: str

    @classmethod
    def from_fhir(cls, data: Any) -> "Identifier | None":
        if not isinstance(data, dict) or not isinstance(data.get("value"), str):
            return None
        system = data.get("system")
        return cls(system if isinstance(system, str) else None, data["value"])

    def to_fhir(self) -> dict:
        return {"system": self.system, "value": self.value} if self.system else {"value": self.value}

    def __str__(self) -> str:
        return f"{self.system}|{self.value}" if self.system else self.value


def items(value: Any) -> list:
    """An array element's items; anything else (absent, or not an array) as no items."""
    return value if isinstance(value, list) else []


def first_identifier(resource: dict) -> Identifier | None:
    identifiers = resource.get("identifier")
    if isinstance(identifiers, dict):
        return Identifier.from_fhir(identifiers)
    for item in items(identifiers):
        found = Identifier.from_fhir(item)
        if found:
            return found
    return None


def codings(concept: Any) -> Iterator[dict]:
    """The codings of a CodeableConcept (or a bare Coding)."""
    if not isinstance(concept, dict):
        return
    if "coding" in concept:
        yield from (c for c in items(concept.get("coding")) if isinstance(c, dict))
    elif "code" in concept:
        yield concept


def code_of(concept: Any, system: str | None = None) -> str | None:
    """The first code of a CodeableConcept or Coding, optionally only from one system."""
    for coding in codings(concept):
        if system is None or coding.get("system") == system:
            code = coding.get("code")
            if isinstance(code, str):
                return code.strip()
    return None


def extensions(element: Any, url: str) -> list[dict]:
    if not isinstance(element, dict):
        return []
    return [e for e in items(element.get("extension")) if isinstance(e, dict) and e.get("url") == url]


def extension_value(element: Any, url: str) -> Any:
    """The value[x] of the first extension with this url, or None."""
    for ext in extensions(element, url):
        for key, value in ext.items():
            if key.startswith("value"):
                return value
    return None


def money(value: Any) -> float | None:
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        return float(value["value"])
    return None


def has_tag(resource: dict, code: str) -> bool:
    return any(
        isinstance(t, dict) and t.get("code") == code for t in (resource.get("meta") or {}).get("tag") or []
    )
