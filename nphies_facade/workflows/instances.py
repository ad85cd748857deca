"""The Task form of a workflow instance, of the Tasks it opens for people, and how to read them back.

An instance is a Task: `code` = the workflow (dsl.WORKFLOW_SYSTEM), `focus` = the subject, `for` = the
patient it is for (the subject unless the workflow names a patient),
`businessStatus` = the step (dsl.STEP_SYSTEM; a second coding `escalated` once the step's SLA passed),
`restriction.period.end` = the step's SLA deadline, `input` = the trigger, `output` = the data the steps
recorded. The schedule is in extensions, so it survives restarts: when the step is due, how many attempts
failed, when the step was entered, which person Task it waits for, and a log entry for each step left.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .. import exact_json
from ..resources.clock import fhir_instant
from ..subscriptions.topics import EXTENSION_BASE
from .dsl import STEP_SYSTEM, WORKFLOW_SYSTEM, Workflow
from .events import TRACE_EXTENSION, trace_extension

if TYPE_CHECKING:
    import httpx

INSTANCE_IDENTIFIER = "urn:nphies-facade:workflow-instance"
TRIGGER_IDENTIFIER = "urn:nphies-facade:workflow-trigger"
HUMAN_SYSTEM = "urn:nphies-facade:workflow-task"
DECISION, ESCALATION = "decision", "escalation"
STEP_STATUS_SYSTEM = "urn:nphies-facade:workflow-step-status"
ESCALATED = "escalated"

STEP_DUE = f"{EXTENSION_BASE}workflow-step-due"
STEP_ATTEMPT = f"{EXTENSION_BASE}workflow-step-attempt"
STEP_ENTERED = f"{EXTENSION_BASE}workflow-step-entered"
WAITING_FOR = f"{EXTENSION_BASE}workflow-waiting-for"
ON_APPROVE = f"{EXTENSION_BASE}workflow-on-approve"
ON_REJECT = f"{EXTENSION_BASE}workflow-on-reject"
STEP_LOG = f"{EXTENSION_BASE}workflow-step-log"
SCHEDULE = (STEP_DUE, STEP_ATTEMPT, WAITING_FOR, ON_APPROVE, ON_REJECT)

OPEN = ("requested", "received", "accepted", "ready", "in-progress", "on-hold")
TERMINAL = frozenset({"completed", "failed", "cancelled", "rejected", "entered-in-error"})
APPROVED, REJECTED = "completed", frozenset({"rejected", "cancelled", "failed"})


@dataclass(frozen=True, slots=True)
class State:
    """Where an instance is: its step, since when, when it is due (None: not scheduled), attempts failed."""

    workflow: str
    step: str
    status: str
    due: datetime | None
    attempt: int
    entered: datetime | None
    escalated: bool
    deadline: datetime | None
    waiting_for: str | None
    on_approve: str | None
    on_reject: str | None


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of an instance's timeline (from the step log)."""

    step: str
    entered: str
    left: str
    outcome: str
    attempts: int
    sla: str | None


def instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def coding_code(concept: dict | None, system: str) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("system") == system:
            return coding.get("code")
    return None


def _extensions(task: dict) -> dict[str, dict]:
    return {e.get("url"): e for e in task.get("extension") or [] if isinstance(e, dict)}


def workflow_of(task: dict) -> str | None:
    return coding_code(task.get("code"), WORKFLOW_SYSTEM)


def is_instance(task: dict) -> bool:
    return workflow_of(task) is not None


def human_kind(task: dict) -> str | None:
    """`decision` for a Task AskPerson opened, `escalation` for an escalation Task, else None."""
    return coding_code(task.get("code"), HUMAN_SYSTEM)


def trace_of(task: dict) -> str | None:
    return (_extensions(task).get(TRACE_EXTENSION) or {}).get("valueString")


def state_of(task: dict) -> State:
    ext = _extensions(task)
    business = task.get("businessStatus")
    return State(
        workflow=workflow_of(task) or "",
        step=coding_code(business, STEP_SYSTEM) or "",
        status=task.get("status", ""),
        due=instant((ext.get(STEP_DUE) or {}).get("valueInstant")),
        attempt=int((ext.get(STEP_ATTEMPT) or {}).get("valueInteger", 0)),
        entered=instant((ext.get(STEP_ENTERED) or {}).get("valueInstant")),
        escalated=coding_code(business, STEP_STATUS_SYSTEM) == ESCALATED,
        deadline=instant(((task.get("restriction") or {}).get("period") or {}).get("end")),
        waiting_for=((ext.get(WAITING_FOR) or {}).get("valueReference") or {}).get("reference"),
        on_approve=(ext.get(ON_APPROVE) or {}).get("valueCode"),
        on_reject=(ext.get(ON_REJECT) or {}).get("valueCode"),
    )


def instance_key(workflow: str, subject: str) -> str:
    return f"{workflow}/{subject}"


def open_instance_criteria(workflow: str, subject: str) -> str:
    return f"identifier={INSTANCE_IDENTIFIER}|{instance_key(workflow, subject)}&status={','.join(OPEN)}"


def new_instance(
    workflow: Workflow,
    subject: str,
    trigger: str,
    trace_id: str,
    now: datetime,
    deadline: datetime | None,
    patient: str | None = None,
) -> dict:
    """The Task of a new instance, in-progress at the workflow's first step, due now; `for` is the
    patient when given (the subject is then only the focus), else the subject."""
    stamp = fhir_instant(now)
    task: dict = {
        "resourceType": "Task",
        "identifier": [
            {"system": INSTANCE_IDENTIFIER, "value": instance_key(workflow.name, subject)},
            {"system": TRIGGER_IDENTIFIER, "value": f"{workflow.name}/{trigger}"},
        ],
        "status": "in-progress",
        "intent": "order",
        "code": {"coding": [{"system": WORKFLOW_SYSTEM, "code": workflow.name, "display": workflow.title}]},
        "description": workflow.title,
        "focus": {"reference": subject},
        "for": {"reference": patient or subject},
        "authoredOn": stamp,
        "executionPeriod": {"start": stamp},
        "input": [{"type": {"text": "trigger"}, "valueReference": {"reference": trigger}}],
        "extension": [trace_extension(trace_id)],
    }
    return enter(task, workflow.start, now, now, deadline)


def enter(task: dict, step: str, now: datetime, due: datetime | None, deadline: datetime | None) -> dict:
    """Puts the Task at the start of `step`, due at `due`, with a fresh SLA deadline (or none)."""
    task["businessStatus"] = {"coding": [{"system": STEP_SYSTEM, "code": step}], "text": step}
    set_deadline(task, deadline)
    _set(task, STEP_ENTERED, {"valueInstant": fhir_instant(now)})
    return schedule(task, now, due, 0)


def schedule(task: dict, now: datetime, due: datetime | None, attempt: int) -> dict:
    """Sets when the current step runs next (None: it does not run by itself) and the attempts so far."""
    for url in SCHEDULE:
        _set(task, url, None)
    if due is not None:
        _set(task, STEP_DUE, {"valueInstant": fhir_instant(due)})
        _set(task, STEP_ATTEMPT, {"valueInteger": attempt})
    task["lastModified"] = fhir_instant(now)
    return task


def wait_for_person(task: dict, human: str, on_approve: str, on_reject: str, now: datetime) -> dict:
    schedule(task, now, None, 0)
    _set(task, WAITING_FOR, {"valueReference": {"reference": human}})
    _set(task, ON_APPROVE, {"valueCode": on_approve})
    _set(task, ON_REJECT, {"valueCode": on_reject})
    task["status"] = "on-hold"
    task["statusReason"] = {"text": f"Waiting for {human}"}
    return task


def set_deadline(task: dict, deadline: datetime | None) -> None:
    if deadline is None:
        task.pop("restriction", None)
    else:
        task["restriction"] = {"period": {"end": fhir_instant(deadline)}}


def mark_escalated(task: dict, now: datetime) -> dict:
    business = task.setdefault("businessStatus", {})
    codings = [c for c in business.get("coding") or [] if c.get("system") != STEP_STATUS_SYSTEM]
    business["coding"] = [*codings, {"system": STEP_STATUS_SYSTEM, "code": ESCALATED}]
    step = coding_code(business, STEP_SYSTEM) or ""
    business["text"] = f"{step} (escalated: SLA passed)"
    task["lastModified"] = fhir_instant(now)
    return task


def log_step(task: dict, state: State, now: datetime, outcome: str, attempts: int) -> None:
    """Appends the step being left to the step log."""
    parts = [
        {"url": "step", "valueCode": state.step},
        {"url": "entered", "valueInstant": fhir_instant(state.entered or now)},
        {"url": "left", "valueInstant": fhir_instant(now)},
        {"url": "outcome", "valueCode": outcome},
        {"url": "attempts", "valueInteger": attempts},
    ]
    if state.deadline is not None:
        parts.append({"url": "sla", "valueCode": "breached" if state.escalated else "met"})
    task.setdefault("extension", []).append({"url": STEP_LOG, "extension": parts})


def timeline(task: dict) -> list[StepRecord]:
    """The steps an instance has left, in order."""
    records = []
    for extension in task.get("extension") or []:
        if extension.get("url") != STEP_LOG:
            continue
        parts = {
            p.get("url"): next((v for k, v in p.items() if k.startswith("value")), None)
            for p in extension.get("extension") or []
        }
        records.append(
            StepRecord(
                str(parts.get("step")),
                str(parts.get("entered")),
                str(parts.get("left")),
                str(parts.get("outcome")),
                int(parts.get("attempts") or 0),
                parts.get("sla"),
            )
        )
    return records


def finish(task: dict, status: str, now: datetime, reason: str = "") -> dict:
    schedule(task, now, None, 0)
    task["status"] = status
    if reason:
        task["statusReason"] = {"text": reason}
    else:
        task.pop("statusReason", None)
    task.setdefault("executionPeriod", {})["end"] = fhir_instant(now)
    return task


def reopen(task: dict, now: datetime) -> dict:
    """A failed instance goes back to work ($retry, $skip)."""
    task["status"] = "in-progress"
    task.pop("statusReason", None)
    task.get("executionPeriod", {}).pop("end", None)
    task["lastModified"] = fhir_instant(now)
    return task


def add_note(task: dict, text: str, author: str, now: datetime) -> None:
    task.setdefault("note", []).append({"authorString": author, "time": fhir_instant(now), "text": text})


def task_value(value: object) -> dict:
    """A JSON value as a Task input/output value[x]: strings, booleans, integers, decimals, references
    ({"reference": ...}), CodeableConcepts ({"coding": ...}); anything else as a JSON string."""
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    if isinstance(value, str):
        return {"valueString": value}
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("value"):
        return dict(value)
    if isinstance(value, dict) and "reference" in value:
        return {"valueReference": dict(value)}
    if isinstance(value, dict) and "coding" in value:
        return {"valueCodeableConcept": dict(value)}
    return {"valueString": exact_json.dumps(value).decode()}


def set_values(entries: list | None, values: dict) -> list:
    """`entries` (Task.input or output) with the named values replaced or added."""
    kept = [e for e in entries or [] if (e.get("type") or {}).get("text") not in values]
    given = {name: v for name, v in values.items() if v is not None and v != ""}
    return kept + [{"type": {"text": str(name)}, **task_value(v)} for name, v in given.items()]


def record_output(task: dict, values: dict) -> None:
    if values:
        task["output"] = set_values(task.get("output"), dict(values))


def person_task(
    instance: dict,
    instance_id: str,
    kind: str,
    owner: str | None,
    description: str,
    now: datetime,
    sla: timedelta | None,
    values: dict | None = None,
) -> dict:
    """A Task for a person or group, part of the instance: a decision (AskPerson) or an escalation."""
    task: dict = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent" if kind == ESCALATION else "routine",
        "code": {"coding": [{"system": HUMAN_SYSTEM, "code": kind}]},
        "description": description,
        "partOf": [{"reference": f"Task/{instance_id}"}],
        "authoredOn": fhir_instant(now),
        "lastModified": fhir_instant(now),
    }
    for name in ("focus", "for"):
        if instance.get(name):
            task[name] = instance[name]
    if owner:
        task["owner"] = {"reference": owner}
    if sla is not None:
        task["restriction"] = {"period": {"end": fhir_instant(now + sla)}}
    trace = trace_of(instance)
    if trace:
        task["extension"] = [trace_extension(trace)]
    if values:
        task["input"] = set_values(None, dict(values))
    return task


def part_of(task: dict) -> str | None:
    for reference in task.get("partOf") or []:
        if isinstance(reference, dict) and str(reference.get("reference", "")).startswith("Task/"):
            return reference["reference"]
    return None


def _set(task: dict, url: str, value: dict | None) -> None:
    kept = [e for e in task.get("extension") or [] if e.get("url") != url]
    if value is not None:
        kept.append({"url": url, **value})
    if kept:
        task["extension"] = kept
    else:
        task.pop("extension", None)


async def fetch_instances(client: "httpx.AsyncClient", workflow: str, page_size: int = 500) -> list[dict]:
    """Every instance Task of the workflow, through the FHIR API, following the `next` links."""
    found: list[dict] = []
    url: str | None = "/Task"
    params: dict | None = {"code": f"{WORKFLOW_SYSTEM}|{workflow}", "_count": str(page_size)}
    while url:
        # params=None, not {}: httpx replaces a link's own query with an empty one
        page = (await client.get(url, params=params)).json()
        found += [
            e["resource"]
            for e in page.get("entry", [])
            if e.get("search", {}).get("mode", "match") == "match"
        ]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
        params = None
    return found
