"""The delivery ledger on SQLite: the relay cursor is compare-and-set, event numbers are per
Subscription and gapless, the relay lease is exclusive, and a job is claimed by one runner at a time."""

from collections.abc import AsyncIterator

import pytest

from nphies_facade.resources.ledger import (
    DELIVERED,
    DONE,
    PENDING,
    AppliedSubscription,
    CursorMoved,
    DeliveryAttempt,
    DeliveryRecord,
    EventUpdate,
    JobOutcome,
    Match,
    job_id_for,
)
from nphies_facade.resources.sqlite.store import SqliteStore
from nphies_facade.resources.store import OutboxEvent


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "ledger.sqlite3")
    await s.open()
    yield s
    await s.close()


def event(seq: int) -> OutboxEvent:
    return OutboxEvent(seq, "Patient", f"p{seq}", 1, "create", "2026-01-01T00:00:00.000+00:00", "trace")


async def test_the_cursor_moves_only_from_where_it_was(store):
    ledger = store.ledger()
    assert await ledger.cursor("main") == 0
    applied = [AppliedSubscription("s1", 1)]
    await ledger.record_batch("main", 0, 10, applied, [Match("s1", "rest-hook", event(5))], 1.0)
    with pytest.raises(CursorMoved):
        await ledger.record_batch("main", 0, 10, [], [Match("s1", "rest-hook", event(5))], 1.0)
    assert await ledger.cursor("main") == 10
    assert (await ledger.subscription_state("s1")).events_total == 1


async def test_event_numbers_are_per_subscription_and_gapless(store):
    ledger = store.ledger()
    applied = [AppliedSubscription("a", 1), AppliedSubscription("b", 1)]
    first = [
        Match("a", "rest-hook", event(1)),
        Match("b", "rest-hook", event(1)),
        Match("a", "rest-hook", event(2)),
    ]
    recorded = await ledger.record_batch("main", 0, 2, applied, first, 1.0)
    assert [(e.subscription_id, e.number) for e in recorded] == [("a", 1), ("b", 1), ("a", 2)]
    recorded = await ledger.record_batch("main", 2, 3, [], [Match("a", "rest-hook", event(3))], 1.0)
    assert [(e.subscription_id, e.number) for e in recorded] == [("a", 3)]
    assert [e.number for e in await ledger.pending_events("a")] == [1, 2, 3]
    attempt = DeliveryAttempt("a", 1, "rest-hook", "2026-01-01T00:00:01.000+00:00", "me", DELIVERED)
    await ledger.record_deliveries(
        [DeliveryRecord("a", (attempt,), (EventUpdate(1, DELIVERED, 1),), 0, None, 2.0)]
    )
    assert [e.number for e in await ledger.pending_events("a")] == [2, 3]
    assert [e.number for e in await ledger.events("a", 1, 3)] == [1, 2, 3]
    assert (await ledger.recent_attempts("a"))[0].outcome == DELIVERED


async def test_the_relay_lease_has_one_holder_until_it_expires(store):
    ledger = store.ledger()
    assert await ledger.acquire_lease("relay", "a", now=100.0, ttl=10.0)
    assert not await ledger.acquire_lease("relay", "b", now=105.0, ttl=10.0)
    assert await ledger.acquire_lease("relay", "a", now=105.0, ttl=10.0)
    assert await ledger.acquire_lease("relay", "b", now=116.0, ttl=10.0)
    assert not await ledger.acquire_lease("relay", "a", now=117.0, ttl=10.0)
    await ledger.release_lease("relay", "b")
    assert await ledger.acquire_lease("relay", "a", now=118.0, ttl=10.0)


async def test_a_job_is_claimed_once_and_a_runner_that_lost_it_cannot_finish_it(store):
    ledger = store.ledger()
    match = Match("s", "message", event(7), PENDING, "wf")
    await ledger.record_batch("main", 0, 7, [AppliedSubscription("s", 1)], [match], now=10.0)
    job_id = job_id_for("s", 7)
    assert await ledger.due_jobs(now=10.0, enqueued_before=10.5) == [job_id]

    claimed = await ledger.claim_job(job_id, "w1", now=11.0, lease_until=20.0)
    assert claimed.attempts == 1 and claimed.workflow == "wf"
    assert await ledger.claim_job(job_id, "w2", now=12.0, lease_until=21.0) is None
    assert await ledger.stale_jobs(now=19.0) == []
    assert await ledger.stale_jobs(now=25.0) == [job_id]

    taken_over = await ledger.claim_job(job_id, "w2", now=25.0, lease_until=35.0)
    assert taken_over.attempts == 2
    attempt = DeliveryAttempt("s", 1, "message", "2026-01-01T00:00:30.000+00:00", "w1", DONE, job_id=job_id)
    assert await ledger.finish_job(job_id, "w1", JobOutcome(DONE), attempt, now=30.0) is None
    assert await ledger.finish_job(job_id, "w2", JobOutcome(DONE), attempt, now=30.0) == 0
    assert (await ledger.job(job_id)).state == DONE
    assert [e.state for e in await ledger.events("s", 1, 1)] == [DELIVERED]
    assert await ledger.claim_job(job_id, "w3", now=40.0, lease_until=50.0) is None


async def test_old_delivered_events_and_attempts_are_pruned(store):
    ledger = store.ledger()
    await ledger.record_batch(
        "main", 0, 1, [AppliedSubscription("a", 1)], [Match("a", "rest-hook", event(1))], 1.0
    )
    attempt = DeliveryAttempt("a", 1, "rest-hook", "2026-01-01T00:00:01.000+00:00", "me", DELIVERED)
    await ledger.record_deliveries(
        [DeliveryRecord("a", (attempt,), (EventUpdate(1, DELIVERED, 1),), 0, None, 2.0)]
    )
    assert await ledger.prune(before=1.5) == 0
    assert await ledger.prune(before=3.0) == 2
    assert await ledger.events("a", 1, 1) == []
