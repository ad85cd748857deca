"""HTTP request counts and latency by route kind (`GET instance`, `POST type-operation` ...) and status.

Kinds are derived from the path's shape, never from ids or query values, so the label sets stay small.
"""

import time

from prometheus_client import Counter, Histogram

from ..workflows.metrics import HTTP_REQUESTS, HTTP_SECONDS

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
NAMED = {
    "metadata",
    "metrics",
    "healthz",
    "readyz",
    "auth",
    "websocket",
    ".well-known",
    "_history",
    "_search",
}


def route_kind(method: str, path: str) -> str:
    parts = [p for p in path.split("/") if p]
    verb = method if method in METHODS else "OTHER"
    return f"{verb} {_shape(parts)}"


def _shape(parts: list[str]) -> str:
    if not parts:
        return "system"
    first = parts[0]
    if first.startswith("$"):
        return "system-operation"
    if first in NAMED:
        return first.lstrip(".")
    if not first[:1].isupper():
        return "other"
    if len(parts) == 1:
        return "type"
    second = parts[1]
    if second.startswith("$"):
        return "type-operation"
    if second in ("_history", "_search"):
        return f"type{second}"
    if len(parts) == 2:
        return "instance"
    third = parts[2]
    if third.startswith("$"):
        return "instance-operation"
    if third == "_history":
        return "vread" if len(parts) > 3 else "instance_history"
    return "other"


class RequestTimer:
    """Started when a request arrives; `done` records it once the response status is known."""

    __slots__ = ("kind", "started", "status")

    def __init__(self, method: str, path: str) -> None:
        self.kind = route_kind(method, path)
        self.started = time.perf_counter()
        self.status = 500

    def done(self) -> float:
        """Records the request; returns its duration in seconds."""
        elapsed = time.perf_counter() - self.started
        key = (self.kind, self.status)
        counter = _counters.get(key)
        if counter is None:
            counter = _counters[key] = HTTP_REQUESTS.labels(self.kind, str(self.status))
        histogram = _histograms.get(self.kind)
        if histogram is None:
            histogram = _histograms[self.kind] = HTTP_SECONDS.labels(self.kind)
        counter.inc()
        histogram.observe(elapsed)
        return elapsed


# The labelled children, kept: looking one up through `labels()` costs more than recording into it.
_counters: dict[tuple[str, int], Counter] = {}
_histograms: dict[str, Histogram] = {}
