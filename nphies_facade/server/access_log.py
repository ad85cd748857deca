"""The access log: one line per HTTP request, written by the request middleware once it is answered.

A line holds the method, the path with the names of its query parameters but not their values, the
status, the duration, the client id (when a token named one) and the trace id; never a query value,
header or body, which may be PHI. Logger `nphies_facade.access`, at INFO (NPHIES_FACADE_ACCESS_LOG=false
turns it off)."""

import logging
from urllib.parse import unquote

log = logging.getLogger("nphies_facade.access")

MAX_NAMES = 20


def shown_path(path: str, query_string: bytes) -> str:
    """`/Patient?name=&birthdate=`: the query's parameter names, each value left out."""
    if not query_string:
        return path
    names = [unquote(part.partition("=")[0]) for part in query_string.decode("latin-1").split("&") if part]
    kept = [f"{name[:40]}=" for name in names[:MAX_NAMES]]
    if len(names) > MAX_NAMES:
        kept.append("...")
    return f"{path}?{'&'.join(kept)}"


def record(
    method: str,
    path: str,
    query_string: bytes,
    status: int,
    seconds: float,
    client_id: str | None,
    trace_id: str,
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    shown = shown_path(path, query_string)
    millis = round(seconds * 1000, 1)
    client = client_id or "-"
    fields = {"method": method, "path": shown, "status": status, "duration_ms": millis, "client_id": client}
    log.info(
        "%s %s %d %.1f ms client=%s",
        method,
        shown,
        status,
        millis,
        client,
        extra={"fields": fields, "trace_id": trace_id},
    )
