"""The workflow engine: starts instances, runs their steps as jobs, and advances their Tasks.

A step job's id is `step:{task id}:{step}:{version}`: it runs the step the Task is at when the Task is
still at that version and the step is due, and writes the outcome with If-Match on that version, in one
transaction with the Tasks it opens and the events it emits. A redelivered job, or a second worker, finds
another version (or gets a 412) and does nothing. A step that goes on at once runs its next step in the
same job (each outcome still a version); otherwise a write enqueues the job of the new version, and the
sweep (timers.py) enqueues whatever is due after a crash, a lost job or a Wait that ended.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..nphies.fhirjson import copy_json
from ..operations.transactions import in_transaction
from ..resources.clock import Clock, fhir_instant
from ..resources.context import RequestContext, new_trace_id
from ..resources.errors import FhirError
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion, StoreTransaction
from ..resources.tracing import bound
from ..subscriptions.queue import InProcessQueue, JobQueue
from . import metrics
from .context import StepContext
from .dsl import AskPerson, End, Next, Outcome, Step, StepFailed, Wait, Workflow
from .events import EVENTS, emit
from .instances import (
    APPROVED,
    DECISION,
    ESCALATION,
    REJECTED,
    TRIGGER_IDENTIFIER,
    State,
    enter,
    finish,
    human_kind,
    log_step,
    mark_escalated,
    new_instance,
    open_instance_criteria,
    part_of,
    person_task,
    record_output,
    schedule,
    set_deadline,
    state_of,
    trace_of,
    wait_for_person,
)
from .registry import Definitions, definitions
from .timers import Sweeper

log = logging.getLogger("nphies_facade.workflows")

STEP_PREFIX = "step:"
RETRY_REASON_SYSTEM = "urn:nphies-facade:workflow-retry-reason"


def step_job_id(task_id: str, step: str, version: int) -> str:
    return f"{STEP_PREFIX}{task_id}:{step}:{version}"


def parse_step_job(job_id: str) -> tuple[str, int] | None:
    """(task id, version) of a step job id, or None when it is not one."""
    task_id, _, rest = job_id.removeprefix(STEP_PREFIX).partition(":")
    version = rest.rpartition(":")[2]
    return (task_id, int(version)) if job_id.startswith(STEP_PREFIX) and version.isdigit() else None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """`sweep_interval`: seconds between sweeps of open instances (due steps, passed SLAs)."""

    sweep_interval: float = 5.0
    concurrency: int = 8
    sweep_page: int = 500
    chain: int = 10  # steps one job runs in a row when each goes on to the next at once


@dataclass(slots=True)
class Change:
    """What one write does to an instance: its new form, the Tasks it opens, the events it emits."""

    task: dict
    creates: list[tuple[str, dict]]
    events: list[tuple[str, str, dict]]
    via: tuple[str, ...] = ()  # statuses the Task passes through first, as the state machine requires
    counted: list[Callable[[], None]] = field(default_factory=list)  # metrics and logs, once it commits


class Engine:
    """`runs_jobs` False: an API process that leaves the jobs to workers (it only enqueues them)."""

    def __init__(
        self,
        service: FhirService,
        clock: Clock,
        config: EngineConfig = EngineConfig(),
        *,
        queue: JobQueue | None = None,
        runs_jobs: bool = True,
        settings: Any = None,
        operations: Any = None,
        registry: Definitions = definitions,
    ) -> None:
        self.service = service
        self.clock = clock
        self.config = config
        self.settings = settings
        self.operations = operations
        self.registry = registry
        self.runs_jobs = runs_jobs
        self._running: set[str] = set()  # instances whose steps a job of this process is running
        self.queue = queue if queue is not None else InProcessQueue(self.run, config.concurrency)
        self.sweeper = Sweeper(self, config)

    async def start(self) -> None:
        self.registry.bind(self.service, self)
        await self.queue.start()
        if self.runs_jobs:
            await self.sweeper.start()

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.queue.close()
        if self.registry.engine_for(self.service) is self:
            self.registry.bind(self.service, None)

    def now(self) -> datetime:
        return self.clock()

    def context(self, workflow: str, task: dict | None = None) -> RequestContext:
        trace = trace_of(task) if task else None
        return RequestContext(
            actor=f"workflow:{workflow}", scopes=("system/*.*",), trace_id=trace or new_trace_id()
        )

    # ----- starting -----

    async def start_instance(
        self, workflow: Workflow, trigger: str, trace_id: str = ""
    ) -> StoredVersion | None:
        """Starts an instance for the resource version `trigger` (`Type/id/_history/n`) unless it maps to
        no subject, or an instance for its subject is open, or this trigger started one already."""
        resource_type, _, rest = trigger.partition("/")
        resource_id, _, version = rest.partition("/_history/")
        stored = await self.service.store.vread(resource_type, resource_id, int(version or 0))
        if stored is None or stored.deleted:
            return None
        resource = resource_json(stored)
        subject = workflow.subject(resource)
        if not subject:
            return None
        patient = workflow.patient(resource) if workflow.patient is not None else None
        now = self.now()
        first = workflow.step(workflow.start)
        task = new_instance(
            workflow, subject, trigger, trace_id or new_trace_id(), now, _deadline(first, now), patient
        )
        ctx = self.context(workflow.name, task)

        # A trigger whose instance ended is not started again (a job run twice); two at once are kept
        # apart by the conditional create on the open instance.
        if await self.service.find_ids(
            "Task", [("identifier", f"{TRIGGER_IDENTIFIER}|{workflow.name}/{trigger}")]
        ):
            return None
        criteria = open_instance_criteria(workflow.name, subject)
        result = await self.service.create(ctx, task, if_none_exist=criteria)
        if not result.created or result.version is None:
            return None
        metrics.WORKFLOW_STARTED.labels(workflow.name).inc()
        log.info("started %s instance Task/%s", workflow.name, result.version.id)
        await self.schedule(result.version)
        return result.version

    # ----- running steps -----

    async def schedule(self, stored: StoredVersion, task: dict | None = None) -> None:
        """Enqueues the job of this version of an instance when it has a step to run."""
        state = state_of(task if task is not None else resource_json(stored))
        if state.status == "in-progress" and state.due is not None:
            await self.queue.enqueue([step_job_id(stored.id, state.step, stored.version)])

    async def run(self, job_id: str) -> float | None:
        """Runs a step job; returns seconds until it is due when it is not due yet, else None."""
        parsed = parse_step_job(job_id)
        if parsed is None:
            return None
        stored = await self.service.store.read("Task", parsed[0])
        if stored is None or stored.deleted or stored.version != parsed[1]:
            return None
        task = resource_json(stored)
        state = state_of(task)
        if state.status != "in-progress" or state.due is None:
            return None
        workflow = self.registry.get(state.workflow)
        if workflow is None:
            log.warning(
                "Task/%s is an instance of %s, which is not registered here", stored.id, state.workflow
            )
            return None
        wait = (state.due - self.now()).total_seconds()
        if wait > 0:
            return wait
        if stored.id in self._running:  # a job here runs its steps in a row; it schedules what follows
            return None
        self._running.add(stored.id)
        try:
            with bound(trace_of(task) or job_id):
                last = await self.run_steps(stored, task, state, workflow)
        finally:
            self._running.discard(stored.id)
        if last is not None:
            await self.schedule(*last)
        return None

    async def run_steps(
        self, stored: StoredVersion, task: dict, state: State, workflow: Workflow
    ) -> tuple[StoredVersion, dict] | None:
        """Runs the step, and the steps it goes on to at once (Next, or a Wait already over) in this job:
        each outcome is still its own Task version, but the next step skips the queue and a re-read.
        At most `chain` steps; returns the last version written, whose job the caller enqueues."""
        for _ in range(self.config.chain):
            written = await self.run_step(stored, task, state, workflow, schedule_next=False)
            if written is None:
                return None
            stored, task = written
            state = state_of(task)
            if state.status != "in-progress" or state.due is None or state.due > self.now():
                break
        return stored, task

    async def run_step(
        self, stored: StoredVersion, task: dict, state: State, workflow: Workflow, schedule_next: bool = True
    ) -> tuple[StoredVersion, dict] | None:
        """Runs the step once and writes its outcome; the version written and its Task (None when another
        writer advanced the instance first)."""
        try:
            step = workflow.step(state.step)
        except KeyError:
            change = self._failed(task, state, workflow, "unknown-step", state.step)
            return await self._written(stored, change, None, schedule_next)
        attempt = state.attempt + 1
        ctx = self.context(workflow.name, task)
        step_ctx = StepContext(
            workflow,
            step.name,
            attempt,
            copy_json(task),
            self.service,
            ctx,
            self.clock,
            self.settings,
            self.operations,
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(step.timeout):
                outcome = await step.run(step_ctx)
            change = self._outcome(stored.id, task, state, workflow, outcome, attempt, step_ctx.events)
        except StepFailed as failure:
            change = self._failed(task, state, workflow, failure.reason, failure.detail)
        except Exception as exc:  # retried per the step's policy; the reason kept is the error's kind
            change = self._retry_or_fail(task, state, workflow, step, attempt, exc)
        finally:
            metrics.STEP_SECONDS.labels(workflow.name, step.name).observe(time.perf_counter() - started)
        try:
            return await self._written(stored, change, ctx, schedule_next)
        except FhirError as exc:  # an outcome that cannot be stored (an invalid output): no retry helps
            log.error("%s step %s: its outcome was refused (%s)", workflow.name, step.name, exc.status)
            change = self._failed(task, state, workflow, "outcome-refused", str(exc))
            return await self._written(stored, change, ctx, schedule_next)

    async def _written(
        self, stored: StoredVersion, change: Change, ctx: RequestContext | None, schedule_next: bool
    ) -> tuple[StoredVersion, dict] | None:
        version = await self.commit(stored, change, ctx, schedule_next=schedule_next)
        return None if version is None else (version, change.task)

    def _outcome(
        self,
        task_id: str,
        task: dict,
        state: State,
        workflow: Workflow,
        outcome: Outcome,
        attempt: int,
        emitted: list[tuple[str, dict]],
    ) -> Change:
        now = self.now()
        new = copy_json(task)
        subject = (task.get("focus") or {}).get("reference") or f"Task/{task_id}"
        change = Change(new, [], [_event(name, data, state, subject) for name, data in emitted])
        if isinstance(outcome, Next | Wait):
            new.pop("statusReason", None)  # a retry's reason, now past
            record_output(new, dict(outcome.output))
            due = outcome.until if isinstance(outcome, Wait) else now
            kind = "wait" if isinstance(outcome, Wait) else "next"
            change.counted.append(self._go_to(new, state, workflow, outcome.step, now, due, kind, attempt))
            if isinstance(outcome, Wait):
                new["businessStatus"]["text"] = (
                    f"{outcome.step}: waiting until {fhir_instant(outcome.until)}"
                    + (f" ({outcome.reason})" if outcome.reason else "")
                )
        elif isinstance(outcome, AskPerson):
            self._ask(change, task_id, workflow, outcome, now)
        elif isinstance(outcome, End):
            record_output(new, dict(outcome.output))
            log_step(new, state, now, "end", attempt)
            change.counted.append(_sla_met(state))
            finish(new, outcome.outcome, now, outcome.reason)
            change.events.append(_ended_event(outcome.outcome, task_id, state, outcome.reason))
            change.counted.append(metrics.WORKFLOW_ENDED.labels(workflow.name, outcome.outcome).inc)
        else:
            raise TypeError(f"a step returns Next, Wait, AskPerson or End, not {type(outcome).__name__}")
        return change

    def _go_to(
        self,
        task: dict,
        state: State,
        workflow: Workflow,
        step: str,
        now: datetime,
        due: datetime,
        outcome: str,
        attempts: int,
    ) -> Callable[[], None]:
        """Leaves the current step for `step` (due at `due`); staying in one step keeps its SLA clock.
        Returns the metric to count once the write commits."""
        if step == state.step:
            schedule(task, now, due, 0)
            task["businessStatus"]["text"] = step
            return _nothing
        target = _step(workflow, step)
        log_step(task, state, now, outcome, attempts)
        enter(task, step, now, due, _deadline(target, now))
        return _sla_met(state)

    def _ask(self, change: Change, task_id: str, workflow: Workflow, ask: AskPerson, now: datetime) -> None:
        _step(workflow, ask.on_approve)
        _step(workflow, ask.on_reject)
        human_id = str(uuid.uuid4())
        human = person_task(
            change.task, task_id, DECISION, ask.owner, ask.description, now, ask.sla, dict(ask.input)
        )
        record_output(change.task, dict(ask.output))
        wait_for_person(change.task, f"Task/{human_id}", ask.on_approve, ask.on_reject, now)
        if ask.sla is not None:
            set_deadline(change.task, now + ask.sla)
        change.creates.append((human_id, human))

    def _retry_or_fail(
        self, task: dict, state: State, workflow: Workflow, step: Step, attempt: int, exc: Exception
    ) -> Change:
        code, why = retry_reason(exc, step.timeout)
        task_id = task.get("id", "")
        if attempt >= step.retry.attempts:
            change = self._failed(
                task, state, workflow, "retries-exhausted", f"{attempt} attempts; last: {why}"
            )
            change.counted.append(
                lambda: log.warning(
                    "%s Task/%s step %s failed for good after %d attempts (%s: %s)",
                    workflow.name,
                    task_id,
                    step.name,
                    attempt,
                    code,
                    why,
                )  # fmt: skip
            )
            return change
        now = self.now()
        due = now + timedelta(seconds=step.retry.delay(attempt))
        new = schedule(copy_json(task), now, due, attempt)
        new["businessStatus"]["text"] = f"{step.name}: attempt {attempt} failed ({why}); trying again"
        new["statusReason"] = {
            "coding": [{"system": RETRY_REASON_SYSTEM, "code": code}],
            "text": f"step {step.name} attempt {attempt} of {step.retry.attempts} failed: {why}; "
            f"trying again at {fhir_instant(due)}",
        }

        def counted() -> None:
            metrics.STEP_RETRIES.labels(workflow.name, step.name).inc()
            log.info(
                "%s Task/%s step %s attempt %d failed (%s: %s); retrying",
                workflow.name, task_id, step.name, attempt, code, why,
                extra={"fields": _fields(workflow.name, task_id, step.name, code) | {"attempt": attempt}},
            )  # fmt: skip

        return Change(new, [], [], counted=[counted])

    def _failed(self, task: dict, state: State, workflow: Workflow, reason: str, detail: str = "") -> Change:
        now = self.now()
        new = finish(copy_json(task), "failed", now, reason)
        if detail:
            new.setdefault("note", []).append({"time": fhir_instant(now), "text": f"{state.step}: {detail}"})
        task_id = task.get("id", "")

        def counted() -> None:
            metrics.WORKFLOW_ENDED.labels(workflow.name, "failed").inc()
            log.warning(
                "workflow failed: %s Task/%s step %s: %s",
                workflow.name, task_id, state.step, reason,
                extra={"fields": _fields(workflow.name, task_id, state.step, reason)},
            )  # fmt: skip

        return Change(new, [], [_ended_event("failed", task_id, state, reason)], counted=[counted])

    # ----- writing -----

    async def _ensure_queue(self, ctx: RequestContext, tx: StoreTransaction, task: dict) -> None:
        """A person Task owned by a CareTeam (a work queue named in the journey settings, such as
        CareTeam/eligibility-review) creates that team the first time work is queued for it: under
        referential integrity a Task's owner must exist. People (Practitioner, PractitionerRole) must."""
        owner = (task.get("owner") or {}).get("reference")
        kind, _, team_id = owner.partition("/") if isinstance(owner, str) else ("", "", "")
        if kind != "CareTeam" or not team_id or await tx.live(kind, team_id):
            return
        if await tx.current(kind, team_id) is not None:
            return  # deleted on purpose: the Task write names it and is refused
        queue = {"resourceType": kind, "id": team_id, "status": "active", "name": team_id}
        await self.service.update(ctx, kind, team_id, queue, tx=tx)

    async def commit(
        self,
        stored: StoredVersion,
        change: Change,
        ctx: RequestContext | None = None,
        *,
        schedule_next: bool = True,
    ) -> StoredVersion | None:
        """Writes the change with If-Match on `stored`; None when another writer advanced it first.
        `schedule_next` False: the caller runs or schedules the next step itself."""
        ctx = ctx or self.context(state_of(change.task).workflow, change.task)

        async def write(tx: StoreTransaction) -> StoredVersion | None:
            version = stored.version
            for status in change.via:
                passing = {**copy_json(change.task), "status": status}
                result = await self.service.update(
                    ctx, "Task", stored.id, passing, if_match=f'W/"{version}"', tx=tx
                )
                version = result.version.version
            result = await self.service.update(
                ctx, "Task", stored.id, copy_json(change.task), if_match=f'W/"{version}"', tx=tx
            )
            for resource_id, resource in change.creates:
                await self._ensure_queue(ctx, tx, resource)
                await self.service.create(ctx, copy_json(resource), tx=tx, resource_id=resource_id)
            for name, focus, data in change.events:
                await emit(self.service, name, focus, ctx=ctx, tx=tx, data=data)
            return result.version

        try:
            version = await in_transaction(self.service, write)
        except FhirError as exc:
            if exc.status == 412:
                log.info("Task/%s was advanced by another writer; this job is dropped", stored.id)
                return None
            raise
        if version is not None:
            for count in change.counted:
                count()
            if schedule_next:
                await self.schedule(version, change.task)
        return version

    # ----- people -----

    async def person_task_done(self, human_id: str) -> StoredVersion | None:
        """Resumes the instance a done decision Task belongs to, at on_approve or on_reject; once."""
        human_stored = await self.service.store.read("Task", human_id)
        if human_stored is None or human_stored.deleted:
            return None
        human = resource_json(human_stored)
        if human_kind(human) != DECISION or (
            human.get("status") != APPROVED and human.get("status") not in REJECTED
        ):
            return None
        instance_ref = part_of(human)
        stored = (
            await self.service.store.read("Task", instance_ref.partition("/")[2]) if instance_ref else None
        )
        if stored is None or stored.deleted:
            return None
        task = resource_json(stored)
        state = state_of(task)
        workflow = self.registry.get(state.workflow)
        if state.status != "on-hold" or state.waiting_for != f"Task/{human_id}" or workflow is None:
            return None
        approved = human["status"] == APPROVED
        target = (state.on_approve if approved else state.on_reject) or ""
        now = self.now()
        new = copy_json(task)
        new["status"] = "in-progress"
        new.pop("statusReason", None)
        reason = (human.get("statusReason") or {}).get("text")
        record_output(
            new,
            {
                "decision": "approved" if approved else human["status"],
                "decision-task": {"reference": f"Task/{human_id}"},
                "decision-reason": reason,
            },
        )
        try:
            workflow.step(target)
        except KeyError:
            return await self.commit(stored, self._failed(new, state, workflow, "unknown-step", target))
        counted = self._go_to(
            new, state, workflow, target, now, now, "approved" if approved else "rejected", state.attempt + 1
        )
        return await self.commit(stored, Change(new, [], [], counted=[counted]))

    # ----- SLA -----

    async def escalate(self, stored: StoredVersion, task: dict, state: State) -> StoredVersion | None:
        """The step's SLA passed: mark it escalated, open a Task for its escalation owner, emit sla.breached."""
        workflow = self.registry.get(state.workflow)
        step = None
        if workflow is not None:
            try:
                step = workflow.step(state.step)
            except KeyError:
                step = None
        now = self.now()
        new = mark_escalated(copy_json(task), now)
        deadline = fhir_instant(state.deadline) if state.deadline else ""
        data = {"workflow": state.workflow, "step": state.step, "deadline": deadline}
        change = Change(new, [], [("sla.breached", f"Task/{stored.id}", data)])
        owner = step.escalate_to if step is not None else None
        if owner:
            escalation_id = str(uuid.uuid4())
            title = workflow.title if workflow is not None else state.workflow
            description = f"Escalation: step {state.step} of {title} passed its SLA deadline {deadline}"
            change.creates.append(
                (escalation_id, person_task(task, stored.id, ESCALATION, owner, description, now, None))
            )
            change.events.append(("task.escalated", f"Task/{escalation_id}", {**data, "owner": owner}))
        change.counted += [
            metrics.ESCALATIONS.labels(state.workflow, state.step).inc,
            metrics.SLA.labels(state.workflow, state.step, "breached").inc,
        ]
        version = await self.commit(stored, change)
        if version is not None:
            log.info("%s step %s of Task/%s passed its SLA; escalated", state.workflow, state.step, stored.id)
        return version


def retry_reason(exc: Exception, timeout: float | None) -> tuple[str, str]:
    """(code, text) of why a step attempt failed, for the Task's statusReason and the log: what the
    server says about the failure (an OperationOutcome's first issue, which names NPHIES's status), never
    the data the step worked on; an unexpected exception by its type only."""
    if isinstance(exc, TimeoutError):
        return "timeout", f"the step did not finish within {timeout:g} s" if timeout else "timed out"
    if isinstance(exc, FhirError):
        issues = exc.outcome().get("issue") or [{}]
        code = issues[0].get("code") or "exception"
        said = issues[0].get("diagnostics") or ""
        if exc.status >= 500 and said:
            return code, f"HTTP {exc.status}: {said[:300]}"
        return code, f"HTTP {exc.status} ({code})"
    return "exception", type(exc).__name__


def _fields(workflow: str, task_id: str, step: str, reason: str) -> dict:
    return {"workflow": workflow, "instance": f"Task/{task_id}", "step": step, "reason": reason}


def _step(workflow: Workflow, name: str) -> Step:
    """The named step; a step that names one its workflow lacks fails the instance (no retry helps)."""
    try:
        return workflow.step(name)
    except KeyError:
        raise StepFailed("unknown-step", f"{workflow.name} has no step {name!r}") from None


def _nothing() -> None:
    return None


def _sla_met(state: State) -> Callable[[], None]:
    if state.deadline is None or state.escalated:
        return _nothing
    return metrics.SLA.labels(state.workflow, state.step, "met").inc


def _deadline(step: Step, now: datetime) -> datetime | None:
    return now + step.sla if step.sla is not None else None


def _event(name: str, data: dict, state: State, subject: str) -> tuple[str, str, dict]:
    """A step's event: about `data["focus"]` when given, else the instance's subject."""
    if name not in EVENTS:
        raise ValueError(f"step {state.step} emitted an unknown event {name!r}")
    data = dict(data)
    focus = data.pop("focus", None)
    return name, str(focus or subject), {"workflow": state.workflow, "step": state.step, **data}


def _ended_event(outcome: str, task_id: str, state: State, reason: str) -> tuple[str, str, dict]:
    name = "workflow.completed" if outcome == "completed" else "workflow.failed"
    data = {"workflow": state.workflow, "step": state.step, "outcome": outcome}
    if reason:
        data["reason"] = reason
    return name, f"Task/{task_id}", data
