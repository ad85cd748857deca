"""The R4 Task state machine (https://hl7.org/fhir/R4/task.html#statemachine), checked on every Task write.

A new Task may start in any status. A new version may keep its status or take one of the transitions
below; anything else is a 409. A Task put on hold remembers the status it left in a server-maintained
extension and resumes only to that status. Terminal statuses only go on to entered-in-error, which is
final.
"""

from .. import exact_json
from .errors import FhirError, Issue, bad_request
from .store import StoredVersion

HELD_FROM = "http://nphies-facade.org/fhir/StructureDefinition/task-status-before-hold"
ON_HOLD, ENTERED_IN_ERROR = "on-hold", "entered-in-error"

_ENDS = {"cancelled", "failed", ENTERED_IN_ERROR}
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested", "cancelled", ENTERED_IN_ERROR}),
    "requested": frozenset({"received", "accepted", "rejected", "ready", "in-progress", ON_HOLD, *_ENDS}),
    "received": frozenset({"accepted", "rejected", "ready", "in-progress", ON_HOLD, *_ENDS}),
    "accepted": frozenset({"ready", "in-progress", ON_HOLD, *_ENDS}),
    "ready": frozenset({"in-progress", "completed", ON_HOLD, *_ENDS}),
    "in-progress": frozenset({"completed", ON_HOLD, *_ENDS}),
    ON_HOLD: frozenset(_ENDS),  # plus the status the Task was held from
    "rejected": frozenset({ENTERED_IN_ERROR}),
    "cancelled": frozenset({ENTERED_IN_ERROR}),
    "completed": frozenset({ENTERED_IN_ERROR}),
    "failed": frozenset({ENTERED_IN_ERROR}),
    ENTERED_IN_ERROR: frozenset(),
}
STATUSES = frozenset(TRANSITIONS)
# A Task that went on hold before the server remembered where from may resume to any of these.
RESUMABLE = frozenset({"requested", "received", "accepted", "ready", "in-progress"})
# A failed workflow instance (Task.code in this system) may be taken up again by a person's manual
# override (the engine's $retry and $skip, docs/workflows.md): failed -> in-progress.
WORKFLOW_SYSTEM = "urn:nphies-facade:workflow"


def allowed_next(status: str, held_from: str | None = None) -> frozenset[str]:
    """The statuses a Task in `status` may move to (besides staying where it is)."""
    allowed = TRANSITIONS.get(status, frozenset())
    if status == ON_HOLD:
        allowed = allowed | ({held_from} if held_from in RESUMABLE else RESUMABLE)
    return allowed


def held_from(task: dict) -> str | None:
    for extension in task.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == HELD_FROM:
            return extension.get("valueCode")
    return None


def _set_held_from(task: dict, status: str | None) -> None:
    kept = [e for e in task.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == HELD_FROM)]
    if status is not None:
        kept.append({"url": HELD_FROM, "valueCode": status})
    if kept:
        task["extension"] = kept
    else:
        task.pop("extension", None)


def _status(task: dict) -> str:
    status = task.get("status")
    if status not in STATUSES:
        raise bad_request(
            f"Task.status {status!r} is not an R4 Task status ({', '.join(sorted(STATUSES))})", "Task.status"
        )
    return status


def check_transition(previous: dict | None, task: dict) -> None:
    """Raises 409 when `task` may not follow `previous` (None: a new Task); keeps the hold memory.

    `task` is the version about to be stored; its hold extension is set here, whatever the client sent.
    """
    status = _status(task)
    before = None if previous is None else previous.get("status")
    remembered = None if previous is None else held_from(previous)
    resumed = before == "failed" and status == "in-progress" and _is_workflow_instance(previous)
    moved = before is not None and status != before and not resumed
    if moved and status not in allowed_next(before, remembered):
        raise FhirError(
            409,
            [
                Issue(
                    "business-rule",
                    f"Task status cannot change from {before} to {status}; from {before} it may go to "
                    f"{', '.join(sorted(allowed_next(before, remembered))) or 'nothing (final)'}",
                    expression="Task.status",
                )
            ],
        )
    if status != ON_HOLD:
        _set_held_from(task, None)
    elif before == ON_HOLD:
        _set_held_from(task, remembered)
    else:
        _set_held_from(task, before)


def _is_workflow_instance(task: dict | None) -> bool:
    codings = ((task or {}).get("code") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("system") == WORKFLOW_SYSTEM for c in codings)


def check_task_write(previous: StoredVersion | None, resource: dict) -> None:
    """The FhirService check: for a Task, `previous` (the version it replaces, if any) must allow it."""
    if resource.get("resourceType") != "Task":
        return
    before = exact_json.loads(previous.body) if previous is not None and previous.body is not None else None
    check_transition(before, resource)
