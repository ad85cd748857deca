"""The outbox relay: committed changes, in sequence order, matched against the live Subscriptions.

Each batch of outbox events after the stored cursor is matched in memory against the version each event
wrote, and the matches are recorded with the cursor's advance in one ledger transaction; only then are
they handed to the channels. A crash before that commit replays the batch; after it, the ledger holds
the work. Subscription changes are themselves outbox events, so the index follows them in order: a
change is matched against the Subscriptions as they were when it was committed.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import exact_json
from ..resources.clock import Clock
from ..resources.errors import FhirError
from ..resources.ledger import (
    DELIVERED,
    PENDING,
    AppliedSubscription,
    CursorMoved,
    Ledger,
    Match,
    SubscriptionEvent,
)
from ..resources.search.extraction import Extractor
from ..resources.store import IndexValues, OutboxEvent, Store
from .criteria import WEBSOCKET, CriteriaParser, SubscriptionSpec
from .index import SubscriptionIndex

log = logging.getLogger("nphies_facade.subscriptions")

RELAY = "main"


@dataclass
class RelayBatch:
    """What one batch produced, for the channels: recorded events, Subscriptions that became
    `requested` (to activate), and Subscriptions whose `end` has passed (to turn off)."""

    events: list[SubscriptionEvent] = field(default_factory=list)
    bodies: dict[int, bytes | None] = field(default_factory=dict)
    requested: list[SubscriptionSpec] = field(default_factory=list)
    expired: list[SubscriptionSpec] = field(default_factory=list)


BatchHandler = Callable[[RelayBatch], Awaitable[None]]


class Relay:
    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        extractor: Extractor,
        parser: CriteriaParser,
        clock: Clock,
        on_batch: BatchHandler,
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._extractor = extractor
        self._parser = parser
        self._clock = clock
        self._on_batch = on_batch
        self._batch_size = batch_size
        self.index = SubscriptionIndex()
        self.cursor = 0
        self._expiry_sent: set[str] = set()
        self.wakeup = asyncio.Event()
        # Cleared while a backlog is being drained: deliveries wait, so the relay records it first.
        self.caught_up = asyncio.Event()
        self.caught_up.set()

    async def load(self) -> None:
        """Rebuilds the index from the Subscription versions the ledger says the relay matched with."""
        self.index = SubscriptionIndex()
        self._expiry_sent.clear()
        for subscription_id, version in await self._ledger.applied_subscriptions():
            stored = await self._store.vread("Subscription", subscription_id, version)
            spec = self._spec(stored.body if stored else None, subscription_id, version)
            if spec is not None:
                self.index.put(spec)
        self.cursor = await self._ledger.cursor(RELAY)

    def requested(self) -> list[SubscriptionSpec]:
        return [spec for spec in self.index.all() if spec.status == "requested"]

    def expired(self, now: float) -> list[SubscriptionSpec]:
        """Subscriptions past their end not yet reported; each is reported once per version."""
        due = [s for s in self.index.all() if s.ended(now) and s.id not in self._expiry_sent]
        self._expiry_sent.update(s.id for s in due)
        return due

    async def run(self, stop: asyncio.Event, poll_interval: float) -> None:
        try:
            await self._run(stop, poll_interval)
        finally:
            self.caught_up.set()

    async def _run(self, stop: asyncio.Event, poll_interval: float) -> None:
        while not stop.is_set():
            try:
                processed = await self.step()
            except CursorMoved:
                log.warning("relay cursor moved elsewhere; reloading")
                await self.load()
                continue
            except Exception as exc:  # a busy store, say: start again from what the ledger holds
                log.warning("relay batch failed: %s", type(exc).__name__)
                processed = 0
                with contextlib.suppress(Exception):
                    await self.load()
            if processed == self._batch_size:
                self.caught_up.clear()
            if processed < self._batch_size:
                self.caught_up.set()
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_interval):
                        await self.wakeup.wait()

    async def step(self) -> int:
        """Relays one batch; returns how many outbox events it consumed."""
        events = await self._store.outbox_after(self.cursor, self._batch_size)
        if not events:
            return 0
        now = self._clock().timestamp()
        bodies = await self._bodies(events)
        batch = RelayBatch(bodies=bodies)
        applied: list[AppliedSubscription] = []
        matches: list[Match] = []
        for event in events:
            if event.resource_type == "Subscription":
                applied.append(self._apply(event, bodies.get(event.seq), batch))
            if event.action != "delete" and self.index.has_type(event.resource_type):
                matches += self._match(event, bodies.get(event.seq), now)
            elif event.action == "delete" and self.index.notifies_deletes(event.resource_type):
                matches += self._match(event, await self._before_deletion(event), now, deletion=True)
        batch.events = await self._ledger.record_batch(
            RELAY, self.cursor, events[-1].seq, applied, matches, now
        )
        self.cursor = events[-1].seq
        batch.expired = self.expired(now)
        await self._on_batch(batch)
        return len(events)

    async def _bodies(self, events: list[OutboxEvent]) -> dict[int, bytes | None]:
        wanted = [
            e for e in events if e.resource_type == "Subscription" or self.index.has_type(e.resource_type)
        ]
        if any(e.resource_type == "Subscription" for e in wanted):
            wanted = events  # a Subscription in the batch may start watching any type
        return await self._ledger.bodies(wanted) if wanted else {}

    def _spec(self, body: bytes | None, subscription_id: str, version: int) -> SubscriptionSpec | None:
        if body is None:
            return None
        try:
            return self._parser.parse(exact_json.loads(body), version)
        except (FhirError, exact_json.JSONDecodeError):
            log.warning("subscription %s version %s cannot be served; skipped", subscription_id, version)
            return None

    def _apply(self, event: OutboxEvent, body: bytes | None, batch: RelayBatch) -> AppliedSubscription:
        spec = self._spec(body, event.id, event.version)
        self._expiry_sent.discard(event.id)
        if spec is None or not spec.status or spec.status == "off":
            self.index.remove(event.id)
        else:
            self.index.put(spec)
        requested = spec is not None and spec.status == "requested"
        if requested:
            batch.requested.append(spec)
        return AppliedSubscription(event.id, event.version, deleted=body is None, requested=requested)

    async def _before_deletion(self, event: OutboxEvent) -> bytes | None:
        """The version a deletion ended, which its Subscriptions are matched against."""
        if event.version < 2:
            return None
        stored = await self._store.vread(event.resource_type, event.id, event.version - 1)
        return stored.body if stored is not None and not stored.deleted else None

    def _match(
        self, event: OutboxEvent, body: bytes | None, now: float, deletion: bool = False
    ) -> list[Match]:
        if body is None:
            return []
        values = self._values(event.resource_type, body)
        now_ms = now * 1000
        return [
            Match(
                s.id,
                s.channel.type,
                event,
                DELIVERED if s.channel.type == WEBSOCKET else PENDING,
                s.channel.workflow,
            )
            for s in self.index.candidates(event.resource_type, values)
            if (s.deletes or not deletion) and s.is_live(now) and s.matches(values, now_ms)
        ]

    def _values(self, resource_type: str, body: bytes) -> IndexValues:
        """The index values of the parameters the Subscriptions on this type read, and only those."""
        resource = exact_json.loads(body)
        codes = self.index.codes_for(resource_type)
        values: IndexValues = {}
        for plan in self._extractor.plans(resource_type):
            if plan.code not in codes:
                continue
            try:
                found = plan.values(resource)
            except Exception as exc:  # as in extraction: bad data must not stop the relay
                log.warning(
                    "search parameter %s on %s failed: %s", plan.code, resource_type, type(exc).__name__
                )
                continue
            if found:
                values[plan.code] = found
        return values
