"""The one walk over a resource's references: rewritten to bundle entries, checked, collected.

Every write walks its resource once (a Bundle entry's walk happens when the transaction rewrites its
references). A `reference` must be
- `Type/id` (optionally `/_history/n`) of an R4 type, an absolute URL, or a conditional reference
  `Type?criteria` (collected for the caller to resolve),
- `urn:uuid:`/`urn:oid:` only inside a Bundle, where it names an entry's fullUrl,
- `#id` naming a contained resource (`#` alone: the container),
and of a type the element's targetProfile allows (data/reference-targets.json, from the R4
StructureDefinitions). Inside a Bundle a reference names an entry when it equals the entry's fullUrl, when
it is relative and the referring entry's absolute fullUrl supplies the base that makes it equal, or else
when exactly one entry's fullUrl ends with `/Type/id` (as HAPI FHIR resolves them); it is rewritten to the
id the server gave that entry. Narrative links (`href`/`src` in `text.div`) are rewritten the same way.

The `Type/id` references that remain name resources of this server; they are collected with the element
that holds them, for the referential-integrity check (integrity.py). Absolute URLs are not checked:
they name resources elsewhere.
"""

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import orjson

from .errors import FhirError, Issue
from .types import supported_types

TABLE_FILE = Path(__file__).with_name("data") / "reference-targets.json"
RESTFUL_FULL_URL = re.compile(r"(https?://.+)/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?")
ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s]+")
ABSOLUTE_RESTFUL = re.compile(r".+/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
CONDITIONAL_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)\?.+")
NARRATIVE_LINK = re.compile(r'(href|src)="([^"]*)"')
BUNDLE_LOCAL_PREFIXES = ("urn:uuid:", "urn:oid:")
UNRESOLVED = "which no entry of this Bundle has as its fullUrl"
UNRESOLVED_IN_BATCH = (
    "which cannot be resolved: the entries of a batch are independent and cannot refer to each other"
)
OUTSIDE_BUNDLE = "which names a Bundle entry: such references resolve only inside a transaction Bundle"
KNOWN_TYPES = supported_types()
EXTENSIONS = ("extension", "modifierExtension")

Path_ = list[str | int]


@cache
def target_table() -> dict[str, dict[str, object]]:
    """Per type, element path -> allowed target types, a datatype ('@Identifier') or a repeat ('#item')."""
    return orjson.loads(TABLE_FILE.read_bytes())


def base_of(full_url: str | None) -> str | None:
    """The server base of a RESTful absolute fullUrl (`http://x/fhir/Patient/1` -> `http://x/fhir`)."""
    match = RESTFUL_FULL_URL.fullmatch(full_url) if full_url else None
    return match.group(1) if match else None


def restful_tail(full_url: str) -> str | None:
    """`Patient/1` of a RESTful absolute fullUrl `http://x/fhir/Patient/1`."""
    match = RESTFUL_FULL_URL.fullmatch(full_url)
    return f"{match.group(2)}/{match.group(3)}" if match else None


def expression(resource_type: str, path: Path_) -> str:
    text = resource_type
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


@dataclass(slots=True)
class BundleTargets:
    """The entries of a Bundle references may name: fullUrl -> `Type/id`, and `Type/id` tails of
    absolute fullUrls (None when two entries share one)."""

    by_url: dict[str, str] = field(default_factory=dict)
    by_tail: dict[str, str | None] = field(default_factory=dict)
    unresolved: str = UNRESOLVED

    def add(self, full_url: str, reference: str) -> None:
        self.by_url[full_url] = reference
        tail = restful_tail(full_url)
        if tail is not None:
            self.by_tail[tail] = reference if tail not in self.by_tail else None


@dataclass(slots=True)
class Walked:
    """What a walk found: issues, conditional references to resolve, and local `Type/id` references
    (with the FHIRPath of their element) for the integrity check."""

    issues: list[Issue] = field(default_factory=list)
    conditional: list[tuple[dict, str]] = field(default_factory=list)
    local: list[tuple[str, str]] = field(default_factory=list)

    def raise_issues(self) -> None:
        if self.issues:
            raise FhirError(400, self.issues)


@lru_cache(maxsize=65536)
def _step(context: str, element: str, key: str) -> tuple[str, str, tuple[str, ...] | None]:
    """From an element (`element` below the type or datatype `context`) to its child `key`: the child's
    context and element path, and for a Reference the types it may name (None: any)."""
    if key in EXTENSIONS or key.startswith("_"):
        return ("Extension" if key in EXTENSIONS else "Element"), "", None
    child = f"{element}.{key}" if element else key
    entries = target_table().get(context)
    entry = entries.get(child) if entries is not None else None
    while isinstance(entry, str) and entry.startswith("#"):
        child = entry[1:]
        entry = entries.get(child)
    if isinstance(entry, list):
        return "Reference", "", tuple(entry)
    if isinstance(entry, str):  # '@Datatype'
        return entry[1:], "", None
    return context, child, None


class ReferenceWalk:
    """Walks one resource (or JSON Patch document): rewrites references to Bundle entries, checks every
    reference, collects conditional and local ones. `targets` None: not inside a Bundle.

    Where the walk is: `context` (the resource or datatype whose element table applies) and `element`
    (the path below it in JSON names) travel with it; `contained` (the ids `#id` may name) and `nested`
    (in a resource inside another, a Bundle's entry: its references are that one's) change only where
    a resource begins."""

    def __init__(
        self,
        root: str,
        targets: BundleTargets | None = None,
        full_url: str | None = None,
    ) -> None:
        self.targets = targets
        self.base = base_of(full_url)
        self.root = root
        self.path: Path_ = []
        self.found = Walked()
        self.contained: frozenset[str] = frozenset()
        self.nested = False

    def walk(self, document: object) -> Walked:
        """Rewrites in place; returns what was found. A JSON Patch document (a list) is walked without
        element tables (its values' places are not known here)."""
        if isinstance(document, dict):
            kind = document.get("resourceType")
            self.contained = _contained_ids(document)
            self._object(document, kind if isinstance(kind, str) else "", "", None)
        elif isinstance(document, list):
            self._list(document, "", "", None)
        return self.found

    # ----- the walk -----

    def _list(self, node: list, context: str, element: str, allowed: tuple | None) -> None:
        path = self.path
        for index, item in enumerate(node):
            if isinstance(item, dict):
                path.append(index)
                self._object(item, context, element, allowed)
                path.pop()
            elif isinstance(item, list):
                path.append(index)
                self._list(item, context, element, allowed)
                path.pop()

    def _object(self, node: dict, context: str, element: str, allowed: tuple | None) -> None:
        path = self.path
        for key, value in node.items():
            if isinstance(value, dict | list):
                path.append(key)
                self._child(key, value, context, element)
                path.pop()
            elif key == "reference" and isinstance(value, str):
                self._reference(node, value, allowed)
            elif key == "div" and isinstance(value, str) and '="' in value and self.targets is not None:
                node[key] = NARRATIVE_LINK.sub(self._link, value)

    def _child(self, key: str, value: dict | list, context: str, element: str) -> None:
        kind = value.get("resourceType") if isinstance(value, dict) else None
        if isinstance(kind, str):  # a resource inside this one (a Bundle's entry, a Parameters value)
            saved = self.contained, self.nested
            self.contained, self.nested = _contained_ids(value), True
            self._object(value, kind, "", None)
            self.contained, self.nested = saved
            return
        if key == "contained" and isinstance(value, list):
            for index, item in enumerate(value):
                kind = item.get("resourceType") if isinstance(item, dict) else None
                if isinstance(kind, str):
                    self.path.append(index)
                    self._object(item, kind, "", None)
                    self.path.pop()
            return
        inner, below, allowed = _step(context, element, key)
        if isinstance(value, dict):
            self._object(value, inner, below, allowed)
        else:
            self._list(value, inner, below, allowed)

    # ----- one reference -----

    def _where(self) -> str:
        return expression(self.root, [*self.path, "reference"])

    def _issue(self, code: str, message: str) -> None:
        """An issue whose message follows the element's FHIRPath (`Claim.patient.reference refers ...`)."""
        where = self._where()
        self.found.issues.append(Issue(code, f"{where} {message}", expression=where))

    def _reference(self, node: dict, value: str, allowed: tuple | None) -> None:
        if value.startswith("#"):
            if value != "#" and value[1:] not in self.contained:
                self._issue("not-found", f"is {value}, which names no contained resource of this resource")
            return
        found = self.target(value)
        if found is not None:
            node["reference"] = value = found
        elif value.startswith(BUNDLE_LOCAL_PREFIXES):
            if not self.nested:
                unresolved = self.targets.unresolved if self.targets is not None else OUTSIDE_BUNDLE
                self._issue("not-found", f"refers to {value}, {unresolved}")
            return
        relative = RELATIVE.fullmatch(value)
        if relative is not None:
            kind = relative.group(1)
            if self._known(kind, value) and self._allowed(kind, allowed) and not self.nested:
                self.found.local.append((f"{kind}/{relative.group(2)}", self._where()))
            return
        conditional = CONDITIONAL_REFERENCE.fullmatch(value)
        if conditional is not None:
            kind = conditional.group(1)
            if self._known(kind, value) and self._allowed(kind, allowed) and not self.nested:
                self.found.conditional.append((node, self._where()))
            return
        if ABSOLUTE.fullmatch(value):
            restful = ABSOLUTE_RESTFUL.fullmatch(value)
            if restful is not None and restful.group(1) in KNOWN_TYPES:
                self._allowed(restful.group(1), allowed)
            return
        self._issue(
            "invalid",
            f"is {value!r}, which is not a reference: expected Type/id, an absolute URL, a conditional "
            "reference Type?criteria or #id of a contained resource",
        )

    def _known(self, kind: str, value: str) -> bool:
        if kind in KNOWN_TYPES:
            return True
        self._issue("invalid", f"is {value!r}, but {kind} is not an R4 resource type")
        return False

    def _allowed(self, kind: str, allowed: tuple | None) -> bool:
        if not allowed or kind in allowed:
            return True
        self._issue(
            "invalid", f"refers to a {kind}, but this element may refer to {' or '.join(allowed)} only"
        )
        return False

    def target(self, value: str) -> str | None:
        """The `Type/id` of the Bundle entry a reference names, or None."""
        targets = self.targets
        if targets is None:
            return None
        found = targets.by_url.get(value)
        if found is None and "://" not in value and not value.startswith("urn:"):
            if self.base is not None:
                found = targets.by_url.get(f"{self.base}/{value}")
            if found is None and RELATIVE.fullmatch(value):
                found = targets.by_tail.get(value.split("/_history/")[0])
        return found

    def _link(self, match: re.Match) -> str:
        found = self.target(match.group(2))
        return match.group(0) if found is None else f'{match.group(1)}="{found}"'


def _contained_ids(resource: dict) -> frozenset[str]:
    contained = resource.get("contained")
    if not isinstance(contained, list) or not contained:
        return frozenset()
    return frozenset(c["id"] for c in contained if isinstance(c, dict) and isinstance(c.get("id"), str))


def walk_references(resource: dict) -> Walked:
    """A single write's walk: nothing to rewrite (no Bundle), every reference checked and collected."""
    return ReferenceWalk(str(resource.get("resourceType") or "")).walk(resource)


__all__ = [
    "BundleTargets",
    "ReferenceWalk",
    "UNRESOLVED",
    "UNRESOLVED_IN_BATCH",
    "Walked",
    "base_of",
    "expression",
    "walk_references",
]
