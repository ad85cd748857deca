"""Runs $submit Task steps as jobs: the subscriptions' in-process job queue, one job id per Task.

The job id is `nphies:{task id}`; the step to run, when it is due and how often it was tried are in the
Task (the store is the truth), so a job only carries the id: a duplicate enqueue is dropped, a job returns
the seconds until its Task's next step and the queue runs it again then. The sweep at start-up enqueues
every open submit Task (a restart resumes each schedule); later sweeps, every `sweep_interval`, enqueue
the open Tasks whose step is overdue, so a Task whose job was lost is re-driven.

With Redis the jobs go to the arq queue instead: API servers only enqueue, and `nphies-facade worker`
runs them (its job router sends `nphies:` jobs to `run_job`) and sweeps.
"""

import asyncio
import contextlib
import logging

from ..resources.context import RequestContext
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion
from ..resources.sweeps import repeat_sweep, search_pages
from ..subscriptions.queue import InProcessQueue, JobQueue
from .codes import OPERATION_CODES, SUBMIT
from .config import OperationsConfig
from .steps import SubmitSteps
from .tasks import step_of

log = logging.getLogger("nphies_facade.operations")

STEP_JOB_KIND = "nphies"
JOB_PREFIX = f"{STEP_JOB_KIND}:"
OPEN_STATUSES = "requested,received,accepted,ready,in-progress,on-hold"
SWEEP_PAGE = 500


def job_id(task_id: str) -> str:
    return f"{JOB_PREFIX}{task_id}"


class StepScheduler:
    def __init__(
        self,
        service: FhirService,
        steps: SubmitSteps,
        config: OperationsConfig,
        queue: JobQueue | None = None,
        *,
        sweeps: bool = True,
    ) -> None:
        """`queue`: a shared queue whose consumer calls `run_job` (arq); by default an in-process one.
        `sweeps`: whether this process re-drives open Tasks (not in API servers that leave jobs to workers)."""
        self.service = service
        self.steps = steps
        self.config = config
        self.queue = queue or InProcessQueue(self.run_job, config.step_concurrency)
        self._sweeps = sweeps
        self._stop = asyncio.Event()
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        self._stop.clear()
        await self.queue.start()
        if self._sweeps:
            self._sweeper = asyncio.create_task(self._sweep_periodically())

    async def stop(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.queue.close()

    async def schedule(self, task_id: str) -> None:
        """Runs the Task's step now (or, if not due yet, when it is due)."""
        await self.queue.enqueue([job_id(task_id)])

    async def run_job(self, job: str) -> float | None:
        """Advances the job's Task; returns the seconds until its next step, or None when it has ended."""
        return await self.steps.advance(job.removeprefix(JOB_PREFIX))

    async def sweep(self, everything: bool = False) -> int:
        """Enqueues the open submit Tasks whose step is due (`everything`: all of them); returns how many."""
        ctx = RequestContext.system("operation:submit")
        params = [("code", f"{OPERATION_CODES}|{SUBMIT}"), ("status", OPEN_STATUSES)]
        found = 0
        async for matches in search_pages(self.service, "Task", params, SWEEP_PAGE, ctx):
            now = self.service.clock().timestamp()
            ids = [job_id(v.id) for v in matches if everything or _overdue(v, now)]
            await self.queue.enqueue(ids)
            found += len(ids)
        return found

    async def _sweep_periodically(self) -> None:
        interval = self.config.sweep_interval
        await repeat_sweep(self.sweep, interval, self._stop, log, "sweep of submit Tasks")


def _overdue(stored: StoredVersion, now: float) -> bool:
    return step_of(resource_json(stored)).due <= now
