"""HTTP hardening: JSON nesting-depth limit (an ASGI middleware), security headers, per-client rate limit."""

import logging
import operator
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from itertools import accumulate, count

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...resources.errors import Issue, operation_outcome

JSON_MARKERS = (b"json",)
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = b"[]{}"
_DELETE = bytes(b for b in range(256) if b not in _BRACKETS)
# After deleting everything but brackets: an opening bracket weighs 2, a closing one 0, so the running
# sum minus the position is the nesting depth (computed in C by accumulate/map).
_WEIGHTS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
PUBLIC_DOCUMENTS = frozenset(
    {
        "/metadata",
        "/.well-known/smart-configuration",
        "/.well-known/openid-configuration",
        "/auth/jwks",
        "/healthz",
        "/readyz",
    }
)
# The authorization server's pages set their own CSP (styles from here, forms to here and the app).
PAGES = frozenset(
    {"/auth/authorize", "/auth/login", "/auth/picker", "/auth/consent", "/auth/static/auth.css"}
)


# Libraries that log the data they handle at DEBUG: aiosqlite logs every statement with its arguments
# (resource bodies included). They are held at INFO so no log level set elsewhere lets PHI through.
DATA_LOGGERS = ("aiosqlite",)


def quiet_data_loggers() -> None:
    for name in DATA_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def json_depth(body: bytes) -> int:
    """The nesting depth of a JSON text: brackets inside strings do not count."""
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = _STRING.sub(b"", text).translate(_WEIGHTS, _DELETE)
    return max(map(operator.sub, accumulate(skeleton), count(1)), default=0)


def _outcome_response(status: int, code: str, diagnostics: str) -> tuple[dict, bytes]:
    body = orjson.dumps(operation_outcome([Issue(code, diagnostics)]))
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/fhir+json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, body


class JsonLimits:
    """Refuses JSON bodies nested deeper than `max_depth` (400) or larger than `max_bytes` (413) before
    any route parses them; other bodies pass through untouched."""

    def __init__(self, app: ASGIApp, max_depth: int, max_bytes: int) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(
                    send, 413, "too-costly", f"The body is larger than the limit of {self.max_bytes} bytes"
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if self._may_be_too_deep(body) and json_depth(body) > self.max_depth:
            await self._refuse(
                send, 400, "structure", f"The JSON body is nested deeper than {self.max_depth} levels"
            )
            return
        await self.app(scope, _replay(body, receive), send)

    def _may_be_too_deep(self, body: bytes) -> bool:
        """False when there are too few opening brackets (in strings or not) to reach the limit."""
        return body.count(b"{") + body.count(b"[") > self.max_depth

    @staticmethod
    def _is_json(scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                return any(marker in value.lower() for marker in JSON_MARKERS)
        return False

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, diagnostics: str) -> None:
        start, body = _outcome_response(status, code, diagnostics)
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def security_headers(path: str, https: bool) -> dict[str, str]:
    headers = dict(SECURITY_HEADERS)
    if path in PAGES:
        del headers["Content-Security-Policy"]
    if path not in PUBLIC_DOCUMENTS:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class RateLimiter:
    """A token bucket per client, in memory: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(
        self,
        rate: float,
        burst: int,
        monotonic: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str) -> float | None:
        """None when the request may go ahead, else the seconds until the client may try again."""
        if not self.enabled:
            return None
        now = self._monotonic()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        retry_after = None
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            retry_after = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return retry_after
