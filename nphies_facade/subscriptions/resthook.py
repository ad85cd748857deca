"""The rest-hook channel: one delivery task per Subscription, in event order, retrying with backoff.

A failing head event blocks the later events of its Subscription only. Each task handshakes first when
the Subscription asks for it, delivers pending events oldest first, records every attempt, and moves the
Subscription between active and error through FhirService. Events that keep failing past the retry
window become dead letters (`$resend` puts them back in line).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import httpx
import orjson

from ..resources.clock import Clock, fhir_instant
from ..resources.errors import FhirError
from ..resources.ledger import (
    DEAD,
    DELIVERED,
    PENDING,
    DeliveryAttempt,
    EventUpdate,
    Ledger,
    SubscriptionEvent,
)
from ..resources.store import Store
from .config import SubscriptionConfig
from .criteria import REST_HOOK, CriteriaParser, SubscriptionSpec
from .http_sender import EVENT, HANDSHAKE, Notification, RestHookSender, SendResult
from .notifications import handshake_body
from .retry import RetryPolicy
from .status import StatusWriter

log = logging.getLogger("nphies_facade.subscriptions")

BATCH = 100
IDLE_SECONDS = 60.0


class RestHookChannel:
    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        parser: CriteriaParser,
        status: StatusWriter,
        config: SubscriptionConfig,
        clock: Clock,
        actor: str,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._parser = parser
        self._status = status
        self._config = config
        self._clock = clock
        self._actor = actor
        self._policy = RetryPolicy(config.retry_initial, config.retry_max, config.retry_window)
        self._tasks: dict[str, asyncio.Task] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._http: httpx.AsyncClient | None = None
        self._sender: RestHookSender | None = None

    async def start(self) -> None:
        limits = httpx.Limits(
            max_connections=self._config.delivery_connections,
            max_keepalive_connections=self._config.delivery_connections,
        )
        self._http = httpx.AsyncClient(timeout=self._config.delivery_timeout, limits=limits)
        self._sender = RestHookSender(self._http, self._config.webhook_secret)
        for subscription_id in await self._ledger.subscriptions_with_pending(REST_HOOK):
            self.wake(subscription_id)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._wakes.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def wake(self, subscription_id: str) -> None:
        """There is something to do for this Subscription: start its task, or nudge the running one."""
        if self._sender is None:
            return
        if subscription_id in self._tasks:
            self._wakes[subscription_id].set()
            return
        wake = self._wakes[subscription_id] = asyncio.Event()
        delivery = SubscriptionDelivery(self, subscription_id, wake)
        task = asyncio.create_task(self._run(subscription_id, delivery.run))
        self._tasks[subscription_id] = task

    async def _run(self, subscription_id: str, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the reconciler wakes it again; the message may quote resource data
            log.error("rest-hook delivery for %s stopped: %s", subscription_id, type(exc).__name__)
        finally:
            # No await between the idle check and this removal, so a wake() cannot be lost.
            self._tasks.pop(subscription_id, None)
            self._wakes.pop(subscription_id, None)

    @property
    def active_tasks(self) -> int:
        return len(self._tasks)


class SubscriptionDelivery:
    """The delivery loop of one Subscription."""

    def __init__(self, channel: RestHookChannel, subscription_id: str, wake: asyncio.Event) -> None:
        self._c = channel
        self._id = subscription_id
        self._wake = wake
        self._failures = 0
        self._handshake_at = 0.0

    def _now(self) -> float:
        return self._c._clock().timestamp()

    async def run(self) -> None:
        state = await self._c._ledger.subscription_state(self._id)
        self._failures = state.failures if state else 0
        while True:
            self._wake.clear()
            spec = await self._current()
            if spec is None:
                return
            if spec.status == "requested" or not await self._handshake_ok():
                delay = self._handshake_at - self._now()
                if delay <= 0:
                    delay = await self._handshake(spec)
                if delay is not None:
                    await self._sleep(delay)
                    continue
                spec = replace(spec, status="active")
            pending = await self._c._ledger.pending_events(self._id, BATCH)
            if not pending:
                if not await self._sleep(IDLE_SECONDS):
                    return
                continue
            delay = await self._deliver(spec, pending)
            if delay is not None:
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> bool:
        """Waits `seconds` or until woken; True when woken."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()
        return self._wake.is_set()

    async def _current(self) -> SubscriptionSpec | None:
        """The Subscription as it is now, when it is a live rest-hook one."""
        stored = await self._c._store.read("Subscription", self._id)
        if stored is None or stored.deleted:
            return None
        try:
            spec = self._c._parser.parse(orjson.loads(stored.body), stored.version)
        except FhirError:
            return None
        if spec.channel.type != REST_HOOK or not spec.is_live(self._now()):
            return None
        return spec

    async def _handshake_ok(self) -> bool:
        state = await self._c._ledger.subscription_state(self._id)
        return state is not None and state.handshake_ok

    async def _handshake(self, spec: SubscriptionSpec) -> float | None:
        """Sends the handshake; None when it succeeded, else the delay before the next try."""
        now = self._now()
        body = (
            handshake_body(spec.id, spec.status, fhir_instant(self._c._clock()))
            if spec.channel.payload
            else b""
        )
        result = await self._c._sender.send(spec, Notification(HANDSHAKE, 0, body), now)
        attempt = self._attempt(0, now, result)
        if result.ok:
            self._failures = 0
            await self._c._ledger.record_delivery(self._id, [attempt], [], 0, None, now, handshake_ok=True)
            await self._c._status.change(self._id, "active", when={"requested", "error"})
            return None
        self._failures += 1
        error = f"Handshake with the endpoint failed: {result.detail}"
        await self._c._ledger.record_delivery(self._id, [attempt], [], self._failures, error, now)
        await self._maybe_error(spec, error)
        delay = self._c._policy.delay(self._failures)
        self._handshake_at = now + delay
        return delay

    async def _deliver(self, spec: SubscriptionSpec, pending: list[SubscriptionEvent]) -> float | None:
        """Delivers events in order until one fails or is not yet due; returns the delay to wait, if any."""
        bodies = await self._c._ledger.bodies(pending) if spec.channel.payload else {}
        attempts: list[DeliveryAttempt] = []
        updates: list[EventUpdate] = []
        delay: float | None = None
        error: str | None = None
        for event in pending:
            now = self._now()
            if event.next_at > now:
                delay = event.next_at - now
                break
            note = Notification(
                EVENT, event.number, bodies.get(event.seq) or b"", event.resource_type, event.resource_id
            )
            result = await self._c._sender.send(spec, note, now)
            attempts.append(self._attempt(event.number, now, result))
            tries = event.attempts + 1
            if result.ok:
                self._failures = 0
                updates.append(EventUpdate(event.number, DELIVERED, tries))
                continue
            self._failures += 1
            error = f"Delivery of event {event.number} failed: {result.detail}"
            if self._c._policy.gives_up(event.recorded, now):
                updates.append(EventUpdate(event.number, DEAD, tries, 0.0, result.detail))
                error = f"Event {event.number} is a dead letter after {tries} attempts: {result.detail}"
                continue
            delay = self._c._policy.delay(tries)
            updates.append(EventUpdate(event.number, PENDING, tries, now + delay, result.detail))
            break
        if attempts:
            await self._c._ledger.record_delivery(
                self._id, attempts, updates, self._failures, error, self._now()
            )
        await self._update_status(spec, updates, error)
        return delay

    async def _update_status(
        self, spec: SubscriptionSpec, updates: list[EventUpdate], error: str | None
    ) -> None:
        if self._failures == 0 and updates and spec.status == "error":
            await self._c._status.change(self._id, "active", when={"error"})
        elif any(u.state == DEAD for u in updates):
            await self._c._status.change(
                self._id, "error", when={"active", "requested", "error"}, error=error
            )
        elif error is not None:
            await self._maybe_error(spec, error)

    async def _maybe_error(self, spec: SubscriptionSpec, error: str) -> None:
        if self._failures >= self._c._config.failures_before_error and spec.status != "error":
            await self._c._status.change(self._id, "error", when={"active", "requested"}, error=error)

    def _attempt(self, number: int, now: float, result: SendResult) -> DeliveryAttempt:
        return DeliveryAttempt(
            self._id,
            number,
            REST_HOOK,
            fhir_instant(self._c._clock()),
            self._c._actor,
            DELIVERED if result.ok else "failed",
            result.status_code,
            result.detail,
            result.duration_ms,
        )
