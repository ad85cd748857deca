"""Workflow definitions as Python code: a workflow has a name, triggers and steps; a step returns what comes next.

An instance of a workflow is a Task (`code` = the workflow, `focus`/`for` = its subject, `businessStatus`
= the current step, `restriction.period.end` = the step's SLA deadline, `input`/`output` = its data). The
engine (engine.py) runs each step as a job and advances the Task with If-Match; a step only computes the
outcome below from what it reads, so running it twice is harmless.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..subscriptions.retry import backoff

if TYPE_CHECKING:
    from .context import StepContext

WORKFLOW_SYSTEM = "urn:nphies-facade:workflow"
STEP_SYSTEM = "urn:nphies-facade:workflow-step"


@dataclass(frozen=True, slots=True)
class Retry:
    """How a step that raised is tried again: `attempts` in all, waiting `initial` * 2^n seconds, capped."""

    attempts: int = 3
    initial: float = 1.0
    maximum: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`th failed attempt (1-based)."""
        return backoff(attempt, self.initial, self.maximum)


class StepFailed(Exception):
    """Raised by a step for a failure that retrying cannot fix: the instance fails at this step with
    `reason` (a code, e.g. `consent-missing`) and waits for a person ($retry or $skip)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Next:
    """Go on to `step` now; `output` entries (name -> JSON value) are recorded in Task.output."""

    step: str
    output: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait until `until` (a durable timer, stored on the Task), then run `step`."""

    step: str
    until: datetime
    reason: str = ""
    output: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AskPerson:
    """Create a Task for a person or group (`owner`, a reference) as part of this instance and wait for it.

    When that Task is completed (or `$approve`d) the instance goes on to `on_approve`; when it is rejected,
    cancelled or failed, to `on_reject`. `sla` sets the human Task's deadline; when it passes, the step's
    escalation runs."""

    owner: str
    description: str
    on_approve: str
    on_reject: str
    sla: timedelta | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    output: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class End:
    """The instance ends: `completed`, `failed` (with `reason`) or `cancelled`."""

    outcome: Literal["completed", "failed", "cancelled"] = "completed"
    reason: str = ""
    output: Mapping[str, Any] = field(default_factory=dict)


Outcome = Next | Wait | AskPerson | End
StepFunction = Callable[["StepContext"], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Step:
    """One step. `timeout` bounds one attempt (seconds); `sla` is the deadline from entering the step to
    leaving it; when it passes, the instance is escalated to `escalate_to` (an owner reference)."""

    name: str
    run: StepFunction
    retry: Retry = Retry()
    timeout: float = 30.0
    sla: timedelta | None = None
    escalate_to: str | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """A change that starts an instance: resources matching `criteria` (Subscription criteria syntax,
    e.g. `Claim?status=active`) created (or updated, when `on_update`)."""

    criteria: str
    on_update: bool = False


@dataclass(frozen=True, slots=True)
class Workflow:
    """`subject` maps the triggering resource to the instance's subject reference (`Patient/1`), or None
    when the change does not start an instance. There is at most one open instance per workflow and
    subject, so a redelivered or repeated trigger never starts a second one. `patient` maps it to the
    patient the instance is for (`Task.for`), when that is not the subject (a Claim's `patient`): the
    patient's consent revocation cancels the instance."""

    name: str
    title: str
    start: str
    steps: tuple[Step, ...]
    triggers: tuple[Trigger, ...] = ()
    subject: Callable[[dict], str | None] = lambda resource: f"{resource['resourceType']}/{resource['id']}"
    patient: Callable[[dict], str | None] | None = None

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"workflow {self.name} has no step {name!r}")
