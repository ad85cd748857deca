"""Hands what the relay recorded to the channels: wakes rest-hook deliveries and websocket hubs,
enqueues workflow jobs, activates newly requested Subscriptions and turns ended ones off."""

import logging
from collections.abc import Sequence

from ..resources.ledger import job_id_for
from .criteria import LIVE_STATUSES, MESSAGE, REST_HOOK, WEBSOCKET, SubscriptionSpec
from .queue import JobQueue, QueueUnavailable
from .relay import RelayBatch
from .resthook import RestHookChannel
from .status import StatusWriter
from .websocket import WebsocketHub

log = logging.getLogger("nphies_facade.subscriptions")


class Dispatcher:
    def __init__(
        self,
        resthook: RestHookChannel,
        hub: WebsocketHub | None,
        queue: JobQueue | None,
        status: StatusWriter,
    ) -> None:
        self._resthook = resthook
        self._hub = hub
        self._queue = queue
        self._status = status
        self._queue_down = False

    async def __call__(self, batch: RelayBatch) -> None:
        for spec in batch.requested:
            await self.activate(spec)
        for spec in batch.expired:
            await self._status.change(spec.id, "off", when=LIVE_STATUSES)
        self._resthook.offer([e for e in batch.events if e.channel == REST_HOOK], batch.bodies)
        if self._hub is not None and any(e.channel == WEBSOCKET for e in batch.events):
            self._hub.wake()
        jobs = [job_id_for(e.subscription_id, e.seq) for e in batch.events if e.channel == MESSAGE]
        if jobs:
            await self.enqueue(jobs)

    async def activate(self, spec: SubscriptionSpec) -> None:
        """rest-hook Subscriptions become active after their handshake; the others at once."""
        if spec.channel.type == REST_HOOK:
            self._resthook.wake(spec.id)
        else:
            await self._status.change(spec.id, "active", when={"requested"})

    async def enqueue(self, job_ids: Sequence[str], *, recover: bool = False) -> bool:
        """False when the queue is unavailable: the jobs stay in the store for the reconciler."""
        if self._queue is None:
            return False
        try:
            await self._queue.enqueue(job_ids, recover=recover)
        except QueueUnavailable as exc:
            if not self._queue_down:
                log.warning("job queue unavailable (%s); jobs wait in the store until it is back", exc)
            self._queue_down = True
            return False
        if self._queue_down:
            log.warning("job queue available again")
            self._queue_down = False
        return True
