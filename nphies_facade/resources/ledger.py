"""The delivery ledger port: what the subscription relay, channels and job runner keep in the store.

The relay's cursor and lease, each Subscription's event numbers and delivery state, every notification
event, every delivery attempt and job run, and the job records. The store is the truth (DESIGN rule 3):
the queue only carries job ids, so a lost queue loses no work. Times that are compared are epoch seconds
(floats); times that are shown are FHIR instants (strings).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from .store import OutboxEvent

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class CursorMoved(Exception):
    """Another relay advanced the cursor first; the batch was not recorded."""


def job_id_for(subscription_id: str, seq: int) -> str:
    """Deterministic: one job per (subscription, outbox event), so a duplicate enqueue is dropped."""
    return f"wf:{subscription_id}:{seq}"


@dataclass(frozen=True, slots=True)
class AppliedSubscription:
    """A Subscription version the relay now matches with (or a deletion)."""

    subscription_id: str
    version: int
    deleted: bool = False
    requested: bool = False  # a requested version asks for a new handshake


@dataclass(frozen=True, slots=True)
class Match:
    """An outbox event that matched a Subscription; `workflow` names the job to create (message channel)."""

    subscription_id: str
    channel: str
    event: OutboxEvent
    state: str = PENDING
    workflow: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    """One notification event: the `number`th event of a Subscription, and its delivery state."""

    eid: int
    subscription_id: str
    number: int
    seq: int
    resource_type: str
    resource_id: str
    version: int
    action: str
    at: str
    channel: str
    state: str
    attempts: int = 0
    recorded: float = 0.0
    next_at: float = 0.0
    last_error: str | None = None

    @property
    def focus(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version}"


@dataclass(frozen=True, slots=True)
class EventUpdate:
    """The delivery state of one event after an attempt."""

    number: int
    state: str
    attempts: int
    next_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """Who tried to deliver what, when, and how it went. `number` 0 is a handshake."""

    subscription_id: str
    number: int
    channel: str
    at: str
    actor: str
    outcome: str
    status_code: int | None = None
    detail: str | None = None
    duration_ms: float | None = None
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """What one round of deliveries to a Subscription did: attempts, the events' new states, its
    consecutive failure count and, when known, whether its endpoint passed the handshake."""

    subscription_id: str
    attempts: tuple[DeliveryAttempt, ...]
    updates: tuple[EventUpdate, ...]
    failures: int
    last_error: str | None
    now: float
    handshake_ok: bool | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    subscription_id: str
    applied_version: int
    deleted: bool
    events_total: int
    failures: int
    last_error: str | None
    handshake_ok: bool = False
    pending: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    workflow: str
    subscription_id: str
    number: int
    seq: int
    payload: bytes
    state: str
    attempts: int
    created: float
    next_at: float
    worker: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a run ended: `state` done, failed (retry at `next_at`) or dead."""

    state: str
    next_at: float = 0.0
    error: str | None = None


class Ledger(ABC):
    # ----- relay -----

    @abstractmethod
    async def cursor(self, relay: str) -> int:
        """The last outbox seq the relay recorded (0 before the first batch)."""

    @abstractmethod
    async def record_batch(
        self,
        relay: str,
        after: int,
        upto: int,
        applied: Sequence[AppliedSubscription],
        matches: Sequence[Match],
        now: float,
    ) -> list[SubscriptionEvent]:
        """In one transaction: moves the cursor from `after` to `upto` (CursorMoved when it is elsewhere),
        records the applied Subscription versions, gives each match its Subscription's next event number,
        and creates a queued job (`job_id_for`) for each match that names a workflow."""

    @abstractmethod
    async def applied_subscriptions(self) -> list[tuple[str, int]]:
        """(id, version) of each live Subscription the relay matches with."""

    @abstractmethod
    async def bodies(self, events: Sequence[OutboxEvent | SubscriptionEvent]) -> dict[int, bytes | None]:
        """The body each event's version was written with, by seq (None for a deletion)."""

    # ----- lease -----

    @abstractmethod
    async def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        """Takes or renews the named lease when it is free, expired or already `holder`'s."""

    @abstractmethod
    async def release_lease(self, name: str, holder: str) -> None: ...

    # ----- delivery -----

    @abstractmethod
    async def pending_events(self, subscription_id: str, limit: int = 100) -> list[SubscriptionEvent]:
        """Undelivered events of one Subscription, oldest first."""

    @abstractmethod
    async def subscriptions_with_pending(self, channel: str) -> list[str]: ...

    @abstractmethod
    async def record_delivery(
        self,
        subscription_id: str,
        attempts: Sequence[DeliveryAttempt],
        updates: Sequence[EventUpdate],
        failures: int,
        last_error: str | None,
        now: float,
        handshake_ok: bool | None = None,
    ) -> None:
        """Records attempts, the events' new states, the Subscription's consecutive failure count and,
        when given, whether its endpoint passed the handshake."""

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        """Records rounds of deliveries in order; a backend may write them in one transaction."""
        for r in records:
            await self.record_delivery(
                r.subscription_id, r.attempts, r.updates, r.failures, r.last_error, r.now, r.handshake_ok
            )

    @abstractmethod
    async def resend(self, subscription_id: str, now: float) -> int:
        """Puts the Subscription's dead events (and dead jobs) back in line; returns how many."""

    # ----- reading -----

    @abstractmethod
    async def subscription_state(self, subscription_id: str) -> SubscriptionState | None: ...

    @abstractmethod
    async def recent_attempts(self, subscription_id: str, limit: int = 10) -> list[DeliveryAttempt]:
        """Newest first."""

    @abstractmethod
    async def events(
        self, subscription_id: str, first: int, last: int, limit: int = 1000
    ) -> list[SubscriptionEvent]:
        """Events numbered first..last (inclusive), oldest first."""

    @abstractmethod
    async def last_event_id(self) -> int: ...

    @abstractmethod
    async def events_after(self, eid: int, channel: str, limit: int = 500) -> list[SubscriptionEvent]:
        """Events of one channel recorded after `eid`, in recording order (websocket tailing)."""

    # ----- jobs -----

    @abstractmethod
    async def claim_job(self, job_id: str, worker: str, now: float, lease_until: float) -> JobRecord | None:
        """Marks a due job running for `worker`; None when it is done, dead, not due or leased elsewhere."""

    @abstractmethod
    async def finish_job(
        self, job_id: str, worker: str, outcome: JobOutcome, attempt: DeliveryAttempt, now: float
    ) -> int | None:
        """Records the run's outcome, its attempt and the event's state; a dead job counts as a failure of
        its Subscription, a done one clears them. Returns the failure count before this run, or None
        when the claim was lost (another runner took the job over)."""

    @abstractmethod
    async def job(self, job_id: str) -> JobRecord | None: ...

    @abstractmethod
    async def due_jobs(self, now: float, enqueued_before: float, limit: int = 500) -> list[str]:
        """Ids of queued or failed jobs that are due and were last enqueued before `enqueued_before`."""

    @abstractmethod
    async def stale_jobs(self, now: float, limit: int = 500) -> list[str]:
        """Ids of running jobs past their lease: their runner died."""

    @abstractmethod
    async def mark_enqueued(self, job_ids: Sequence[str], now: float) -> None: ...

    # ----- housekeeping -----

    @abstractmethod
    async def prune(self, before: float) -> int:
        """Deletes delivered events, attempts and finished jobs recorded before `before`."""
