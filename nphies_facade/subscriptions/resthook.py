"""The rest-hook channel: one delivery task per Subscription, in event order, retrying with backoff.

A failing head event blocks the later events of its Subscription only. Each task handshakes first when
the Subscription asks for it, delivers pending events oldest first, records every attempt, and moves the
Subscription between active and error through FhirService. Events that keep failing past the retry
window become dead letters (`$resend` puts them back in line).

The relay offers each recorded event (with the body it already read) to the task, which delivers it
straight away while it is caught up; after a failure, a restart or a nudge it reads the ledger instead,
which always holds every pending event.
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

from .. import exact_json
from ..resources.clock import Clock, fhir_instant
from ..resources.ledger import (
    DEAD,
    DELIVERED,
    PENDING,
    DeliveryAttempt,
    DeliveryRecord,
    EventUpdate,
    Ledger,
    SubscriptionEvent,
)
from .config import SubscriptionConfig
from .criteria import REST_HOOK, SubscriptionSpec
from .http_sender import EVENT, HANDSHAKE, Notification, RestHookSender, SendResult
from .notifications import handshake_body
from .recorder import DeliveryRecorder
from .retry import RetryPolicy
from .status import StatusWriter
from .topics import event_focus, notification

log = logging.getLogger("nphies_facade.subscriptions")

BATCH = 100
MAX_FRESH = 1000
IDLE_SECONDS = 60.0

FocusReader = Callable[[str, str, int | None], Awaitable[bytes | None]]
"""The body of a version (`None` version: the current one) of Type/id, None when gone."""
SpecLookup = Callable[[str], SubscriptionSpec | None]
"""The Subscription as the relay last applied it (None when it is not live)."""
Item = tuple[SubscriptionEvent, bytes | None]


class RestHookChannel:
    def __init__(
        self,
        ledger: Ledger,
        lookup: SpecLookup,
        status: StatusWriter,
        config: SubscriptionConfig,
        clock: Clock,
        actor: str,
        gate: Callable[[], Awaitable[object]] | None = None,
        focus_reader: FocusReader | None = None,
    ) -> None:
        self.ledger = ledger
        self.focus_reader = focus_reader  # topic notifications carry the event's focus
        self.gate = gate  # awaited before each round of deliveries (the relay's "caught up")
        self.lookup = lookup
        self.status = status
        self.config = config
        self.clock = clock
        self.actor = actor
        self.policy = RetryPolicy(config.retry_initial, config.retry_max, config.retry_window)
        self.tls: ssl.SSLContext | None = None
        self.recorder = DeliveryRecorder(ledger)
        self._recording = asyncio.Event()
        self._recorder_task: asyncio.Task | None = None
        self._deliveries: dict[str, SubscriptionDelivery] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        self.tls = ssl.create_default_context()
        self._recording.clear()
        self._recorder_task = asyncio.create_task(self.recorder.run(self._recording))
        for subscription_id in await self.ledger.subscriptions_with_pending(REST_HOOK):
            self.wake(subscription_id)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._deliveries.clear()
        self.tls = None
        if self._recorder_task is not None:
            self._recording.set()
            with contextlib.suppress(Exception):
                await self._recorder_task
            self._recorder_task = None

    def wake(self, subscription_id: str) -> None:
        """Look at this Subscription's pending events in the ledger (and handshake if it asks for one)."""
        delivery = self._delivery(subscription_id)
        if delivery is not None:
            delivery.nudge()

    def offer(self, events: list[SubscriptionEvent], bodies: dict[int, bytes | None]) -> None:
        """Events the relay just recorded, in number order, with the bodies their versions were written with."""
        for event in events:
            delivery = self._delivery(event.subscription_id)
            if delivery is not None:
                delivery.offer((event, bodies.get(event.seq)))

    def _delivery(self, subscription_id: str) -> "SubscriptionDelivery | None":
        if self.tls is None:
            return None
        delivery = self._deliveries.get(subscription_id)
        if delivery is None:
            delivery = self._deliveries[subscription_id] = SubscriptionDelivery(self, subscription_id)
            self._tasks[subscription_id] = asyncio.create_task(self._run(delivery))
        return delivery

    async def _run(self, delivery: "SubscriptionDelivery") -> None:
        sender = RestHookSender(self.config.webhook_secret, self.config.delivery_timeout, self.tls)
        try:
            await delivery.run(sender)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the reconciler wakes it again; the message may quote resource data
            log.error("rest-hook delivery for %s stopped: %s", delivery.subscription_id, type(exc).__name__)
        finally:
            # No await between the idle check and this removal, so an offer cannot be lost.
            self._tasks.pop(delivery.subscription_id, None)
            self._deliveries.pop(delivery.subscription_id, None)
            await sender.aclose()

    @property
    def active_tasks(self) -> int:
        return len(self._tasks)


class SubscriptionDelivery:
    """The delivery loop of one Subscription."""

    def __init__(self, channel: RestHookChannel, subscription_id: str) -> None:
        self._c = channel
        self.subscription_id = subscription_id
        self.wakeup = asyncio.Event()
        self._fresh: list[Item] = []
        self._read_ledger = True  # the ledger may hold pending events this task has not seen
        self._handled = 0  # the highest event number delivered or dead-lettered here
        self._failures = 0
        self._handshake_ok = False
        self._handshaken_version = 0
        self._handshake_at = 0.0
        self._sender: RestHookSender

    def offer(self, item: Item) -> None:
        """Keeps the event for a direct delivery while caught up; otherwise the ledger read that is
        due anyway will find it (so a long outage does not pile events up in memory)."""
        if not self._read_ledger:
            self._fresh.append(item)
            if len(self._fresh) > MAX_FRESH:
                self._fresh.clear()
                self._read_ledger = True
        self.wakeup.set()

    def nudge(self) -> None:
        self._read_ledger = True
        self.wakeup.set()

    def _now(self) -> float:
        return self._c.clock().timestamp()

    async def run(self, sender: RestHookSender) -> None:
        self._sender = sender
        state = await self._c.ledger.subscription_state(self.subscription_id)
        if state is not None:
            self._failures, self._handshake_ok = state.failures, state.handshake_ok
        while True:
            self.wakeup.clear()
            spec = self._spec()
            if spec is None:
                return
            if not await self._ready(spec):
                continue
            if self._c.gate is not None:
                await self._c.gate()
            batch, horizon = await self._next_batch(spec)
            delay = await self._deliver(spec, batch) if batch else None
            if delay is not None:
                await self._sleep(delay)
                continue
            self._handled = max(self._handled, horizon)
            if not batch and not await self._sleep(IDLE_SECONDS):
                return

    def _spec(self) -> SubscriptionSpec | None:
        spec = self._c.lookup(self.subscription_id)
        if spec is None or spec.channel.type != REST_HOOK or not spec.is_live(self._now()):
            return None
        return spec

    async def _sleep(self, seconds: float) -> bool:
        """Waits `seconds` or until woken; True when woken."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self.wakeup.wait()
        return self.wakeup.is_set()

    async def _ready(self, spec: SubscriptionSpec) -> bool:
        """True once the endpoint passed the handshake the Subscription's current request asks for."""
        if spec.status == "requested" and spec.version != self._handshaken_version:
            self._handshake_ok = False
        if self._handshake_ok:
            return True
        delay = self._handshake_at - self._now()
        if delay <= 0:
            delay = await self._handshake(spec)
            if delay is None:
                return True
        await self._sleep(delay)
        return False

    async def _handshake(self, spec: SubscriptionSpec) -> float | None:
        """Sends the handshake; None when it succeeded, else the delay before the next try."""
        now = self._now()
        instant = fhir_instant(self._c.clock())
        body = handshake_body(spec.id, spec.status, instant) if spec.channel.payload else b""
        result = await self._sender.send(spec, Notification(HANDSHAKE, 0, body), now)
        attempt = self._attempt(0, now, result)
        if result.ok:
            self._failures = 0
            self._handshake_ok, self._handshaken_version = True, spec.version
            self._record([attempt], [], None, now, handshake_ok=True)
            await self._c.status.change(self.subscription_id, "active", when={"requested", "error"})
            return None
        self._failures += 1
        error = f"Handshake with the endpoint failed: {result.detail}"
        self._record([attempt], [], error, now)
        await self._maybe_error(spec, error)
        delay = self._c.policy.delay(self._failures)
        self._handshake_at = now + delay
        return delay

    async def _next_batch(self, spec: SubscriptionSpec) -> tuple[list[Item], int]:
        """The next events to deliver, and the event number up to which every event is handled once
        they are: fresh offers while caught up, else the ledger's pending events."""
        fresh = [item for item in self._fresh if item[0].number > self._handled]
        self._fresh = []
        if not self._read_ledger and (not fresh or fresh[0][0].number == self._handled + 1):
            return fresh, fresh[-1][0].number if fresh else self._handled
        self._read_ledger = False
        await self._c.recorder.flush()
        state = await self._c.ledger.subscription_state(self.subscription_id)
        pending = await self._c.ledger.pending_events(self.subscription_id, BATCH)
        self._read_ledger = len(pending) == BATCH
        wants_bodies = spec.channel.payload or spec.topic
        bodies = await self._c.ledger.bodies(pending) if wants_bodies and pending else {}
        last = max(pending[-1].number if pending else 0, state.events_total if state else 0)
        # Offers that arrived during the reads are newer than what they returned, or duplicates.
        later = {item[0].number: item for item in [*fresh, *self._fresh] if item[0].number > last}
        self._fresh = [later[number] for number in sorted(later)]
        horizon = self._handled if self._read_ledger else last
        return [(event, bodies.get(event.seq)) for event in pending], horizon

    async def _deliver(self, spec: SubscriptionSpec, batch: list[Item]) -> float | None:
        """Delivers events in order until one fails or is not yet due; returns the delay to wait, if any."""
        attempts: list[DeliveryAttempt] = []
        updates: list[EventUpdate] = []
        delay: float | None = None
        error: str | None = None
        for event, body in batch:
            now = self._now()
            if event.next_at > now:
                delay = event.next_at - now
                break
            content = await self._content(spec, event, body)
            note = Notification(
                EVENT,
                event.number,
                content,
                event.resource_type,
                event.resource_id,
                event.action == "delete",
            )
            result = await self._sender.send(spec, note, now)
            attempts.append(self._attempt(event.number, now, result))
            tries = event.attempts + 1
            if result.ok:
                self._failures = 0
                self._handled = max(self._handled, event.number)
                updates.append(EventUpdate(event.number, DELIVERED, tries))
                continue
            self._failures += 1
            error = f"Delivery of event {event.number} failed: {result.detail}"
            if self._c.policy.gives_up(event.recorded, now):
                self._handled = max(self._handled, event.number)
                updates.append(EventUpdate(event.number, DEAD, tries, 0.0, result.detail))
                error = f"Event {event.number} is a dead letter after {tries} attempts: {result.detail}"
                continue
            delay = self._c.policy.delay(tries)
            updates.append(EventUpdate(event.number, PENDING, tries, now + delay, result.detail))
            break
        if delay is not None:
            self._read_ledger = True
        if attempts:
            self._record(attempts, updates, error, self._now())
        await self._update_status(spec, updates, error)
        return delay

    async def _content(self, spec: SubscriptionSpec, event: SubscriptionEvent, body: bytes | None) -> bytes:
        """R4 rest-hook: the resource when the Subscription has a payload; a topic: the backport Bundle."""
        if spec.topic is None:
            return (body or b"") if spec.channel.payload else b""
        record = exact_json.loads(body) if body else {"id": event.resource_id}
        focus_body = None
        if spec.channel.payload and self._c.focus_reader is not None:
            focus, version = event_focus(record)
            resource_type, _, resource_id = focus.partition("/")
            focus_body = await self._c.focus_reader(resource_type, resource_id, version)
        instant = fhir_instant(self._c.clock())
        return notification(
            spec.id,
            spec.status,
            spec.topic,
            event.number,
            record,
            focus_body,
            instant,
            self._c.config.base_url,
        )

    def _record(
        self,
        attempts: list[DeliveryAttempt],
        updates: list[EventUpdate],
        error: str | None,
        now: float,
        handshake_ok: bool | None = None,
    ) -> None:
        record = DeliveryRecord(
            self.subscription_id, tuple(attempts), tuple(updates), self._failures, error, now, handshake_ok
        )
        self._c.recorder.add(record)

    async def _update_status(
        self, spec: SubscriptionSpec, updates: list[EventUpdate], error: str | None
    ) -> None:
        if self._failures == 0 and updates and spec.status == "error":
            await self._c.status.change(self.subscription_id, "active", when={"error"})
        elif any(u.state == DEAD for u in updates):
            await self._c.status.change(
                self.subscription_id, "error", when={"active", "requested", "error"}, error=error
            )
        elif error is not None:
            await self._maybe_error(spec, error)

    async def _maybe_error(self, spec: SubscriptionSpec, error: str) -> None:
        if self._failures >= self._c.config.failures_before_error and spec.status != "error":
            await self._c.status.change(
                self.subscription_id, "error", when={"active", "requested"}, error=error
            )

    def _attempt(self, number: int, now: float, result: SendResult) -> DeliveryAttempt:
        return DeliveryAttempt(
            self.subscription_id,
            number,
            REST_HOOK,
            fhir_instant(self._c.clock()),
            self._c.actor,
            DELIVERED if result.ok else "failed",
            result.status_code,
            result.detail,
            result.duration_ms,
        )
