"""The per-request ASGI middleware: trace id, content negotiation, then authentication as the caller.

The trace id comes from a valid W3C `traceparent` header, else from `X-Request-Id`, else is new; the
response carries it in both headers (`traceparent` with this server's span id) and it is bound for the
request, so log lines carry it.

Plain ASGI rather than Starlette's `@app.middleware("http")`, whose request/response wrapping costs about
half a millisecond per request.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..resources.context import RequestContext, new_trace_id
from ..resources.errors import FhirError
from ..resources.tracing import TRACEPARENT, bound, is_trace_id, parse_traceparent, traceparent
from . import access_log
from .http_metrics import RequestTimer
from .negotiation import check_accept
from .responses import FhirResponse

TRACE_HEADER = "x-request-id"


def trace_of(request: Request) -> tuple[str, str]:
    """(trace id, trace flags) of the request."""
    parent = parse_traceparent(request.headers.get(TRACEPARENT))
    if parent is not None:
        return parent[0], parent[2]
    return trace_id_of(request), "01"


def trace_id_of(request: Request) -> str:
    given = request.headers.get(TRACE_HEADER, "")
    return given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else new_trace_id()


def trace_headers(trace_id: str, flags: str) -> list[tuple[bytes, bytes]]:
    headers = [(TRACE_HEADER.encode(), trace_id.encode())]
    if is_trace_id(trace_id):
        headers.append((TRACEPARENT.encode(), traceparent(trace_id, flags=flags).encode()))
    return headers


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        trace_id, flags = trace_of(request)
        request.state.trace_id = trace_id
        request.state.context = RequestContext(actor="anonymous", trace_id=trace_id)
        headers = trace_headers(trace_id, flags)
        timer = RequestTimer(scope["method"], scope["path"])

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
                timer.status = message["status"]
            await send(message)

        try:
            check_accept(request)
        except FhirError as exc:
            await FhirResponse(exc.outcome(), exc.status)(scope, receive, send_with_trace)
            self._done(scope, timer, request, trace_id)
            return
        security = scope["app"].state.security
        try:
            with bound(trace_id):
                await security.handle(request, self.app, receive, send_with_trace, trace_id)
        finally:
            self._done(scope, timer, request, trace_id)

    @staticmethod
    def _done(scope: Scope, timer: RequestTimer, request: Request, trace_id: str) -> None:
        seconds = timer.done()
        client_id = request.state.context.client_id
        access_log.record(
            scope["method"], scope["path"], scope["query_string"], timer.status, seconds, client_id, trace_id
        )
