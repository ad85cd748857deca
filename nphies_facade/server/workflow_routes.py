"""The workflow operations over HTTP: Task $approve and $reject (people's decisions), $retry and $skip
(manual override of a failed instance). Each answers with the Task as it now is.

Included before the REST routes, so `POST /Task/1/$approve` is no create of a type `1`.
"""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..resources.errors import error
from ..resources.operations_access import OperationDeclaration
from ..resources.store import StoredVersion
from ..workflows import human, overrides
from ..workflows.engine import Engine
from .operation_routes import DEFINITIONS, _parameters, authorized
from .responses import FhirResponse, version_headers
from .rest import base_url

router = APIRouter()

TASK_NEEDS = ("read Task", "update Task")
APPROVE = OperationDeclaration(
    "approve",
    "Task",
    f"{DEFINITIONS}/Task-approve",
    "POST on an open decision Task a workflow opened for a person (Parameters reason, optional): "
    "completes it; the workflow instance resumes at its on_approve step; returns the Task",
    needs=TASK_NEEDS,
)
REJECT = OperationDeclaration(
    "reject",
    "Task",
    f"{DEFINITIONS}/Task-reject",
    "POST on an open decision Task (Parameters reason, optional): rejects it; the workflow instance "
    "resumes at its on_reject step; returns the Task",
    needs=TASK_NEEDS,
)
RETRY = OperationDeclaration(
    "retry",
    "Task",
    f"{DEFINITIONS}/Task-retry",
    "POST on a failed workflow instance Task (Parameters reason, optional): runs the failed step again "
    "(status back to in-progress); returns the Task",
    needs=TASK_NEEDS,
)
SKIP = OperationDeclaration(
    "skip",
    "Task",
    f"{DEFINITIONS}/Task-skip",
    "POST on a failed workflow instance Task (Parameters reason, required; step, optional): moves on to "
    "`step`, or ends the instance completed without one; the reason is kept in Task.note; returns the Task",
    needs=TASK_NEEDS,
)
OPERATIONS = [APPROVE, REJECT, RETRY, SKIP]


def _engine(request: Request) -> Engine:
    engine = getattr(request.app.state, "workflows", None)
    if engine is None:
        raise error(503, "transient", "The workflow engine is not running")
    return engine


def _answer(request: Request, stored: StoredVersion) -> Response:
    location = f"{base_url(request)}/Task/{stored.id}/_history/{stored.version}"
    return FhirResponse(stored.body, 200, {**version_headers(stored), "Content-Location": location})


@router.post("/Task/{task_id}/$approve")
async def approve(request: Request, task_id: str) -> Response:
    await authorized(request, APPROVE)
    body = await _parameters(request)
    return _answer(request, await human.decide(_engine(request), request.state.context, task_id, body, True))


@router.post("/Task/{task_id}/$reject")
async def reject(request: Request, task_id: str) -> Response:
    await authorized(request, REJECT)
    body = await _parameters(request)
    return _answer(request, await human.decide(_engine(request), request.state.context, task_id, body, False))


@router.post("/Task/{task_id}/$retry")
async def retry(request: Request, task_id: str) -> Response:
    await authorized(request, RETRY)
    body = await _parameters(request)
    return _answer(request, await overrides.retry(_engine(request), request.state.context, task_id, body))


@router.post("/Task/{task_id}/$skip")
async def skip(request: Request, task_id: str) -> Response:
    await authorized(request, SKIP)
    body = await _parameters(request)
    return _answer(request, await overrides.skip(_engine(request), request.state.context, task_id, body))
