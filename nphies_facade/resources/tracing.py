"""W3C trace context (https://www.w3.org/TR/trace-context/): the `traceparent` header, the trace id of the
work in progress, and the logging filter that puts that id on every log line.

The trace id is bound for the duration of an HTTP request or a job (`bound`), so any log line written
meanwhile carries it; only the id is logged, never request data.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .randomness import random_hex

TRACEPARENT = "traceparent"
_HEADER = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
NO_TRACE = "-"

_current: ContextVar[str | None] = ContextVar("nphies_facade_trace_id", default=None)


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid version-00-compatible header, else None."""
    if not value:
        return None
    found = _HEADER.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, parent_id, flags = found.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


def is_trace_id(value: str) -> bool:
    return bool(_TRACE_ID.fullmatch(value)) and value != "0" * 32


def new_span_id() -> str:
    return random_hex(8)


def traceparent(trace_id: str, span_id: str | None = None, flags: str = "01") -> str:
    return f"00-{trace_id}-{span_id or new_span_id()}-{flags}"


def current_trace_id() -> str | None:
    return _current.get()


@contextmanager
def bound(trace_id: str) -> Iterator[None]:
    """Log lines written inside the block carry `trace_id`."""
    token = _current.set(trace_id)
    try:
        yield
    finally:
        _current.reset(token)


class TraceIdFilter(logging.Filter):
    """Sets `record.trace_id` (the bound trace id, or "-") for formats that show `%(trace_id)s`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id = _current.get() or NO_TRACE
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s %(message)s"


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Adds the filter to the handlers of `logger` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, TraceIdFilter) for f in handler.filters):
            handler.addFilter(TraceIdFilter())


def configure_logging(level: str, shape: str = "text", access_log: bool = True) -> None:
    """Root logging with the trace id on every line, as text or JSON lines (log_format.py), with or
    without the access log; idempotent, each server process calls it."""
    from .log_format import formatter

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(shape))
        root.addHandler(handler)
        root.setLevel(level.upper())
    install_log_filter(root)
    if not access_log:
        logging.getLogger("nphies_facade.access").setLevel(logging.WARNING)
