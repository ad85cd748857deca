"""The NPHIES operations over HTTP: Coverage $eligibility, Claim $submit and $cancel, Task $poll.

Included before the REST routes, so `POST /Claim/1/$submit` is no create of a type `1`.
"""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..operations import NphiesOperations
from ..resources.operations_access import OperationDeclaration
from ..resources.store import StoredVersion
from ..resources.validation import parse_json
from .negotiation import check_content_type, read_body
from .responses import FhirResponse, version_headers
from .rest import base_url

router = APIRouter()

DEFINITIONS = "https://github.com/nphies-facade/OperationDefinition"
ELIGIBILITY = OperationDeclaration(
    "eligibility",
    "Coverage",
    f"{DEFINITIONS}/Coverage-eligibility",
    "POST, in real time: asks the payer through NPHIES whether the Coverage is in force (Parameters "
    "purpose=benefits|validation|discovery, servicedDate); returns the stored CoverageEligibilityResponse; "
    "answers are cached (Cache-Control: no-cache asks again)",
    needs=(
        "read Coverage",
        "create CoverageEligibilityRequest",
        "create CoverageEligibilityResponse",
        "read CoverageEligibilityResponse",
        "create DocumentReference",
    ),
)
SUBMIT = OperationDeclaration(
    "submit",
    "Claim",
    f"{DEFINITIONS}/Claim-submit",
    "POST, asynchronous: 202 with a Task (Content-Location) that sends the Claim version as a "
    "priorauth-request or claim-request, polls while NPHIES queues the answer, and completes with the "
    "ClaimResponse in Task.output; the same version again returns the same Task",
    needs=("read Claim", "create Task", "read Task", "create DocumentReference"),
)
CANCEL = OperationDeclaration(
    "cancel",
    "Claim",
    f"{DEFINITIONS}/Claim-cancel",
    "POST, in real time: a cancel-request (Parameters reason=WI|NP|TAS, nullify); returns the Task "
    "recording NPHIES's answer and ends the Claim's open $submit Tasks",
    needs=("read Claim", "create Task", "read Task", "update Task", "create DocumentReference"),
)
POLL = OperationDeclaration(
    "poll",
    "Task",
    f"{DEFINITIONS}/Task-poll",
    "POST on a $submit Task: runs its step now (polls NPHIES for a queued answer); returns the Task",
    needs=("read Task", "update Task", "create DocumentReference"),
)
OPERATIONS = [ELIGIBILITY, SUBMIT, CANCEL, POLL]


def _operations(request: Request) -> NphiesOperations:
    return request.app.state.nphies


async def authorized(request: Request, operation: OperationDeclaration) -> None:
    """403 unless the caller may do everything the operation does; nothing is read or sent before."""
    await request.app.state.service.authorize_operation(request.state.context, operation)


async def _parameters(request: Request) -> object | None:
    """The optional Parameters body; no body is no parameters."""
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if not body.strip():
        return None
    check_content_type(request)
    return parse_json(body)


def _no_cache(request: Request) -> bool:
    directives = request.headers.get("cache-control", "") + "," + request.headers.get("pragma", "")
    return any(d.strip().lower() in ("no-cache", "no-store", "max-age=0") for d in directives.split(","))


def _headers(request: Request, stored: StoredVersion) -> dict[str, str]:
    location = f"{base_url(request)}/{stored.resource_type}/{stored.id}/_history/{stored.version}"
    return {**version_headers(stored), "Content-Location": location}


@router.post("/Coverage/{coverage_id}/$eligibility")
async def eligibility(request: Request, coverage_id: str) -> Response:
    await authorized(request, ELIGIBILITY)
    body = await _parameters(request)
    answer = await _operations(request).eligibility(
        request.state.context, coverage_id, body, use_cache=not _no_cache(request)
    )
    headers = _headers(request, answer.response) | {"X-Cache": "HIT" if answer.cached else "MISS"}
    return FhirResponse(answer.response.body, 200, headers)


@router.post("/Claim/{claim_id}/$submit")
async def submit(request: Request, claim_id: str) -> Response:
    await authorized(request, SUBMIT)
    body = await _parameters(request)
    submitted = await _operations(request).submit(request.state.context, claim_id, body)
    task = submitted.task
    headers = version_headers(task) | {"Content-Location": f"{base_url(request)}/Task/{task.id}"}
    return FhirResponse(task.body, 202, headers)


@router.post("/Claim/{claim_id}/$cancel")
async def cancel(request: Request, claim_id: str) -> Response:
    await authorized(request, CANCEL)
    body = await _parameters(request)
    cancelled = await _operations(request).cancel(request.state.context, claim_id, body)
    headers = _headers(request, cancelled.task)
    if cancelled.failure is not None:
        return FhirResponse(cancelled.failure.outcome(), cancelled.failure.status, headers)
    return FhirResponse(cancelled.task.body, 200, headers)


@router.post("/Task/{task_id}/$poll")
async def poll(request: Request, task_id: str) -> Response:
    await authorized(request, POLL)
    body = await _parameters(request)
    task = await _operations(request).poll(request.state.context, task_id, body)
    return FhirResponse(task.body, 200, _headers(request, task))
