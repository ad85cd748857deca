"""The delivery ledger in the embedded store's SQLite file.

Each write is one function. While the process's group commit (group_commit.py) has a batch queued or
committing, the write joins it in a savepoint of its own: it costs no COMMIT, and if it raises it is
undone alone. Otherwise, and always for relay batches and pruning, which can be large, it runs inside
BEGIN IMMEDIATE ... COMMIT on the writer connection's thread, where SQLite works beside the event loop.
Reads go through the store's reader connections.
"""

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import orjson

from ..ledger import (
    DEAD,
    DELIVERED,
    DONE,
    PENDING,
    QUEUED,
    AppliedSubscription,
    CursorMoved,
    DeliveryAttempt,
    DeliveryRecord,
    EventUpdate,
    JobOutcome,
    JobRecord,
    Ledger,
    Match,
    SubscriptionEvent,
    SubscriptionState,
    job_id_for,
)
from ..store import OutboxEvent
from .connection import WriteLock, begin, commit, rollback, run_on_connection
from .group_commit import Unit

if TYPE_CHECKING:
    from .store import SqliteStore

T = TypeVar("T")

_EVENT_COLUMNS = (
    "eid, sub_id, number, seq, type, id, version, action, at, channel, state, attempts, recorded, next_at, "
    "last_error"
)
_JOB_COLUMNS = (
    "job_id, workflow, sub_id, number, seq, payload, state, attempts, created, next_at, worker, last_error"
)
_ATTEMPT_COLUMNS = "sub_id, number, channel, at, actor, outcome, status_code, detail, duration_ms, job_id"
_INSERT_ATTEMPT = (
    f"INSERT INTO delivery_attempts ({_ATTEMPT_COLUMNS}, recorded) VALUES ({', '.join('?' * 11)})"
)
_MAX_SQL_PARAMS = 500


def _in_transaction(db: sqlite3.Connection, lock: WriteLock, fn: Callable[..., T], *args: object) -> T:
    begin(db, lock)
    try:
        result = fn(db, *args)
    except BaseException:
        rollback(db, lock)
        raise
    commit(db, lock)
    return result


def _attempt_row(a: DeliveryAttempt, now: float) -> tuple:
    return (
        a.subscription_id,
        a.number,
        a.channel,
        a.at,
        a.actor,
        a.outcome,
        a.status_code,
        a.detail,
        a.duration_ms,
        a.job_id,
        now,
    )


def _trigger(event: OutboxEvent) -> bytes:
    """A job's payload: the change that triggered it."""
    return orjson.dumps(
        {
            "seq": event.seq,
            "type": event.resource_type,
            "id": event.id,
            "version": event.version,
            "action": event.action,
            "at": event.at,
            "trace_id": event.trace_id,
        }
    )


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


# ----- writes, each run in one transaction on the writer's thread -----


def _ensure_cursor(db: sqlite3.Connection, relay: str) -> None:
    db.execute("INSERT OR IGNORE INTO relay_cursor (name, seq) VALUES (?, 0)", (relay,))


def _record_batch(
    db: sqlite3.Connection,
    relay: str,
    after: int,
    upto: int,
    applied: Sequence[AppliedSubscription],
    matches: Sequence[Match],
    now: float,
) -> list[SubscriptionEvent]:
    _ensure_cursor(db, relay)
    moved = db.execute(
        "UPDATE relay_cursor SET seq = ? WHERE name = ? AND seq = ? RETURNING seq", (upto, relay, after)
    ).fetchall()
    if not moved:
        raise CursorMoved(f"relay cursor {relay} is no longer at {after}")
    if applied:
        db.executemany(
            "INSERT INTO sub_state (sub_id, applied_version, deleted) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (sub_id) DO UPDATE SET applied_version = ?2, deleted = ?3, "
            "handshake_ok = CASE WHEN ?4 THEN 0 ELSE handshake_ok END",
            [(a.subscription_id, a.version, int(a.deleted), int(a.requested)) for a in applied],
        )
    return _record_matches(db, matches, now) if matches else []


def _event_totals(db: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for start in range(0, len(ids), _MAX_SQL_PARAMS):
        chunk = ids[start : start + _MAX_SQL_PARAMS]
        rows = db.execute(
            f"SELECT sub_id, events_total FROM sub_state WHERE sub_id IN ({_placeholders(len(chunk))})", chunk
        ).fetchall()
        totals.update(dict(rows))
    return totals


def _record_matches(db: sqlite3.Connection, matches: Sequence[Match], now: float) -> list[SubscriptionEvent]:
    totals = _event_totals(db, sorted({m.subscription_id for m in matches}))
    first_eid = db.execute("SELECT coalesce(max(eid), 0) + 1 FROM sub_events").fetchone()[0]
    events, jobs = [], []
    for offset, match in enumerate(matches):
        number = totals[match.subscription_id] = totals.get(match.subscription_id, 0) + 1
        e = match.event
        events.append(
            SubscriptionEvent(
                first_eid + offset,
                match.subscription_id,
                number,
                e.seq,
                e.resource_type,
                e.id,
                e.version,
                e.action,
                e.at,
                match.channel,
                match.state,
                recorded=now,
            )
        )
        if match.workflow is not None:
            jobs.append(
                (job_id_for(match.subscription_id, e.seq), match.workflow, match.subscription_id, number)
                + (e.seq, _trigger(e), QUEUED, now, now, now)
            )
    db.executemany(
        f"INSERT INTO sub_events ({_EVENT_COLUMNS}) VALUES ({_placeholders(15)})",
        [
            (ev.eid, ev.subscription_id, ev.number, ev.seq, ev.resource_type, ev.resource_id, ev.version)
            + (ev.action, ev.at, ev.channel, ev.state, 0, now, 0.0, None)
            for ev in events
        ],
    )
    db.executemany(
        "INSERT INTO sub_state (sub_id, applied_version, events_total) VALUES (?, 0, ?) "
        "ON CONFLICT (sub_id) DO UPDATE SET events_total = excluded.events_total",
        list(totals.items()),
    )
    if jobs:
        db.executemany(
            "INSERT OR IGNORE INTO jobs (job_id, workflow, sub_id, number, seq, payload, state, created, "
            f"next_at, enqueued) VALUES ({_placeholders(10)})",
            jobs,
        )
    return events


def _acquire_lease(db: sqlite3.Connection, name: str, holder: str, now: float, ttl: float) -> bool:
    row = db.execute(
        "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires "
        "WHERE leases.holder = excluded.holder OR leases.expires < ? RETURNING holder",
        (name, holder, now + ttl, now),
    ).fetchall()
    return bool(row)


def _release_lease(db: sqlite3.Connection, name: str, holder: str) -> None:
    db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def _record_deliveries(db: sqlite3.Connection, records: Sequence[DeliveryRecord]) -> None:
    db.executemany(_INSERT_ATTEMPT, [_attempt_row(a, r.now) for r in records for a in r.attempts])
    db.executemany(
        "UPDATE sub_events SET state = ?, attempts = ?, next_at = ?, last_error = ?, "
        "recorded = CASE WHEN ? = 'delivered' THEN ? ELSE recorded END WHERE sub_id = ? AND number = ?",
        [
            (u.state, u.attempts, u.next_at, u.last_error, u.state, r.now, r.subscription_id, u.number)
            for r in records
            for u in r.updates
        ],
    )
    db.executemany(
        "UPDATE sub_state SET failures = ?, last_error = coalesce(?, last_error), "
        "handshake_ok = coalesce(?, handshake_ok) WHERE sub_id = ?",
        [
            (
                r.failures,
                r.last_error,
                None if r.handshake_ok is None else int(r.handshake_ok),
                r.subscription_id,
            )
            for r in records
        ],
    )


def _resend(db: sqlite3.Connection, subscription_id: str, now: float) -> int:
    events = db.execute(
        "UPDATE sub_events SET state = 'pending', attempts = 0, next_at = 0, recorded = ? "
        "WHERE sub_id = ? AND state = 'dead' AND channel != 'message' RETURNING number",
        (now, subscription_id),
    ).fetchall()
    jobs = db.execute(
        "UPDATE jobs SET state = 'queued', attempts = 0, next_at = ?, created = ?, enqueued = 0 "
        "WHERE sub_id = ? AND state = 'dead' RETURNING number",
        (now, now, subscription_id),
    ).fetchall()
    if jobs:
        db.executemany(
            "UPDATE sub_events SET state = 'pending' WHERE sub_id = ? AND number = ?",
            [(subscription_id, row[0]) for row in jobs],
        )
    db.execute("UPDATE sub_state SET failures = 0 WHERE sub_id = ?", (subscription_id,))
    return len(events) + len(jobs)


def _claim_job(
    db: sqlite3.Connection, job_id: str, worker: str, now: float, lease_until: float
) -> tuple | None:
    rows = db.execute(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = ?, lease_until = ? "
        "WHERE job_id = ? AND ((state IN ('queued', 'failed') AND next_at <= ?) "
        "OR (state = 'running' AND lease_until < ?)) "
        f"RETURNING {_JOB_COLUMNS}",
        (worker, lease_until, job_id, now, now),
    ).fetchall()
    return rows[0] if rows else None


def _finish_job(
    db: sqlite3.Connection,
    job_id: str,
    worker: str,
    outcome: JobOutcome,
    attempt: DeliveryAttempt,
    now: float,
) -> int | None:
    row = db.execute(
        "UPDATE jobs SET state = ?, next_at = ?, last_error = ?, lease_until = 0, enqueued = 0, "
        "finished = CASE WHEN ? IN ('done', 'dead') THEN ? END "
        "WHERE job_id = ? AND state = 'running' AND worker = ? RETURNING sub_id, number, attempts",
        (outcome.state, outcome.next_at, outcome.error, outcome.state, now, job_id, worker),
    ).fetchall()
    if not row:
        return None
    sub_id, number, attempts = row[0]
    db.execute(_INSERT_ATTEMPT, _attempt_row(attempt, now))
    event_state = {DONE: DELIVERED, DEAD: DEAD}.get(outcome.state, PENDING)
    db.execute(
        "UPDATE sub_events SET state = ?, attempts = ?, next_at = ?, last_error = ? WHERE sub_id = ? AND number = ?",
        (event_state, attempts, outcome.next_at, outcome.error, sub_id, number),
    )
    before = db.execute("SELECT failures FROM sub_state WHERE sub_id = ?", (sub_id,)).fetchone()
    failures = before[0] if before else 0
    if outcome.state == DEAD:
        db.execute(
            "UPDATE sub_state SET failures = failures + 1, last_error = ? WHERE sub_id = ?",
            (outcome.error, sub_id),
        )
    elif outcome.state == DONE and failures:
        db.execute("UPDATE sub_state SET failures = 0 WHERE sub_id = ?", (sub_id,))
    return failures


def _mark_enqueued(db: sqlite3.Connection, job_ids: Sequence[str], now: float) -> None:
    db.executemany("UPDATE jobs SET enqueued = ? WHERE job_id = ?", [(now, job_id) for job_id in job_ids])


def _prune(db: sqlite3.Connection, before: float) -> int:
    removed = 0
    for sql in (
        "DELETE FROM sub_events WHERE state = 'delivered' AND recorded < ?",
        "DELETE FROM delivery_attempts WHERE recorded < ?",
        "DELETE FROM jobs WHERE state IN ('done', 'dead') AND finished < ?",
    ):
        removed += db.execute(sql, (before,)).rowcount
    return removed


class SqliteLedger(Ledger):
    def __init__(self, store: "SqliteStore") -> None:
        self._store = store

    async def _write(self, fn: Callable[..., T], *args: object) -> T:
        """Runs fn(db, *args) in the group commit's next batch when one is due anyway, else alone."""
        group = self._store._group
        if group.busy:
            [result] = await group.submit(Unit([lambda db: fn(db, *args)]))
            return result
        return await self._write_alone(fn, *args)

    async def _write_alone(self, fn: Callable[..., T], *args: object) -> T:
        """Runs fn(db, *args) in its own transaction on the writer's thread, beside the event loop."""
        store = self._store
        async with store._write_lock:
            return await run_on_connection(store._writer, _in_transaction, store._file_lock, fn, *args)

    async def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return list(await self._store._reader().execute_fetchall(sql, args))

    # ----- relay -----

    async def cursor(self, relay: str) -> int:
        rows = await self._read("SELECT seq FROM relay_cursor WHERE name = ?", (relay,))
        if rows:
            return rows[0][0]
        await self._write(_ensure_cursor, relay)
        return 0

    async def record_batch(
        self,
        relay: str,
        after: int,
        upto: int,
        applied: Sequence[AppliedSubscription],
        matches: Sequence[Match],
        now: float,
    ) -> list[SubscriptionEvent]:
        return await self._write_alone(_record_batch, relay, after, upto, applied, matches, now)

    async def applied_subscriptions(self) -> list[tuple[str, int]]:
        rows = await self._read("SELECT sub_id, applied_version FROM sub_state WHERE deleted = 0")
        return [(row[0], row[1]) for row in rows if row[1] > 0]

    async def bodies(self, events: Sequence[OutboxEvent | SubscriptionEvent]) -> dict[int, bytes | None]:
        if not events:
            return {}
        types = sorted({e.resource_type for e in events})
        rows = await self._read(
            "SELECT o.seq, h.body FROM outbox o "
            "JOIN resources r ON r.type = o.type AND r.id = o.id "
            "JOIN history h ON h.rid = r.rid AND h.version = o.version "
            f"WHERE o.seq BETWEEN ? AND ? AND o.type IN ({_placeholders(len(types))})",
            (min(e.seq for e in events), max(e.seq for e in events), *types),
        )
        wanted = {e.seq for e in events}
        return {seq: body for seq, body in rows if seq in wanted}

    # ----- lease -----

    async def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        return await self._write(_acquire_lease, name, holder, now, ttl)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._write(_release_lease, name, holder)

    # ----- delivery -----

    async def pending_events(self, subscription_id: str, limit: int = 100) -> list[SubscriptionEvent]:
        rows = await self._read(
            f"SELECT {_EVENT_COLUMNS} FROM sub_events WHERE sub_id = ? AND state = 'pending' ORDER BY number LIMIT ?",
            (subscription_id, limit),
        )
        return [SubscriptionEvent(*row) for row in rows]

    async def subscriptions_with_pending(self, channel: str) -> list[str]:
        rows = await self._read(
            "SELECT DISTINCT sub_id FROM sub_events WHERE state = 'pending' AND channel = ?", (channel,)
        )
        return [row[0] for row in rows]

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
        record = DeliveryRecord(
            subscription_id, tuple(attempts), tuple(updates), failures, last_error, now, handshake_ok
        )
        await self.record_deliveries([record])

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        if records:
            await self._write(_record_deliveries, records)

    async def resend(self, subscription_id: str, now: float) -> int:
        return await self._write(_resend, subscription_id, now)

    # ----- reading -----

    async def subscription_state(self, subscription_id: str) -> SubscriptionState | None:
        rows = await self._read(
            "SELECT sub_id, applied_version, deleted, events_total, failures, last_error, handshake_ok, "
            "(SELECT count(*) FROM sub_events WHERE sub_id = ?1 AND state = 'pending'), "
            "(SELECT count(*) FROM sub_events WHERE sub_id = ?1 AND state = 'dead') "
            "FROM sub_state WHERE sub_id = ?1",
            (subscription_id,),
        )
        if not rows:
            return None
        sub_id, version, deleted, total, failures, last_error, handshake_ok, pending, dead = rows[0]
        return SubscriptionState(
            sub_id, version, bool(deleted), total, failures, last_error, bool(handshake_ok), pending, dead
        )

    async def recent_attempts(self, subscription_id: str, limit: int = 10) -> list[DeliveryAttempt]:
        rows = await self._read(
            f"SELECT {_ATTEMPT_COLUMNS} FROM delivery_attempts WHERE sub_id = ? ORDER BY aid DESC LIMIT ?",
            (subscription_id, limit),
        )
        return [DeliveryAttempt(*row) for row in rows]

    async def events(
        self, subscription_id: str, first: int, last: int, limit: int = 1000
    ) -> list[SubscriptionEvent]:
        rows = await self._read(
            f"SELECT {_EVENT_COLUMNS} FROM sub_events WHERE sub_id = ? AND number BETWEEN ? AND ? "
            "ORDER BY number LIMIT ?",
            (subscription_id, first, last, limit),
        )
        return [SubscriptionEvent(*row) for row in rows]

    async def last_event_id(self) -> int:
        rows = await self._read("SELECT coalesce(max(eid), 0) FROM sub_events")
        return rows[0][0]

    async def events_after(self, eid: int, channel: str, limit: int = 500) -> list[SubscriptionEvent]:
        rows = await self._read(
            f"SELECT {_EVENT_COLUMNS} FROM sub_events WHERE channel = ? AND eid > ? ORDER BY eid LIMIT ?",
            (channel, eid, limit),
        )
        return [SubscriptionEvent(*row) for row in rows]

    # ----- jobs -----

    async def claim_job(self, job_id: str, worker: str, now: float, lease_until: float) -> JobRecord | None:
        row = await self._write(_claim_job, job_id, worker, now, lease_until)
        return JobRecord(*row) if row else None

    async def finish_job(
        self, job_id: str, worker: str, outcome: JobOutcome, attempt: DeliveryAttempt, now: float
    ) -> int | None:
        return await self._write(_finish_job, job_id, worker, outcome, attempt, now)

    async def job(self, job_id: str) -> JobRecord | None:
        rows = await self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return JobRecord(*rows[0]) if rows else None

    async def due_jobs(self, now: float, enqueued_before: float, limit: int = 500) -> list[str]:
        rows = await self._read(
            "SELECT job_id FROM jobs WHERE state IN ('queued', 'failed', 'running') AND next_at <= ? "
            "AND state != 'running' AND enqueued < ? ORDER BY next_at LIMIT ?",
            (now, enqueued_before, limit),
        )
        return [row[0] for row in rows]

    async def stale_jobs(self, now: float, limit: int = 500) -> list[str]:
        rows = await self._read(
            "SELECT job_id FROM jobs WHERE state IN ('queued', 'failed', 'running') AND next_at <= ? "
            "AND state = 'running' AND lease_until < ? ORDER BY next_at LIMIT ?",
            (now, now, limit),
        )
        return [row[0] for row in rows]

    async def mark_enqueued(self, job_ids: Sequence[str], now: float) -> None:
        if job_ids:
            await self._write(_mark_enqueued, job_ids, now)

    # ----- housekeeping -----

    async def prune(self, before: float) -> int:
        return await self._write_alone(_prune, before)
