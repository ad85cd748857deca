"""References between the entries of a Bundle: fullUrl -> the id the server gave, rewritten in place.

A reference names an entry when it equals the entry's fullUrl (a `urn:uuid:`, an absolute or a relative
url), or when it is relative (`Patient/1`) and the referring entry's absolute fullUrl supplies the base that
makes it equal. Narrative links (`href`/`src` in `text.div`) are rewritten the same way.
"""

import re
from collections.abc import Mapping

from .errors import bad_request

RESTFUL_FULL_URL = re.compile(r"(https?://.+)/[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")
CONDITIONAL_REFERENCE = re.compile(r"[A-Z][A-Za-z]+\?.+")
NARRATIVE_LINK = re.compile(r'(href|src)="([^"]*)"')
UNRESOLVABLE_PREFIXES = ("urn:uuid:", "urn:oid:")
UNRESOLVED = "which no entry of this Bundle has as its fullUrl"
UNRESOLVED_IN_BATCH = (
    "which cannot be resolved: the entries of a batch are independent and cannot refer to each other"
)

Path = list[str | int]


def base_of(full_url: str | None) -> str | None:
    """The server base of a RESTful absolute fullUrl (`http://x/fhir/Patient/1` -> `http://x/fhir`)."""
    match = RESTFUL_FULL_URL.fullmatch(full_url) if full_url else None
    return match.group(1) if match else None


def expression(resource_type: str, path: Path) -> str:
    text = resource_type
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


class ReferenceRewriter:
    """Rewrites, in one resource (or JSON Patch document), every reference that names a bundle entry.

    `targets` maps fullUrls to `Type/id`. References that stay unresolved but are bundle-local
    (`urn:uuid:`) are an error; conditional references (`Patient?identifier=...`) are collected in
    `conditional` for the caller to resolve against the store.
    """

    def __init__(
        self, targets: Mapping[str, str], full_url: str | None, root: str, unresolved: str = UNRESOLVED
    ) -> None:
        self.targets = targets
        self.unresolved = unresolved
        self.base = base_of(full_url)
        self.root = root
        self.path: Path = []
        self.conditional: list[tuple[dict, str]] = []

    def rewrite(self, document: object) -> list[tuple[dict, str]]:
        """Rewrites in place; returns (Reference object, expression) pairs holding conditional references."""
        self._node(document)
        return self.conditional

    def target(self, value: str) -> str | None:
        found = self.targets.get(value)
        if found is None and self.base is not None and "://" not in value and not value.startswith("urn:"):
            found = self.targets.get(f"{self.base}/{value}")
        return found

    def _node(self, node: object) -> None:
        if isinstance(node, dict):
            self._object(node)
        elif isinstance(node, list):
            path = self.path
            for index, item in enumerate(node):
                if isinstance(item, dict | list):
                    path.append(index)
                    self._node(item)
                    path.pop()

    def _object(self, node: dict) -> None:
        path = self.path
        for key, value in node.items():
            if isinstance(value, dict | list):
                path.append(key)
                self._node(value)
                path.pop()
            elif key == "reference" and isinstance(value, str):
                self._reference(node, value)
            elif key == "div" and isinstance(value, str) and '="' in value:
                node[key] = NARRATIVE_LINK.sub(self._link, value)

    def _reference(self, node: dict, value: str) -> None:
        if value.startswith("#"):
            return
        found = self.target(value)
        if found is not None:
            node["reference"] = found
        elif value.startswith(UNRESOLVABLE_PREFIXES):
            where = expression(self.root, [*self.path, "reference"])
            raise bad_request(f"{where} refers to {value}, {self.unresolved}", where, code="not-found")
        elif CONDITIONAL_REFERENCE.fullmatch(value):
            self.conditional.append((node, expression(self.root, [*self.path, "reference"])))

    def _link(self, match: re.Match) -> str:
        found = self.target(match.group(2))
        return match.group(0) if found is None else f'{match.group(1)}="{found}"'
