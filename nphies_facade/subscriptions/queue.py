"""The job-queue port, and its in-process implementation for the embedded mode.

A queue carries job ids only; the job itself (what, state, attempts) is in the store. Enqueueing an id
that is already waiting or running is a no-op, so the relay and the reconciler can enqueue freely.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger("nphies_facade.subscriptions")

RunJob = Callable[[str], Awaitable[float | None]]
"""Runs one job; returns seconds until it should run again (retry), or None when finished."""


class QueueUnavailable(Exception):
    """The queue could not take the jobs now; they stay in the store and are enqueued again later."""


class JobQueue(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def enqueue(self, job_ids: Sequence[str], *, recover: bool = False) -> None:
        """Queues jobs to run now; `recover` also releases what the queue holds for a runner that died."""


class JobRouter:
    """Runs a job by its kind, the part of its id before the first ':' (`wf:` subscription jobs,
    `nphies:` submit steps ...), so one queue and one arq function serve every kind of job."""

    def __init__(self, default: RunJob) -> None:
        self._default = default
        self._kinds: dict[str, RunJob] = {}

    def add(self, kind: str, run: RunJob) -> None:
        self._kinds[kind] = run

    async def run(self, job_id: str) -> float | None:
        kind, _, _ = job_id.partition(":")
        return await self._kinds.get(kind, self._default)(job_id)


class InProcessQueue(JobQueue):
    """Runs jobs in this process with `concurrency` runners; retries are scheduled with the loop's timer."""

    def __init__(self, run: RunJob, concurrency: int = 8) -> None:
        self._run = run
        self._concurrency = concurrency
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._known: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._runners: list[asyncio.Task] = []

    async def start(self) -> None:
        self._runners = [asyncio.create_task(self._runner()) for _ in range(self._concurrency)]

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        self._runners = []

    async def enqueue(self, job_ids: Sequence[str], *, recover: bool = False) -> None:
        for job_id in job_ids:
            timer = self._timers.pop(job_id, None)
            if timer is not None:
                timer.cancel()
            elif job_id in self._known:
                continue
            self._known.add(job_id)
            self._ready.put_nowait(job_id)

    @property
    def size(self) -> int:
        return len(self._known)

    async def _runner(self) -> None:
        while True:
            job_id = await self._ready.get()
            try:
                delay = await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store still holds the job; the reconciler re-enqueues it
                log.error("in-process job %s crashed: %s", job_id, type(exc).__name__)
                delay = None
            if delay is None:
                self._known.discard(job_id)
            else:
                self._timers[job_id] = asyncio.get_running_loop().call_later(delay, self._due, job_id)

    def _due(self, job_id: str) -> None:
        self._timers.pop(job_id, None)
        self._ready.put_nowait(job_id)
