"""The delivery ledger kept in the store (`store.ledger()`), on every backend."""

import asyncio

import pytest

from nphies_facade.resources.ledger import (
    DEAD,
    DELIVERED,
    DONE,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    AppliedSubscription,
    CursorMoved,
    DeliveryAttempt,
    EventUpdate,
    JobOutcome,
    Match,
    job_id_for,
)

from .writing import patient, write, write_deferred

RELAY = "relay"


def _attempt(sub: str, number: int, outcome: str = "ok", job_id: str | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(
        sub, number, "rest-hook", "2024-01-01T00:00:00Z", "relay", outcome, 200, None, 1.5, job_id
    )


@pytest.fixture
async def recorded(store, extractor):
    """Three outbox events, relayed to Subscription s1 (rest-hook) and s2 (a workflow)."""
    events = [(await write(store, extractor, patient(f"p{n}")))[1] for n in range(3)]
    ledger = store.ledger()
    assert await ledger.cursor(RELAY) == 0
    matches = [Match("s1", "rest-hook", e) for e in events] + [
        Match("s2", "message", events[0], workflow="wf")
    ]
    recorded = await ledger.record_batch(
        RELAY, 0, events[-1].seq, [AppliedSubscription("s1", 1), AppliedSubscription("s2", 3)], matches, 100.0
    )
    return ledger, events, recorded


async def test_a_batch_moves_the_cursor_numbers_events_and_queues_jobs(recorded):
    ledger, events, recorded = recorded
    assert await ledger.cursor(RELAY) == events[-1].seq
    assert [(e.subscription_id, e.number, e.seq) for e in recorded] == [
        ("s1", 1, events[0].seq),
        ("s1", 2, events[1].seq),
        ("s1", 3, events[2].seq),
        ("s2", 1, events[0].seq),
    ]
    eids = [e.eid for e in recorded]
    assert eids == sorted(eids) and len(set(eids)) == 4
    assert await ledger.last_event_id() == eids[-1]
    job = await ledger.job(job_id_for("s2", events[0].seq))
    assert (job.state, job.workflow, job.number, job.attempts, job.created, job.next_at) == (
        QUEUED,
        "wf",
        1,
        0,
        100.0,
        100.0,
    )
    assert sorted(await ledger.applied_subscriptions()) == [("s1", 1), ("s2", 3)]


async def test_a_batch_from_a_stale_cursor_is_refused_and_records_nothing(recorded):
    ledger, events, _ = recorded
    with pytest.raises(CursorMoved):
        await ledger.record_batch(RELAY, 0, events[-1].seq, [], [Match("s1", "rest-hook", events[0])], 101.0)
    assert (await ledger.subscription_state("s1")).events_total == 3


async def test_bodies_are_the_versions_the_events_name(recorded, store):
    ledger, events, _ = recorded
    bodies = await ledger.bodies(events)
    assert bodies == {e.seq: (await store.read("Patient", e.id)).body for e in events}
    assert await ledger.bodies([]) == {}


async def test_a_lease_is_held_until_released_or_expired(store):
    ledger = store.ledger()
    assert await ledger.acquire_lease("relay", "a", now=10.0, ttl=5.0)
    assert await ledger.acquire_lease("relay", "a", now=11.0, ttl=5.0)
    assert not await ledger.acquire_lease("relay", "b", now=12.0, ttl=5.0)
    assert await ledger.acquire_lease("relay", "b", now=17.0, ttl=5.0)
    await ledger.release_lease("relay", "a")
    assert not await ledger.acquire_lease("relay", "a", now=18.0, ttl=5.0)
    await ledger.release_lease("relay", "b")
    assert await ledger.acquire_lease("relay", "a", now=18.0, ttl=5.0)


async def test_deliveries_update_events_state_and_attempts(recorded):
    ledger, _, _ = recorded
    assert [e.number for e in await ledger.pending_events("s1")] == [1, 2, 3]
    assert await ledger.subscriptions_with_pending("rest-hook") == ["s1"]
    await ledger.record_delivery(
        "s1",
        [_attempt("s1", 1), _attempt("s1", 2, "failed")],
        [
            EventUpdate(1, DELIVERED, 1),
            EventUpdate(2, DEAD, 5, 0.0, "gone"),
            EventUpdate(3, PENDING, 1, 200.0, "503"),
        ],
        failures=2,
        last_error="503",
        now=150.0,
        handshake_ok=True,
    )
    state = await ledger.subscription_state("s1")
    assert (state.failures, state.last_error, state.handshake_ok, state.pending, state.dead) == (
        2,
        "503",
        True,
        1,
        1,
    )
    assert [a.outcome for a in await ledger.recent_attempts("s1")] == ["failed", "ok"]
    events = await ledger.events("s1", 1, 3)
    assert [(e.state, e.attempts) for e in events] == [(DELIVERED, 1), (DEAD, 5), (PENDING, 1)]
    assert events[0].recorded == 150.0 and events[2].next_at == 200.0
    assert await ledger.resend("s1", now=160.0) == 1
    assert [e.number for e in await ledger.pending_events("s1")] == [2, 3]
    assert (await ledger.subscription_state("s1")).failures == 0


async def test_events_after_tail_one_channel_in_recording_order(recorded):
    ledger, _, recorded = recorded
    assert [e.number for e in await ledger.events_after(0, "rest-hook")] == [1, 2, 3]
    assert [e.subscription_id for e in await ledger.events_after(recorded[1].eid, "rest-hook")] == ["s1"]
    assert [e.subscription_id for e in await ledger.events_after(0, "message")] == ["s2"]


async def test_a_job_is_claimed_once_finished_and_counted(recorded):
    ledger, events, _ = recorded
    job_id = job_id_for("s2", events[0].seq)
    assert await ledger.due_jobs(now=200.0, enqueued_before=100.0) == []
    assert await ledger.due_jobs(now=200.0, enqueued_before=101.0) == [job_id]
    claimed = await ledger.claim_job(job_id, "w1", now=200.0, lease_until=260.0)
    assert (claimed.state, claimed.attempts, claimed.worker) == (RUNNING, 1, "w1")
    assert await ledger.claim_job(job_id, "w2", now=201.0, lease_until=261.0) is None
    assert await ledger.stale_jobs(now=261.0) == [job_id]
    assert (
        await ledger.finish_job(job_id, "w2", JobOutcome(DONE), _attempt("s2", 1, job_id=job_id), 210.0)
        is None
    )
    failed = JobOutcome(FAILED, next_at=300.0, error="timeout")
    assert await ledger.finish_job(job_id, "w1", failed, _attempt("s2", 1, "failed", job_id), 210.0) == 0
    assert (await ledger.job(job_id)).state == FAILED
    assert await ledger.claim_job(job_id, "w1", now=250.0, lease_until=400.0) is None
    await ledger.claim_job(job_id, "w1", now=300.0, lease_until=400.0)
    dead = JobOutcome(DEAD, error="gave up")
    assert await ledger.finish_job(job_id, "w1", dead, _attempt("s2", 1, "dead", job_id), 310.0) == 0
    state = await ledger.subscription_state("s2")
    assert (state.failures, state.last_error, state.dead) == (1, "gave up", 1)
    assert await ledger.resend("s2", now=320.0) == 1
    assert (await ledger.job(job_id)).state == QUEUED
    await ledger.mark_enqueued([job_id], now=330.0)
    assert await ledger.due_jobs(now=400.0, enqueued_before=330.0) == []


async def test_prune_removes_delivered_events_old_attempts_and_finished_jobs(recorded):
    ledger, events, _ = recorded
    await ledger.record_delivery(
        "s1", [_attempt("s1", 1)], [EventUpdate(1, DELIVERED, 1)], 0, None, now=150.0
    )
    job_id = job_id_for("s2", events[0].seq)
    await ledger.claim_job(job_id, "w", now=150.0, lease_until=200.0)
    await ledger.finish_job(job_id, "w", JobOutcome(DONE), _attempt("s2", 1, job_id=job_id), 160.0)
    assert await ledger.prune(before=170.0) == 5  # an event of s1 and of s2, two attempts, the job
    assert await ledger.job(job_id) is None
    assert [e.number for e in await ledger.events("s1", 1, 3)] == [2, 3]


async def test_ledger_writes_join_a_group_commit_under_way_and_run_alone_otherwise(store, extractor):
    """SQLite: a ledger write made while resource writes are committing goes in their batch (on the
    group commit's connection, no COMMIT of its own); made when nothing is, it runs alone on the
    writer's thread, beside the event loop."""
    if type(store).__name__ != "SqliteStore":
        pytest.skip("the group commit is the SQLite store's")
    ledger = store.ledger()
    statements: list[str] = []
    store._sync.set_trace_callback(statements.append)
    try:
        assert not store._group.busy
        assert await ledger.acquire_lease("idle", "me", 100.0, 10.0)
        assert not any("leases" in sql for sql in statements)
        creating = asyncio.create_task(write_deferred(store, extractor, patient("p7")))
        for _ in range(100):
            if store._group.busy:
                break
            await asyncio.sleep(0)
        assert await ledger.acquire_lease("busy", "me", 100.0, 10.0)
        await creating
    finally:
        store._sync.set_trace_callback(None)
    leases = [n for n, sql in enumerate(statements) if "leases" in sql]
    assert leases and statements.count("COMMIT") == 1 and leases[-1] < statements.index("COMMIT")
    assert (await store.read("Patient", "p7")).version == 1
    assert not await ledger.acquire_lease("busy", "someone else", 101.0, 10.0)
    assert not await ledger.acquire_lease("idle", "someone else", 101.0, 10.0)
