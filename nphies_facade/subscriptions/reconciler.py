"""The reconciler: makes the queue and the channels catch up with the store after anything was lost.

On start and then periodically it enqueues due jobs that were not enqueued recently (a flushed or
restarted Redis, a crash between commit and enqueue), releases jobs whose runner died, restarts
rest-hook deliveries with pending events, retries activations, turns ended Subscriptions off, and prunes
old delivery records.
"""

import asyncio
import contextlib
import logging

from ..resources.clock import Clock
from ..resources.ledger import Ledger
from .config import SubscriptionConfig
from .criteria import LIVE_STATUSES, REST_HOOK
from .dispatch import Dispatcher
from .relay import Relay
from .resthook import RestHookChannel
from .status import StatusWriter

log = logging.getLogger("nphies_facade.subscriptions")

PRUNE_EVERY = 3600.0


class Reconciler:
    def __init__(
        self,
        ledger: Ledger,
        relay: Relay,
        dispatcher: Dispatcher,
        resthook: RestHookChannel,
        status: StatusWriter,
        config: SubscriptionConfig,
        clock: Clock,
    ) -> None:
        self._ledger = ledger
        self._relay = relay
        self._dispatcher = dispatcher
        self._resthook = resthook
        self._status = status
        self._config = config
        self._clock = clock
        self._pruned = 0.0
        self.wakeup = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        startup = True
        while not stop.is_set():
            self.wakeup.clear()
            try:
                await self.tick(startup=startup)
                startup = False
            except Exception as exc:  # try again next tick
                log.warning("reconciler tick failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.reconcile_interval):
                    await self.wakeup.wait()

    async def tick(self, startup: bool = False) -> None:
        now = self._clock().timestamp()
        await self._requeue(now, startup)
        for subscription_id in await self._ledger.subscriptions_with_pending(REST_HOOK):
            self._resthook.wake(subscription_id)
        for spec in self._relay.requested():
            await self._dispatcher.activate(spec)
        for spec in self._relay.expired(now):
            await self._status.change(spec.id, "off", when=LIVE_STATUSES)
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            removed = await self._ledger.prune(now - self._config.retention)
            if removed:
                log.info("pruned %d old delivery records", removed)

    async def _requeue(self, now: float, startup: bool) -> None:
        enqueued_before = now if startup else now - self._config.requeue_after
        while due := await self._ledger.due_jobs(now, enqueued_before):
            if not await self._dispatcher.enqueue(due):
                return
            await self._ledger.mark_enqueued(due, now)
        stale = await self._ledger.stale_jobs(now)
        if stale and await self._dispatcher.enqueue(stale, recover=True):
            await self._ledger.mark_enqueued(stale, now)
