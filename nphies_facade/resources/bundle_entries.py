"""Batch and transaction Bundles as posted: envelope checks, and what each entry's request asks for.

Entries are checked by hand rather than through the Bundle model: the model validates every entry resource
again (FhirService validates each one anyway) and does not check `request.method` against its code list.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import bad_request, error
from .types import is_supported
from .validation import ID_PATTERN, validate_resource

BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
ENTRY_KEYS = frozenset(
    {"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request", "response"}
)
CONDITIONS = {
    "ifNoneExist": frozenset({"POST"}),
    "ifMatch": frozenset({"PUT", "PATCH", "DELETE"}),
    "ifNoneMatch": frozenset({"GET", "HEAD"}),
    "ifModifiedSince": frozenset({"GET", "HEAD"}),
}
REQUEST_KEYS = frozenset({"id", "extension", "modifierExtension", "method", "url", *CONDITIONS})
NEEDS_RESOURCE = frozenset({"POST", "PUT", "PATCH"})
TYPE_NAME = re.compile(r"[A-Z][A-Za-z]+")
URL = "request.url"


@dataclass(slots=True)
class Entry:
    """One entry of a batch or transaction, its request checked."""

    index: int
    full_url: str | None
    resource: dict | None
    method: str
    url: str
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    if_modified_since: str | None = None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def reads(self) -> bool:
        return self.method in ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Target:
    """What an entry's request.url names. `query` is None when the url has no '?'."""

    resource_type: str | None
    id: str | None = None
    version: str | None = None
    query: str | None = None
    history: bool = False
    operation: str | None = None


def check_envelope(bundle: dict) -> str:
    """Checks the Bundle's own elements (not its entries) and returns its type."""
    kind = bundle.get("type")
    if not isinstance(kind, str) or kind not in BUNDLE_TYPES:
        raise bad_request(
            f"Bundle.type must be one of {', '.join(sorted(BUNDLE_TYPES))}, not {kind!r}",
            "Bundle.type",
            code="value",
        )
    validate_resource({key: value for key, value in bundle.items() if key != "entry"})
    return kind


def entry_list(bundle: dict, max_entries: int) -> list:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise bad_request("Bundle.entry must be an array of entries", "Bundle.entry", code="structure")
    if len(entries) > max_entries:
        raise error(
            413,
            "too-costly",
            f"The Bundle has {len(entries)} entries; this server takes at most {max_entries} per Bundle",
            "Bundle.entry",
        )
    _check_unique_full_urls(entries)
    return entries


def _check_unique_full_urls(entries: list) -> None:
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries):
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        if not isinstance(full_url, str):
            continue
        if full_url in seen:
            raise bad_request(
                f"Bundle.entry[{index}] repeats the fullUrl {full_url} of Bundle.entry[{seen[full_url]}]; "
                "each entry needs its own",
                f"Bundle.entry[{index}].fullUrl",
            )
        seen[full_url] = index


def parse_entry(index: int, raw: object) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be an object", where, code="structure")
    _check_keys(raw, ENTRY_KEYS, where)
    request = raw.get("request")
    if not isinstance(request, dict):
        raise bad_request(
            f"{where} has no request; every entry of a batch or transaction needs one",
            f"{where}.request",
            code="required",
        )
    _check_keys(request, REQUEST_KEYS, f"{where}.request")
    method = request.get("method")
    if method not in METHODS:
        raise bad_request(
            f"{where}.request.method must be one of {', '.join(sorted(METHODS))}, not {method!r}",
            f"{where}.request.method",
            code="value",
        )
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise bad_request(f"{where}.request.url is required", f"{where}.request.url", code="required")
    full_url = _optional_string(raw, "fullUrl", where)
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise bad_request(
            f"{where}.resource must be a resource object", f"{where}.resource", code="structure"
        )
    if resource is None and method in NEEDS_RESOURCE:
        raise bad_request(f"{where} is a {method} and needs a resource", f"{where}.resource", code="required")
    conditions = {name: _optional_string(request, name, f"{where}.request") for name in CONDITIONS}
    _check_conditions(conditions, method, where)
    return Entry(
        index,
        full_url,
        resource,
        method,
        url.strip(),
        conditions["ifMatch"],
        conditions["ifNoneMatch"],
        conditions["ifNoneExist"],
        conditions["ifModifiedSince"],
    )


def _check_keys(data: dict, allowed: frozenset[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise bad_request(
                f"{where}.{key} is not an element of a Bundle entry", f"{where}.{key}", code="structure"
            )


def _optional_string(data: dict, name: str, where: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{where}.{name} must be a string", f"{where}.{name}", code="value")
    return value


def _check_conditions(conditions: dict[str, str | None], method: str, where: str) -> None:
    for name, value in conditions.items():
        if value is not None and method not in CONDITIONS[name]:
            raise bad_request(
                f"{where}.request.{name} applies to {'/'.join(sorted(CONDITIONS[name]))} entries, "
                f"not to a {method}",
                f"{where}.request.{name}",
            )


def parse_target(url: str, base: str) -> Target:
    """Parses request.url: relative to the server base (an absolute url must start with that base)."""
    path, _, query = _relative(url, base).partition("?")
    has_query = "?" in url
    segments = path.strip("/").split("/") if path.strip("/") else []
    if not segments:
        return Target(None, query=query if has_query else None)
    resource_type = segments[0]
    if resource_type.startswith("$"):
        return Target(None, operation=resource_type)
    if resource_type == "_history":
        return (
            Target(None, query=query if has_query else None, history=True)
            if len(segments) == 1
            else _bad(url)
        )
    if not TYPE_NAME.fullmatch(resource_type) or not is_supported(resource_type):
        raise error(404, "not-found", f"Unknown resource type '{resource_type}' in request.url {url!r}", URL)
    return _instance_target(resource_type, segments[1:], query if has_query else None, url)


def _relative(url: str, base: str) -> str:
    if "://" not in url:
        return url
    if url.startswith(base.rstrip("/") + "/"):
        return url[len(base.rstrip("/")) :]
    parts = urlsplit(url)
    raise bad_request(
        f"request.url {parts.scheme}://{parts.netloc}... is not on this server; entry urls are "
        "relative to the server base",
        URL,
    )


def _instance_target(resource_type: str, rest: list[str], query: str | None, url: str) -> Target:
    if not rest:
        return Target(resource_type, query=query)
    first = rest[0]
    if first.startswith("$"):
        return Target(resource_type, operation=first) if len(rest) == 1 else _bad(url)
    if first == "_history":
        return Target(resource_type, query=query, history=True) if len(rest) == 1 else _bad(url)
    _check_id(first, url)
    if len(rest) == 1:
        return Target(resource_type, first, query=query)
    if rest[1].startswith("$") and len(rest) == 2:
        return Target(resource_type, first, operation=rest[1])
    if rest[1] != "_history" or len(rest) > 3:
        _bad(url)
    if len(rest) == 2:
        return Target(resource_type, first, query=query, history=True)
    return Target(resource_type, first, version=rest[2], query=query)


def _check_id(resource_id: str, url: str) -> None:
    if not ID_PATTERN.fullmatch(resource_id):
        raise bad_request(
            f"request.url {url!r} holds the id {resource_id!r}; an id is 1 to 64 characters of "
            "A-Z, a-z, 0-9, '-' and '.'",
            URL,
        )


def _bad(url: str) -> Target:
    raise bad_request(
        f"request.url {url!r} is not a FHIR RESTful url (type, type/id, type/id/_history/n, "
        "type?criteria ...)",
        URL,
    )


__all__ = ["Entry", "Target", "check_envelope", "entry_list", "parse_entry", "parse_target"]
