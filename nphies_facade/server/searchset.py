"""Searchset Bundles: entries (match, include, outcome; none at all when empty), `total`, and self/next/previous links
that repeat the search as understood with an opaque keyset cursor, so they stay valid while data changes."""

import uuid
from urllib.parse import urlencode

from ..resources.errors import Issue, operation_outcome
from ..resources.searching import SearchResult
from ..resources.store import StoredVersion
from .summary import shaped_body


def _link(url: str, query: str, cursor: str | None) -> str:
    """`url` with the encoded search parameters and the cursor, if any."""
    if cursor:
        query = f"{query}&{urlencode([('_cursor', cursor)])}" if query else urlencode([("_cursor", cursor)])
    return f"{url}?{query}" if query else url


def _entry(base: str, version: StoredVersion, mode: str, summary: str | None, elements: tuple) -> dict:
    return {
        "fullUrl": f"{base}/{version.resource_type}/{version.id}",
        "resource": shaped_body(version.body, summary, elements),
        "search": {"mode": mode},
    }


def _outcome_entry(ignored: tuple[str, ...]) -> dict:
    issues = [
        Issue(
            "not-supported",
            f"The search parameter '{name}' is not known here and was ignored",
            severity="warning",
            expression=name,
        )
        for name in ignored
    ]
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": operation_outcome(issues),
        "search": {"mode": "outcome"},
    }


def searchset_bundle(base: str, path: str, result: SearchResult) -> dict:
    """`path` is the searched type ("Task"), or "" for a system search."""
    query = result.query
    url = f"{base}/{path}" if path else base
    used = urlencode(list(query.used))
    links = [{"relation": "self", "url": _link(url, used, query.cursor)}]
    if result.next_cursor:
        links.append({"relation": "next", "url": _link(url, used, result.next_cursor)})
    if result.previous_cursor:
        links.append({"relation": "previous", "url": _link(url, used, result.previous_cursor)})
    summary, elements = query.summary, query.elements
    entries = [_entry(base, v, "match", summary, elements) for v in result.matches]
    entries += [_entry(base, v, "include", summary, elements) for v in result.included]
    if query.ignored:
        entries.append(_outcome_entry(query.ignored))
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle
