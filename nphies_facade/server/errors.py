"""Every error leaves the server as an OperationOutcome: FHIR errors, the route table's 404 and 405, request
validation, conflicts and anything unexpected (500) replace Starlette's and FastAPI's plain answers."""

import logging
import traceback
from http import HTTPStatus

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match

from ..resources.errors import FhirError, Issue, operation_outcome
from ..resources.store import TransientConflict
from .fast_routes import every_route
from .responses import FhirResponse

log = logging.getLogger("nphies_facade.server")

HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


async def fhir_error(_: Request, exc: FhirError) -> FhirResponse:
    return FhirResponse(exc.outcome(), exc.status)


def _unknown_operation(request: Request) -> str | None:
    """`$name` when the path names an operation that no route serves, whatever the method."""
    name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith("$"):
        return None
    for route in every_route(request.app.routes):
        if getattr(route, "path", "").endswith(f"/{name}"):
            return None
    return name


def _http_issue(request: Request, status: int, detail: str) -> tuple[int, Issue]:
    """Status and issue for an HTTP error; Starlette's bare phrases ("Not Found") become sentences that say
    what was asked (method and path, never the query, which may carry PHI)."""
    method, path = request.method, request.url.path
    default = detail == _phrase(status)
    operation = _unknown_operation(request) if status in (404, 405) else None
    if operation:
        return 404, Issue("not-supported", f"The operation {operation} is not supported here")
    if status == 404 and default:
        return 404, Issue(
            "not-found", f"Nothing is served at {path}; see /metadata for what this server offers"
        )
    if status == 405 and default:
        return 405, Issue("not-supported", f"{method} is not allowed on {path}; it takes {_allowed(request)}")
    return status, Issue(HTTP_CODES.get(status, "processing"), str(detail))


def _allowed(request: Request) -> str:
    """The methods of every route whose path matches (Starlette's Allow names only the first route's)."""
    methods: set[str] = set()
    for route in every_route(request.app.routes):
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route_methods
    return ", ".join(sorted(methods))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def http_error(request: Request, exc: HTTPException) -> FhirResponse:
    status, issue = _http_issue(request, exc.status_code, str(exc.detail))
    headers = dict(getattr(exc, "headers", None) or {}) if status == exc.status_code else {}
    if status == 405:
        headers["Allow"] = _allowed(request)
    return FhirResponse(operation_outcome([issue]), status, headers or None)


async def request_invalid(_: Request, exc: RequestValidationError) -> FhirResponse:
    """FastAPI's parameter checks: each problem named by where it is, without the value sent."""
    issues = [
        Issue(
            "invalid",
            str(problem.get("msg", "invalid")),
            expression=".".join(map(str, problem.get("loc", ()))),
        )
        for problem in exc.errors()
    ]
    return FhirResponse(operation_outcome(issues or [Issue("invalid", "The request is not valid")]), 400)


async def transient_conflict(_: Request, exc: TransientConflict) -> FhirResponse:
    issue = Issue(
        "transient", "A concurrent write touched the same data; nothing was written. Send the request again."
    )
    return FhirResponse(operation_outcome([issue]), 503, {"Retry-After": "1"})


async def unexpected_error(request: Request, exc: Exception) -> FhirResponse:
    trace = getattr(request.state, "trace_id", "-")
    # The exception's message may quote request data, so only its type and stack are logged.
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unhandled %s on %s %s trace=%s\n%s",
        type(exc).__name__,
        request.method,
        request.url.path,
        trace,
        stack,
    )
    issue = Issue("exception", f"Internal error; quote trace id {trace} to the operator")
    return FhirResponse(operation_outcome([issue]), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, fhir_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(TransientConflict, transient_conflict)
    app.add_exception_handler(Exception, unexpected_error)
