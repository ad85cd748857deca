"""The job runner: claims a job in the store, runs its workflow handler with a timeout, records the run.

Both queues call `JobRunner.run(job_id)`. The claim is a compare-and-set in the store, so a job runs
once at a time whatever the queue delivers twice; any failure follows our retry policy (exponential
backoff, then dead after the retry window), whatever the queue's own notion of retrying is.
"""

import asyncio
import logging
import time

import orjson

from ..resources.clock import Clock, fhir_instant
from ..resources.context import RequestContext
from ..resources.ledger import DEAD, DONE, FAILED, QUEUED, DeliveryAttempt, JobOutcome, JobRecord, Ledger
from ..resources.service import FhirService
from ..resources.tracing import bound
from .config import SubscriptionConfig
from .criteria import MESSAGE
from .retry import RetryPolicy
from .status import StatusWriter
from .workflow import JobContext, Trigger, WorkflowRegistry

log = logging.getLogger("nphies_facade.subscriptions")


class UnknownWorkflow(Exception):
    """No handler is registered under the job's workflow name in this process."""


def trigger_of(job: JobRecord) -> Trigger:
    change = orjson.loads(job.payload)
    return Trigger(
        job.job_id,
        job.workflow,
        job.subscription_id,
        job.number,
        job.seq,
        change["type"],
        change["id"],
        change["version"],
        change["action"],
        change["at"],
        change.get("trace_id", ""),
        job.attempts,
    )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


class JobRunner:
    def __init__(
        self,
        ledger: Ledger,
        service: FhirService,
        registry: WorkflowRegistry,
        status: StatusWriter,
        config: SubscriptionConfig,
        clock: Clock,
        worker: str,
    ) -> None:
        self._ledger = ledger
        self._service = service
        self._registry = registry
        self._status = status
        self._config = config
        self._clock = clock
        self.worker = worker
        self._policy = RetryPolicy(config.retry_initial, config.retry_max, config.retry_window)

    def _now(self) -> float:
        return self._clock().timestamp()

    async def run(self, job_id: str) -> float | None:
        """Runs the job if it is due and free; returns seconds until it should run again, or None."""
        now = self._now()
        lease = now + self._config.job_timeout + self._config.job_lease_grace
        job = await self._ledger.claim_job(job_id, self.worker, now, lease)
        if job is None:
            return await self._not_claimed(job_id, now)
        started = time.perf_counter()
        try:
            await self._call(job)
            outcome = JobOutcome(DONE)
        except asyncio.CancelledError:
            # Shutting down: give the job back so the next runner takes it at once.
            await asyncio.shield(self._finish(job, JobOutcome(FAILED, now, "interrupted"), started))
            raise
        except Exception as exc:
            outcome = self._failure(job, exc)
            log.warning("job %s attempt %d failed: %s", job.job_id, job.attempts, outcome.error)
        await self._finish(job, outcome, started)
        return max(outcome.next_at - self._now(), 0.0) if outcome.state == FAILED else None

    async def _not_claimed(self, job_id: str, now: float) -> float | None:
        """A job that is queued but not yet due stays in the queue; anything else is left alone."""
        job = await self._ledger.job(job_id)
        if job is not None and job.state in (QUEUED, FAILED) and job.next_at > now:
            return job.next_at - now
        return None

    async def _call(self, job: JobRecord) -> None:
        workflow = self._registry.get(job.workflow)
        if workflow is None:
            raise UnknownWorkflow(job.workflow)
        trigger = trigger_of(job)
        ctx = RequestContext(
            actor=f"workflow:{job.workflow}", scopes=("system/*.*",), trace_id=trigger.trace_id or job.job_id
        )
        with bound(ctx.trace_id):
            async with asyncio.timeout(self._config.job_timeout):
                await workflow.handler(JobContext(trigger, self._service, ctx))

    def _failure(self, job: JobRecord, exc: Exception) -> JobOutcome:
        error = _error_text(exc)
        now = self._now()
        if self._policy.gives_up(job.created, now):
            return JobOutcome(DEAD, 0.0, error)
        return JobOutcome(FAILED, now + self._policy.delay(job.attempts), error)

    async def _finish(self, job: JobRecord, outcome: JobOutcome, started: float) -> None:
        now = self._now()
        attempt = DeliveryAttempt(
            job.subscription_id,
            job.number,
            MESSAGE,
            fhir_instant(self._clock()),
            self.worker,
            outcome.state,
            None,
            outcome.error,
            (time.perf_counter() - started) * 1000,
            job.job_id,
        )
        failures_before = await self._ledger.finish_job(job.job_id, self.worker, outcome, attempt, now)
        if failures_before is None:
            log.warning("job %s was taken over by another runner; its result is dropped", job.job_id)
        elif outcome.state == DEAD:
            error = f"Job for event {job.number} is dead after {job.attempts} attempts: {outcome.error}"
            await self._status.change(
                job.subscription_id, "error", when={"active", "requested", "error"}, error=error
            )
        elif outcome.state == DONE and failures_before:
            await self._status.change(job.subscription_id, "active", when={"error"})
