"""The per-request ASGI middleware: trace id, content negotiation, then authentication as the caller.

Plain ASGI rather than Starlette's `@app.middleware("http")`, whose request/response wrapping costs about
half a millisecond per request.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..resources.context import RequestContext, new_trace_id
from ..resources.errors import FhirError
from .negotiation import check_accept
from .responses import FhirResponse

TRACE_HEADER = "x-request-id"


def trace_id_of(request: Request) -> str:
    given = request.headers.get(TRACE_HEADER, "")
    return given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else new_trace_id()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        trace_id = trace_id_of(request)
        request.state.trace_id = trace_id
        request.state.context = RequestContext(actor="anonymous", trace_id=trace_id)
        trace_header = (TRACE_HEADER.encode(), trace_id.encode())

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), trace_header]
            await send(message)

        try:
            check_accept(request)
        except FhirError as exc:
            await FhirResponse(exc.outcome(), exc.status)(scope, receive, send_with_trace)
            return
        security = scope["app"].state.security
        await security.handle(request, self.app, receive, send_with_trace, trace_id)
