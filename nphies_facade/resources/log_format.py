"""The two shapes of a log line: text (`time level logger trace=... message`) or, with
NPHIES_FACADE_LOG_FORMAT=json, one JSON object a line with the same parts and the record's `fields`.

A log call adds machine-readable parts with `extra={"fields": {...}}` (the access log's method, path,
status ...); the text line shows them only through its message. Nothing here adds request data: what a
line holds is what its caller chose, and callers never log PHI."""

import logging
from datetime import UTC, datetime

import orjson

from .tracing import LOG_FORMAT, NO_TRACE

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "trace_id": getattr(record, "trace_id", NO_TRACE),
            "message": record.getMessage(),
            **(getattr(record, "fields", None) or {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def formatter(shape: str) -> logging.Formatter:
    return JsonFormatter() if shape == "json" else logging.Formatter(LOG_FORMAT)
