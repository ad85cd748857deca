"""History bundles: instance, type and system `_history` with `_count`, `_since` and cursor paging."""

import base64
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
from starlette.requests import Request

from ..resources.clock import fhir_instant
from ..resources.errors import bad_request
from ..resources.store import HistoryQuery, StoredVersion
from .responses import etag

STATUS_BY_METHOD = {"POST": "201 Created", "DELETE": "204 No Content"}


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"h{position}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if raw.startswith("h") and raw[1:].isascii() and raw[1:].isdigit():
            return int(raw[1:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise bad_request("The paging cursor is not valid; follow the links the server gave", "_cursor")


def parse_count(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise bad_request(f"_count must be a non-negative whole number, not {value!r}", "_count")
    return min(int(value), maximum)


def parse_instant(value: str, name: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"{name} must be a FHIR instant such as 2026-01-31T12:00:00Z, not {value!r}", name
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return fhir_instant(moment)


def history_query(
    request: Request, resource_type: str | None, resource_id: str | None, default_count: int, max_count: int
) -> HistoryQuery:
    params = request.query_params
    since = params.get("_since")
    cursor = params.get("_cursor")
    return HistoryQuery(
        resource_type=resource_type,
        id=resource_id,
        since=parse_instant(since, "_since") if since else None,
        before_position=decode_cursor(cursor) if cursor else None,
        count=parse_count(params.get("_count"), default_count, max_count),
    )


def _entry(base: str, version: StoredVersion) -> dict:
    url = f"{version.resource_type}/{version.id}"
    entry: dict = {"fullUrl": f"{base}/{url}"}
    if version.body is not None:
        entry["resource"] = orjson.Fragment(version.body)
    request_url = version.resource_type if version.method == "POST" else url
    entry["request"] = {"method": version.method, "url": request_url}
    entry["response"] = {
        "status": STATUS_BY_METHOD.get(version.method, "200 OK"),
        "etag": etag(version.version),
        "lastModified": version.last_updated,
    }
    return entry


def history_bundle(base: str, path: str, query: HistoryQuery, versions: list[StoredVersion]) -> dict:
    shown = {"_count": query.count}
    if query.since:
        shown["_since"] = query.since
    self_params = dict(shown)
    if query.before_position is not None:
        self_params["_cursor"] = encode_cursor(query.before_position)
    links = [{"relation": "self", "url": f"{base}/{path}?{urlencode(self_params)}"}]
    if versions and len(versions) == query.count:
        next_params = {**shown, "_cursor": encode_cursor(versions[-1].position)}
        links.append({"relation": "next", "url": f"{base}/{path}?{urlencode(next_params)}"})
    bundle: dict = {"resourceType": "Bundle", "type": "history", "link": links}
    if versions:  # FHIR JSON has no empty arrays
        bundle["entry"] = [_entry(base, v) for v in versions]
    return bundle
