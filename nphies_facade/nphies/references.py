"""References inside FHIR JSON: finding them, and resolving them within a message Bundle (FHIR R4 rules)."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# [base]/[type]/[id] with an optional /_history/[vid], as in the R4 "RESTful URL" rule.
_RESTFUL = re.compile(
    r"^(?P<base>.*?)/?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$"
)
_RELATIVE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$")


@dataclass(frozen=True)
class Found:
    """A Reference element found in a resource: its path (FHIRPath-like) and the element itself."""

    path: str
    element: dict

    @property
    def reference(self) -> str:
        return self.element["reference"]


def iter_references(node: Any, path: str = "") -> Iterator[Found]:
    """Every Reference (a dict with a string `reference`) below `node`, depth first, in document order.

    Nested Bundles are not entered: their references belong to their own message.
    """
    found: list[Found] = []
    _collect(node, path, found)
    return iter(found)


def _collect(node: Any, path: str, found: list[Found]) -> None:
    """Appends what iter_references yields; scalars are not visited (they hold no Reference)."""
    if isinstance(node, dict):
        if path and node.get("resourceType") == "Bundle":
            return
        if isinstance(node.get("reference"), str):
            found.append(Found(path, node))
        for key, value in node.items():
            if key != "contained" and isinstance(value, dict | list):
                _collect(value, f"{path}.{key}" if path else key, found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                _collect(value, f"{path}[{index}]", found)


def is_local(reference: str) -> bool:
    """A reference to a contained resource, which needs no bundle entry."""
    return reference.startswith("#")


def split_relative(reference: str) -> tuple[str, str] | None:
    """(type, id) of a relative reference `Type/id`, or None."""
    match = _RELATIVE.match(reference)
    return (match["type"], match["id"]) if match else None


def restful_base(full_url: str) -> str | None:
    """The [base] of a RESTful fullUrl `[base]/[type]/[id]`, or None for urn:uuid and the like."""
    if full_url.startswith("urn:"):
        return None
    match = _RESTFUL.match(full_url)
    return match["base"] if match else None


class BundleIndex:
    """Resolves references between the entries of one Bundle."""

    def __init__(self, bundle: dict):
        self.entries: list[dict] = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
        self._by_url: dict[str, int] = {}
        self._by_type_id: dict[tuple[str, str], list[int]] = {}
        for index, entry in enumerate(self.entries):
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self._by_url.setdefault(_strip_history(full_url), index)
            resource = entry.get("resource")
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                key = (str(resource.get("resourceType")), resource["id"])
                self._by_type_id.setdefault(key, []).append(index)

    def resource(self, index: int) -> dict:
        resource = self.entries[index].get("resource")
        return resource if isinstance(resource, dict) else {}

    def resolve(self, reference: str, from_index: int | None = None) -> int | None:
        """The entry index a reference made from entry `from_index` points to, or None.

        Absolute references and urn:uuid match a fullUrl. A relative `Type/id` is made absolute with the
        [base] of the referring entry's RESTful fullUrl; when that finds nothing (urn:uuid entries), a
        unique entry of that type and id is accepted, as NPHIES does.
        """
        reference = _strip_history(reference)
        if reference in self._by_url:
            return self._by_url[reference]
        relative = split_relative(reference)
        if relative is None:
            return None
        if from_index is not None:
            base = restful_base(str(self.entries[from_index].get("fullUrl") or ""))
            if base is not None:
                found = self._by_url.get(f"{base}/{reference}" if base else reference)
                if found is not None:
                    return found
        candidates = self._by_type_id.get(relative, [])
        return candidates[0] if len(candidates) == 1 else None

    def resolve_resource(self, reference: str, from_index: int | None = None) -> dict | None:
        index = self.resolve(reference, from_index)
        return None if index is None else self.resource(index)


def _strip_history(url: str) -> str:
    marker = url.find("/_history/")
    return url[:marker] if marker >= 0 else url
