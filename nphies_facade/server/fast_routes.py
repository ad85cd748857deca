"""The REST interactions on `[type]` and `[type]/[id]` (search, read, create, update, patch, delete and
their conditional forms) sent straight to their handlers by the method and the shape of the path, ahead of
FastAPI's route table.

FastAPI tries a request against the routes of every included router, then solves the endpoint's
dependencies: about half the CPU time of an indexed search. This ASGI middleware (the innermost one) calls
the same handler functions the routes use. A path another route of the same method names by its first
segment (`/AuditEvent`, `/metadata`, a mount ...) keeps going through the route table, as does every other
method and shape, so what the routes answer never changes. Exceptions are answered by the app's exception
handlers, as the route table's ExceptionMiddleware would; anything without one goes on to
ServerErrorMiddleware.
"""

import re
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..resources.types import is_supported
from . import rest, search_routes

Handler = Callable[..., Awaitable[Response]]

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
TYPE, INSTANCE = "/{resource_type}", "/{resource_type}/{resource_id}"
# The generic routes the fast path stands in for, by method; any other route with a literal first segment
# (for that method) wins.
GENERIC: dict[str, dict[str, Handler]] = {
    "GET": {TYPE: search_routes.type_search, INSTANCE: rest.read},
    "POST": {TYPE: rest.create},
    "PUT": {TYPE: rest.conditional_update, INSTANCE: rest.update},
    "PATCH": {TYPE: rest.conditional_patch, INSTANCE: rest.patch},
    "DELETE": {TYPE: rest.conditional_delete, INSTANCE: rest.delete},
}


def every_route(routes: Iterable[object]) -> Iterable[object]:
    """Every route, through included routers (FastAPI keeps them as branches) and mounts."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from every_route(included.routes)
            continue
        yield route


def claimed_segments(routes: Iterable[object], method: str = "GET") -> set[str] | None:
    """First path segments that a mount, or a `method` route of one or two segments, names literally
    (longer routes never match the paths the fast path takes). None when some other route has the generic
    shapes (`/{a}` or `/{a}/{b}` for `method`), so the fast path cannot know what it would shadow."""
    generic = GENERIC[method]
    claimed: set[str] = set()
    for route in every_route(routes):
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None)
        if methods is not None and method not in methods:
            continue
        parts = path.strip("/").split("/")
        if methods is not None and len(parts) > 2:
            continue
        if parts[0] and not parts[0].startswith("{"):
            claimed.add(parts[0])
            continue
        if getattr(route, "endpoint", None) is generic.get(path):
            continue
        if methods is None or all(p.startswith("{") for p in parts) or _shadows_an_id(parts):
            return None
    return claimed


def _shadows_an_id(parts: list[str]) -> bool:
    """`/{a}/literal` where the literal could be an id the fast path would take for `[type]/[id]`."""
    return len(parts) == 2 and FHIR_ID.fullmatch(parts[1]) is not None


class FastRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Per method: the claimed first segments, or None when the fast path is off for it.
        self._claimed: dict[str, set[str] | None] = {}

    def _handler(self, scope: Scope) -> tuple[Handler, tuple[str, ...]] | None:
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        method = scope["method"]
        handlers = GENERIC.get(method)
        if handlers is None:
            return None
        parts = scope["path"].split("/")
        if len(parts) not in (2, 3) or parts[0] or not is_supported(parts[1]):
            return None
        if method not in self._claimed:
            self._claimed[method] = claimed_segments(scope["app"].routes, method)
        claimed = self._claimed[method]
        if claimed is None or parts[1] in claimed:
            return None
        if len(parts) == 2:
            return handlers[TYPE], (parts[1],)
        handler = handlers.get(INSTANCE)
        if handler is None or FHIR_ID.fullmatch(parts[2]) is None:
            return None
        return handler, (parts[1], parts[2])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._handler(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, args = found
        scope["endpoint"] = handler
        request = Request(scope, receive, send)
        try:
            response = await handler(request, *args)
        except Exception as exc:
            answer = _exception_handler(scope["app"].exception_handlers, exc)
            if answer is None:
                raise
            response = await answer(request, exc)
        await response(scope, receive, send)


def _exception_handler(handlers: dict, exc: Exception) -> Callable | None:
    """The handler registered for the closest class of `exc`, except the catch-all one (500), which
    ServerErrorMiddleware runs."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
