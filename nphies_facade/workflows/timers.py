"""Durable timers: the sweep that re-drives workflow instances from what their Tasks say.

Due times (a Wait, a retry, a step not yet run) and SLA deadlines are stored on the instance Tasks, not in
the queue. At start-up the sweep enqueues the job of every open instance with a scheduled step (a job whose
step is not due yet waits in the queue until it is); then, every `sweep_interval`, it enqueues the
instances whose step is due (after a crash, a lost job, or a clock that moved) and escalates those whose
SLA deadline passed. Time is the engine's clock, so a virtual clock moves the timers.
"""

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ..resources.context import RequestContext
from ..resources.service import resource_json
from ..resources.sweeps import repeat_sweep, search_pages
from .dsl import WORKFLOW_SYSTEM
from .instances import state_of

if TYPE_CHECKING:
    from .engine import Engine, EngineConfig

log = logging.getLogger("nphies_facade.workflows")

SWEEP_ACTOR = "workflow:sweep"
SWEPT_STATUSES = "in-progress,on-hold"


class Sweeper:
    def __init__(self, engine: "Engine", config: "EngineConfig") -> None:
        self.engine = engine
        self.config = config
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.wakeup = asyncio.Event()

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._periodically())

    async def stop(self) -> None:
        self._stop.set()
        self.wakeup.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep(self, everything: bool = False) -> int:
        """Enqueues the instances whose step is due (`everything`: that have a step scheduled) and
        escalates those past their SLA deadline; returns how many it enqueued or escalated."""
        engine = self.engine
        params = [("code", f"{WORKFLOW_SYSTEM}|"), ("status", SWEPT_STATUSES)]
        ctx = RequestContext.system(SWEEP_ACTOR)
        found = 0
        async for matches in search_pages(engine.service, "Task", params, self.config.sweep_page, ctx):
            now = engine.now()
            for stored in matches:
                task = resource_json(stored)
                state = state_of(task)
                if state.deadline is not None and state.deadline <= now and not state.escalated:
                    if await engine.escalate(stored, task, state) is not None:
                        found += 1
                elif (
                    state.status == "in-progress"
                    and state.due is not None
                    and (everything or state.due <= now)
                ):
                    await engine.schedule(stored, task)
                    found += 1
        return found

    async def _periodically(self) -> None:
        interval = self.config.sweep_interval
        await repeat_sweep(self.sweep, interval, self._stop, log, "workflow sweep", self.wakeup)
