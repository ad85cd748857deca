"""The Tasks of the operations as FHIR JSON: a $submit Task, its step, its outputs, its end.

A submit Task's step is `businessStatus` (system urn:nphies-facade:nphies-step); when the step is due and
how many times it was tried are extensions (step-due, step-attempt), so the schedule lives in the store
and a restarted server resumes it. `restriction.period.end` is the deadline for a final answer.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from ..resources.clock import fhir_instant
from .codes import (
    INPUT_TYPES,
    OPERATION_CODES,
    OUTPUT_TYPES,
    STEP_ATTEMPT,
    STEP_CODES,
    STEP_DUE,
    SUBMIT,
    SUBMIT_IDENTIFIER,
)

TERMINAL = frozenset({"completed", "failed", "cancelled", "rejected", "entered-in-error"})

# Settled steps: waiting until due, then run.
QUEUED = "queued"
STATUS_CHECK = "status-check"
REPLAY = "replay"
PENDED = "pended"
INFORMATION_REQUESTED = "information-requested"
# Steps a runner is performing; their due time is the runner's lease.
SENDING, CHECKING, POLLING = "sending", "checking", "polling"
# Ends.
ANSWERED, ERROR, CANCELLED, FAILED = "answered", "error", "cancelled", "failed"

STEP_TEXT = {
    QUEUED: "Waiting to be sent to NPHIES",
    SENDING: "Sending to NPHIES",
    STATUS_CHECK: "The answer was lost: asking NPHIES whether it has the claim",
    CHECKING: "Asking NPHIES whether it has the claim",
    REPLAY: "Asking NPHIES for its answer again",
    PENDED: "Queued at NPHIES: polling for the answer",
    INFORMATION_REQUESTED: "The payer asked for more information: polling for the answer",
    POLLING: "Polling NPHIES for the answer",
    ANSWERED: "NPHIES answered",
    ERROR: "NPHIES answered with errors",
    CANCELLED: "Cancelled",
    FAILED: "No answer from NPHIES",
}
ERRORS_ID = "errors"


@dataclass(frozen=True)
class Step:
    code: str
    due: float  # epoch seconds
    attempt: int = 0


def submit_identifier(claim_id: str, version: int) -> str:
    return f"Claim/{claim_id}/_history/{version}"


def submit_criteria(claim_id: str, version: int) -> str:
    return f"identifier={SUBMIT_IDENTIFIER}|{submit_identifier(claim_id, version)}"


def submit_task(
    claim_id: str, version: int, claim: dict, now: datetime, deadline: datetime, requester: str | None
) -> dict:
    """A new $submit Task for one Claim version, queued to be sent now."""
    stamp = fhir_instant(now)
    task: dict = {
        "resourceType": "Task",
        "identifier": [{"system": SUBMIT_IDENTIFIER, "value": submit_identifier(claim_id, version)}],
        "status": "requested",
        "intent": "order",
        "code": concept(OPERATION_CODES, SUBMIT, "Submit a claim or prior authorization to NPHIES"),
        "focus": {"reference": f"Claim/{claim_id}"},
        "authoredOn": stamp,
        "lastModified": stamp,
        "restriction": {"period": {"end": fhir_instant(deadline)}},
        "input": [
            {
                "type": concept(INPUT_TYPES, "claim"),
                "valueReference": {"reference": submit_identifier(claim_id, version)},
            }
        ],
    }
    if isinstance(claim.get("patient"), dict):
        task["for"] = claim["patient"]
    if requester:
        task["requester"] = {"reference": requester}
    return with_step(task, QUEUED, now, now, 0)


def concept(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display} if display else {"coding": [coding]}


def is_submit(task: dict) -> bool:
    return any(
        c.get("system") == OPERATION_CODES and c.get("code") == SUBMIT
        for c in (task.get("code") or {}).get("coding") or []
    )


def step_of(task: dict) -> Step:
    code = next(
        (
            c.get("code")
            for c in (task.get("businessStatus") or {}).get("coding") or []
            if c.get("system") == STEP_CODES
        ),
        QUEUED,
    )
    due, attempt = 0.0, 0
    for extension in task.get("extension") or []:
        if extension.get("url") == STEP_DUE:
            due = datetime.fromisoformat(extension["valueInstant"]).timestamp()
        elif extension.get("url") == STEP_ATTEMPT:
            attempt = int(extension.get("valueInteger", 0))
    return Step(code, due, attempt)


def with_step(
    task: dict, code: str, now: datetime, due: datetime | None, attempt: int, note: str | None = None
) -> dict:
    """Sets the step (and when it is due: None for an end), and lastModified."""
    text = STEP_TEXT.get(code, code) + (f": {note}" if note else "")
    task["businessStatus"] = {"coding": [{"system": STEP_CODES, "code": code}], "text": text}
    kept = [e for e in task.get("extension") or [] if e.get("url") not in (STEP_DUE, STEP_ATTEMPT)]
    if due is not None:
        kept += [
            {"url": STEP_DUE, "valueInstant": fhir_instant(due)},
            {"url": STEP_ATTEMPT, "valueInteger": attempt},
        ]
    if kept:
        task["extension"] = kept
    else:
        task.pop("extension", None)
    task["lastModified"] = fhir_instant(now)
    return task


def start(task: dict, now: datetime) -> dict:
    if task.get("status") == "requested":
        task["status"] = "in-progress"
    task.setdefault("executionPeriod", {}).setdefault("start", fhir_instant(now))
    return task


def finish(task: dict, status: str, now: datetime) -> dict:
    task["status"] = status
    task.setdefault("executionPeriod", {})["end"] = fhir_instant(now)
    return task


def add_output(task: dict, kind: str, reference: str, display: str | None = None) -> None:
    value = {"reference": reference}
    if display:
        value["display"] = display
    task.setdefault("output", []).append({"type": concept(OUTPUT_TYPES, kind), "valueReference": value})


def outputs(task: dict, kind: str) -> list[dict]:
    """The valueReference of each output of one type, in order."""
    return [
        o["valueReference"]
        for o in task.get("output") or []
        if any(
            c.get("code") == kind and c.get("system") == OUTPUT_TYPES
            for c in (o.get("type") or {}).get("coding") or []
        )
        and isinstance(o.get("valueReference"), dict)
    ]


def add_errors(task: dict, reason: str, outcome: dict) -> None:
    """statusReason, and the OperationOutcome (contained) as an output."""
    task["statusReason"] = {"text": reason}
    contained = [r for r in task.get("contained") or [] if r.get("id") != ERRORS_ID]
    task["contained"] = [*contained, {**outcome, "id": ERRORS_ID}]
    add_output(task, "errors", f"#{ERRORS_ID}")


def claim_input(task: dict) -> str | None:
    """The Claim version the Task submits (`Claim/1/_history/2`)."""
    for item in task.get("input") or []:
        if any(c.get("code") == "claim" for c in (item.get("type") or {}).get("coding") or []):
            return (item.get("valueReference") or {}).get("reference")
    return None


def deadline_of(task: dict) -> float | None:
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    return datetime.fromisoformat(end).timestamp() if end else None


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
