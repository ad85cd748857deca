"""People in the loop: `$approve` and `$reject` on the decision Task an AskPerson step opened.

Both are ordinary Task writes through FhirService (so access rules, audit and the Task state machine
apply): the Task moves to `completed` (approve) or `rejected`/`cancelled` (reject), through the statuses
the state machine requires on the way, with the reason as statusReason. The instance then resumes at
on_approve or on_reject; a PUT or PATCH that completes the Task resumes it just the same (the
`workflow.person-task` trigger Subscription).
"""

from collections import deque

from ..nphies.fhirjson import copy_json
from ..operations.parameters import check_names, read_parameters, single
from ..operations.transactions import in_transaction
from ..resources.clock import fhir_instant
from ..resources.context import RequestContext
from ..resources.errors import FhirError, bad_request, conflict
from ..resources.service import resource_json
from ..resources.store import StoredVersion, StoreTransaction
from ..resources.task_states import allowed_next, held_from
from .engine import Engine
from .instances import DECISION, OPEN, add_note, human_kind


def read_reason(
    body: object | None, operation: str, required: bool = False, names: set[str] | None = None
) -> str:
    parameters = read_parameters(body)
    check_names(parameters, names or {"reason"}, operation)
    reason = single(parameters, "reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise bad_request("reason is a non-empty string (valueString)", "Parameters.parameter[reason]")
    if required and reason is None:
        raise bad_request(
            f"{operation} needs a reason (Parameters.parameter reason, valueString)", "Parameters"
        )
    return (reason or "").strip()


def status_path(task: dict, target: str) -> list[str] | None:
    """The shortest run of statuses from the Task's status to `target` the state machine allows."""
    start = task.get("status", "")
    queue: deque[tuple[str, list[str]]] = deque([(start, [])])
    seen = {start}
    while queue:
        status, path = queue.popleft()
        for following in sorted(allowed_next(status, held_from(task) if status == start else None)):
            if following == target:
                return [*path, following]
            if following not in seen and following in OPEN and following != "on-hold":
                seen.add(following)
                queue.append((following, [*path, following]))
    return None


async def decide(
    engine: Engine, ctx: RequestContext, task_id: str, body: object | None, approve: bool
) -> StoredVersion:
    operation = "$approve" if approve else "$reject"
    reason = read_reason(body, operation)
    service = engine.service
    stored = await service.read("Task", task_id, ctx=ctx)
    task = resource_json(stored)
    if human_kind(task) != DECISION:
        raise conflict(
            f"{operation} works on the decision Tasks workflows open for people; Task/{task_id} is not one"
        )
    if task.get("status") not in OPEN:
        raise conflict(
            f"Task/{task_id} is {task.get('status')} already; only an open decision can be decided"
        )
    targets = ["completed"] if approve else ["rejected", "cancelled"]
    path = next((p for p in (status_path(task, t) for t in targets) if p), None)
    if path is None:
        raise conflict(f"Task/{task_id} cannot move from {task.get('status')} to {' or '.join(targets)}")
    now = engine.now()
    decided = copy_json(task)
    if reason:
        decided["statusReason"] = {"text": reason}
        add_note(decided, f"{operation}: {reason}", ctx.actor, now)
    decided["lastModified"] = fhir_instant(now)
    decided.setdefault("executionPeriod", {})["end"] = fhir_instant(now)

    async def write(tx: StoreTransaction) -> StoredVersion | None:
        version = stored.version
        result = None
        for status in path:
            result = await service.update(
                ctx,
                "Task",
                task_id,
                {**copy_json(decided), "status": status},
                if_match=f'W/"{version}"',
                tx=tx,
            )
            version = result.version.version
        return result.version if result else None

    try:
        written = await in_transaction(service, write)
    except FhirError as exc:
        if exc.status == 412:
            raise conflict(
                f"Task/{task_id} changed while it was being decided; read it and try again"
            ) from None
        raise
    await engine.person_task_done(task_id)
    return written
