"""Every error leaves the server as an OperationOutcome."""

import logging
import traceback

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..resources.errors import FhirError, Issue, operation_outcome
from ..resources.store import TransientConflict
from .responses import FhirResponse

log = logging.getLogger("nphies_facade.server")

HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


async def fhir_error(_: Request, exc: FhirError) -> FhirResponse:
    return FhirResponse(exc.outcome(), exc.status)


async def http_error(_: Request, exc: HTTPException) -> FhirResponse:
    issue = Issue(HTTP_CODES.get(exc.status_code, "processing"), str(exc.detail))
    return FhirResponse(operation_outcome([issue]), exc.status_code, getattr(exc, "headers", None))


async def transient_conflict(_: Request, exc: TransientConflict) -> FhirResponse:
    issue = Issue("transient", "A concurrent write touched the same data; nothing was written. Send the request again.")
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
    app.add_exception_handler(TransientConflict, transient_conflict)
    app.add_exception_handler(Exception, unexpected_error)
