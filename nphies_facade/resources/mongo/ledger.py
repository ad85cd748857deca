"""The delivery ledger in MongoDB: relay cursor and lease, Subscription state, events, attempts, jobs.

relay_cursor       {_id: relay name, seq}
leases             {_id: lease name, holder, expires}
sub_state          {_id: Subscription id, applied_version, deleted, events_total, failures, last_error,
                    handshake_ok}
sub_events         {_id: eid, sub_id, number, seq, type, id, version, action, at, channel, state, attempts,
                    recorded, next_at, last_error}; eid comes from a counter taken in the recording
                    transaction, so events are numbered in commit order (websocket tailing reads by eid)
delivery_attempts  {_id: aid, sub_id, number, channel, at, actor, outcome, status_code, detail,
                    duration_ms, job_id, recorded}
jobs               {_id: job id, workflow, sub_id, number, seq, payload, state, attempts, created, next_at,
                    enqueued, lease_until, finished, worker, last_error}

Writes that touch several documents run in one transaction (run again on a write conflict); single
document changes (claiming a job, taking a lease) are atomic on their own.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import orjson
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ..ledger import (
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
    JobRecord,
    Ledger,
    Match,
    SubscriptionEvent,
    SubscriptionState,
    job_id_for,
)
from ..store import OutboxEvent
from .counters import next_value
from .transaction import MongoTransaction, in_transaction

if TYPE_CHECKING:
    from .store import MongoStore

T = TypeVar("T")
EVENTS_COUNTER, ATTEMPTS_COUNTER = "sub_events", "delivery_attempts"
_NEW_STATE = {
    "applied_version": 0,
    "deleted": False,
    "events_total": 0,
    "failures": 0,
    "last_error": None,
    "handshake_ok": False,
}


def _state_defaults(changed: dict) -> dict:
    """What a new sub_state document starts with, besides the fields being set."""
    return {k: v for k, v in _NEW_STATE.items() if k not in changed}


def _trigger(event: OutboxEvent) -> bytes:
    """A job's payload: the change that triggered it (as the SQLite ledger writes it)."""
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


def _event(doc: dict) -> SubscriptionEvent:
    return SubscriptionEvent(
        doc["_id"], doc["sub_id"], doc["number"], doc["seq"], doc["type"], doc["id"], doc["version"],
        doc["action"], doc["at"], doc["channel"], doc["state"], doc["attempts"], doc["recorded"],
        doc["next_at"], doc["last_error"],
    )  # fmt: skip


def _event_document(event: SubscriptionEvent) -> dict:
    e = event
    return {
        "_id": e.eid, "sub_id": e.subscription_id, "number": e.number, "seq": e.seq, "type": e.resource_type,
        "id": e.resource_id, "version": e.version, "action": e.action, "at": e.at, "channel": e.channel,
        "state": e.state, "attempts": e.attempts, "recorded": e.recorded, "next_at": e.next_at,
        "last_error": e.last_error,
    }  # fmt: skip


def _job(doc: dict) -> JobRecord:
    return JobRecord(
        doc["_id"], doc["workflow"], doc["sub_id"], doc["number"], doc["seq"], bytes(doc["payload"]),
        doc["state"], doc["attempts"], doc["created"], doc["next_at"], doc.get("worker"), doc.get("last_error"),
    )  # fmt: skip


def _attempt(doc: dict) -> DeliveryAttempt:
    return DeliveryAttempt(
        doc["sub_id"], doc["number"], doc["channel"], doc["at"], doc["actor"], doc["outcome"],
        doc["status_code"], doc["detail"], doc["duration_ms"], doc["job_id"],
    )  # fmt: skip


def _attempt_document(aid: int, a: DeliveryAttempt, now: float) -> dict:
    return {
        "_id": aid, "sub_id": a.subscription_id, "number": a.number, "channel": a.channel, "at": a.at,
        "actor": a.actor, "outcome": a.outcome, "status_code": a.status_code, "detail": a.detail,
        "duration_ms": a.duration_ms, "job_id": a.job_id, "recorded": now,
    }  # fmt: skip


def _new_job(match: Match, number: int, now: float) -> dict:
    e = match.event
    return {
        "workflow": match.workflow, "sub_id": match.subscription_id, "number": number, "seq": e.seq,
        "payload": _trigger(e), "state": QUEUED, "attempts": 0, "created": now, "next_at": now,
        "enqueued": now, "lease_until": 0.0, "finished": None, "worker": None, "last_error": None,
    }  # fmt: skip


async def _insert_attempts(tx: MongoTransaction, attempts: Sequence[DeliveryAttempt], now: float) -> None:
    if not attempts:
        return
    first = await next_value(tx.collections.counters, ATTEMPTS_COUNTER, tx.session, len(attempts))
    docs = [_attempt_document(first + n, a, now) for n, a in enumerate(attempts)]
    await tx.collections.db["delivery_attempts"].insert_many(docs, session=tx.session)


class MongoLedger(Ledger):
    def __init__(self, store: "MongoStore") -> None:
        self._store = store

    def _c(self, name: str) -> AsyncCollection:
        return self._store.collections.db[name]

    async def _write(self, work: Callable[[MongoTransaction], Awaitable[T]]) -> T:
        return await in_transaction(self._store.transaction, work)

    # ----- relay -----

    async def cursor(self, relay: str) -> int:
        doc = await self._c("relay_cursor").find_one({"_id": relay})
        if doc is not None:
            return doc["seq"]
        await self._c("relay_cursor").update_one({"_id": relay}, {"$setOnInsert": {"seq": 0}}, upsert=True)
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
        async def work(tx: MongoTransaction) -> list[SubscriptionEvent]:
            moved = await self._c("relay_cursor").update_one(
                {"_id": relay, "seq": after}, {"$set": {"seq": upto}}, session=tx.session
            )
            if moved.matched_count == 0:
                raise CursorMoved(f"relay cursor {relay} is no longer at {after}")
            for a in applied:
                await self._apply(tx, a)
            return await self._record_matches(tx, matches, now) if matches else []

        return await self._write(work)

    async def _apply(self, tx: MongoTransaction, a: AppliedSubscription) -> None:
        changed: dict = {"applied_version": a.version, "deleted": a.deleted}
        if a.requested:
            changed["handshake_ok"] = False
        await self._c("sub_state").update_one(
            {"_id": a.subscription_id},
            {"$set": changed, "$setOnInsert": _state_defaults(changed)},
            upsert=True,
            session=tx.session,
        )

    async def _record_matches(
        self, tx: MongoTransaction, matches: Sequence[Match], now: float
    ) -> list[SubscriptionEvent]:
        ids = sorted({m.subscription_id for m in matches})
        states = self._c("sub_state").find({"_id": {"$in": ids}}, {"events_total": True}, session=tx.session)
        totals = {doc["_id"]: doc["events_total"] async for doc in states}
        first_eid = await next_value(tx.collections.counters, EVENTS_COUNTER, tx.session, len(matches))
        events, jobs = [], []
        for offset, match in enumerate(matches):
            number = totals[match.subscription_id] = totals.get(match.subscription_id, 0) + 1
            e = match.event
            events.append(
                SubscriptionEvent(
                    first_eid + offset, match.subscription_id, number, e.seq, e.resource_type, e.id, e.version,
                    e.action, e.at, match.channel, match.state, recorded=now,
                )
            )  # fmt: skip
            if match.workflow is not None:
                jobs.append((match, number))
        await self._c("sub_events").insert_many([_event_document(e) for e in events], session=tx.session)
        for sub_id, total in totals.items():
            changed = {"events_total": total}
            await self._c("sub_state").update_one(
                {"_id": sub_id},
                {"$set": changed, "$setOnInsert": _state_defaults(changed)},
                upsert=True,
                session=tx.session,
            )
        for match, number in jobs:
            await self._c("jobs").update_one(
                {"_id": job_id_for(match.subscription_id, match.event.seq)},
                {"$setOnInsert": _new_job(match, number, now)},
                upsert=True,
                session=tx.session,
            )
        return events

    async def applied_subscriptions(self) -> list[tuple[str, int]]:
        cursor = self._c("sub_state").find({"deleted": False, "applied_version": {"$gt": 0}}).sort("_id", 1)
        return [(doc["_id"], doc["applied_version"]) async for doc in cursor]

    async def bodies(self, events: Sequence[OutboxEvent | SubscriptionEvent]) -> dict[int, bytes | None]:
        if not events:
            return {}
        outbox = self._c("outbox").find({"_id": {"$in": sorted({e.seq for e in events})}})
        versions = {(doc["type"], doc["id"], doc["version"]): doc["_id"] async for doc in outbox}
        if not versions:
            return {}
        wanted = [{"type": t, "id": i, "version": v} for t, i, v in versions]
        history = self._c("history").find(
            {"$or": wanted}, {"type": True, "id": True, "version": True, "body": True}
        )
        bodies: dict[int, bytes | None] = {}
        async for doc in history:
            body = doc["body"]
            bodies[versions[(doc["type"], doc["id"], doc["version"])]] = None if body is None else bytes(body)
        return bodies

    # ----- lease -----

    async def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> bool:
        try:
            await self._c("leases").update_one(
                {"_id": name, "$or": [{"holder": holder}, {"expires": {"$lt": now}}]},
                {"$set": {"holder": holder, "expires": now + ttl}},
                upsert=True,
            )
        except DuplicateKeyError:  # held by another holder and not expired: the upsert found it taken
            return False
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        await self._c("leases").delete_one({"_id": name, "holder": holder})

    # ----- delivery -----

    async def pending_events(self, subscription_id: str, limit: int = 100) -> list[SubscriptionEvent]:
        if limit <= 0:
            return []
        cursor = self._c("sub_events").find({"sub_id": subscription_id, "state": PENDING}).sort("number", 1)
        return [_event(doc) async for doc in cursor.limit(limit)]

    async def subscriptions_with_pending(self, channel: str) -> list[str]:
        return await self._c("sub_events").distinct("sub_id", {"state": PENDING, "channel": channel})

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
        async def work(tx: MongoTransaction) -> None:
            await _insert_attempts(tx, attempts, now)
            for u in updates:
                changed = {
                    "state": u.state,
                    "attempts": u.attempts,
                    "next_at": u.next_at,
                    "last_error": u.last_error,
                }
                if u.state == DELIVERED:
                    changed["recorded"] = now
                await self._c("sub_events").update_one(
                    {"sub_id": subscription_id, "number": u.number}, {"$set": changed}, session=tx.session
                )
            state: dict = {"failures": failures}
            if last_error is not None:
                state["last_error"] = last_error
            if handshake_ok is not None:
                state["handshake_ok"] = handshake_ok
            await self._c("sub_state").update_one(
                {"_id": subscription_id}, {"$set": state}, session=tx.session
            )

        await self._write(work)

    async def resend(self, subscription_id: str, now: float) -> int:
        async def work(tx: MongoTransaction) -> int:
            events, jobs = self._c("sub_events"), self._c("jobs")
            dead_events = {"sub_id": subscription_id, "state": DEAD, "channel": {"$ne": "message"}}
            resent = await events.update_many(
                dead_events,
                {"$set": {"state": PENDING, "attempts": 0, "next_at": 0.0, "recorded": now}},
                session=tx.session,
            )
            dead_jobs = jobs.find(
                {"sub_id": subscription_id, "state": DEAD}, {"number": True}, session=tx.session
            )
            numbers = [doc["number"] async for doc in dead_jobs]
            if numbers:
                await jobs.update_many(
                    {"sub_id": subscription_id, "state": DEAD},
                    {
                        "$set": {
                            "state": QUEUED,
                            "attempts": 0,
                            "next_at": now,
                            "created": now,
                            "enqueued": 0.0,
                        }
                    },
                    session=tx.session,
                )
                await events.update_many(
                    {"sub_id": subscription_id, "number": {"$in": numbers}},
                    {"$set": {"state": PENDING}},
                    session=tx.session,
                )
            await self._c("sub_state").update_one(
                {"_id": subscription_id}, {"$set": {"failures": 0}}, session=tx.session
            )
            return resent.modified_count + len(numbers)

        return await self._write(work)

    # ----- reading -----

    async def subscription_state(self, subscription_id: str) -> SubscriptionState | None:
        doc = await self._c("sub_state").find_one({"_id": subscription_id})
        if doc is None:
            return None
        events = self._c("sub_events")
        pending = await events.count_documents({"sub_id": subscription_id, "state": PENDING})
        dead = await events.count_documents({"sub_id": subscription_id, "state": DEAD})
        return SubscriptionState(
            doc["_id"], doc["applied_version"], bool(doc["deleted"]), doc["events_total"], doc["failures"],
            doc["last_error"], bool(doc.get("handshake_ok")), pending, dead,
        )  # fmt: skip

    async def recent_attempts(self, subscription_id: str, limit: int = 10) -> list[DeliveryAttempt]:
        if limit <= 0:
            return []
        cursor = self._c("delivery_attempts").find({"sub_id": subscription_id}).sort("_id", -1).limit(limit)
        return [_attempt(doc) async for doc in cursor]

    async def events(
        self, subscription_id: str, first: int, last: int, limit: int = 1000
    ) -> list[SubscriptionEvent]:
        if limit <= 0:
            return []
        query = {"sub_id": subscription_id, "number": {"$gte": first, "$lte": last}}
        cursor = self._c("sub_events").find(query).sort("number", 1).limit(limit)
        return [_event(doc) async for doc in cursor]

    async def last_event_id(self) -> int:
        doc = await self._c("sub_events").find_one({}, {"_id": True}, sort=[("_id", -1)])
        return doc["_id"] if doc is not None else 0

    async def events_after(self, eid: int, channel: str, limit: int = 500) -> list[SubscriptionEvent]:
        if limit <= 0:
            return []
        cursor = (
            self._c("sub_events").find({"channel": channel, "_id": {"$gt": eid}}).sort("_id", 1).limit(limit)
        )
        return [_event(doc) async for doc in cursor]

    # ----- jobs -----

    async def claim_job(self, job_id: str, worker: str, now: float, lease_until: float) -> JobRecord | None:
        doc = await self._c("jobs").find_one_and_update(
            {
                "_id": job_id,
                "$or": [
                    {"state": {"$in": [QUEUED, FAILED]}, "next_at": {"$lte": now}},
                    {"state": RUNNING, "lease_until": {"$lt": now}},
                ],
            },
            {
                "$set": {"state": RUNNING, "worker": worker, "lease_until": lease_until},
                "$inc": {"attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return _job(doc) if doc is not None else None

    async def finish_job(
        self, job_id: str, worker: str, outcome: JobOutcome, attempt: DeliveryAttempt, now: float
    ) -> int | None:
        async def work(tx: MongoTransaction) -> int | None:
            finished = now if outcome.state in (DONE, DEAD) else None
            job = await self._c("jobs").find_one_and_update(
                {"_id": job_id, "state": RUNNING, "worker": worker},
                {
                    "$set": {
                        "state": outcome.state,
                        "next_at": outcome.next_at,
                        "last_error": outcome.error,
                        "lease_until": 0.0,
                        "enqueued": 0.0,
                        "finished": finished,
                    }
                },  # fmt: skip
                return_document=ReturnDocument.AFTER,
                session=tx.session,
            )
            if job is None:
                return None
            await _insert_attempts(tx, [attempt], now)
            event_state = {DONE: DELIVERED, DEAD: DEAD}.get(outcome.state, PENDING)
            await self._c("sub_events").update_one(
                {"sub_id": job["sub_id"], "number": job["number"]},
                {
                    "$set": {
                        "state": event_state,
                        "attempts": job["attempts"],
                        "next_at": outcome.next_at,
                        "last_error": outcome.error,
                    }
                },  # fmt: skip
                session=tx.session,
            )
            return await self._count_failure(tx, job["sub_id"], outcome)

        return await self._write(work)

    async def _count_failure(self, tx: MongoTransaction, sub_id: str, outcome: JobOutcome) -> int:
        """A dead job is one more failure of its Subscription, a done one clears them; returns the count before."""
        states = self._c("sub_state")
        before = await states.find_one({"_id": sub_id}, {"failures": True}, session=tx.session)
        failures = before["failures"] if before else 0
        if outcome.state == DEAD:
            await states.update_one(
                {"_id": sub_id},
                {"$inc": {"failures": 1}, "$set": {"last_error": outcome.error}},
                session=tx.session,
            )
        elif outcome.state == DONE and failures:
            await states.update_one({"_id": sub_id}, {"$set": {"failures": 0}}, session=tx.session)
        return failures

    async def job(self, job_id: str) -> JobRecord | None:
        doc = await self._c("jobs").find_one({"_id": job_id})
        return _job(doc) if doc is not None else None

    async def due_jobs(self, now: float, enqueued_before: float, limit: int = 500) -> list[str]:
        if limit <= 0:
            return []
        query = {
            "state": {"$in": [QUEUED, FAILED]},
            "next_at": {"$lte": now},
            "enqueued": {"$lt": enqueued_before},
        }
        cursor = self._c("jobs").find(query, {"_id": True}).sort("next_at", 1).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def stale_jobs(self, now: float, limit: int = 500) -> list[str]:
        if limit <= 0:
            return []
        query = {"state": RUNNING, "next_at": {"$lte": now}, "lease_until": {"$lt": now}}
        cursor = self._c("jobs").find(query, {"_id": True}).sort("next_at", 1).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def mark_enqueued(self, job_ids: Sequence[str], now: float) -> None:
        if job_ids:
            await self._c("jobs").update_many({"_id": {"$in": list(job_ids)}}, {"$set": {"enqueued": now}})

    # ----- housekeeping -----

    async def prune(self, before: float) -> int:
        """Each delete is atomic per document; a prune cut short leaves only less pruned."""
        removed = 0
        for name, query in (
            ("sub_events", {"state": DELIVERED, "recorded": {"$lt": before}}),
            ("delivery_attempts", {"recorded": {"$lt": before}}),
            ("jobs", {"state": {"$in": [DONE, DEAD]}, "finished": {"$lt": before}}),
        ):
            removed += (await self._c(name).delete_many(query)).deleted_count
        return removed
