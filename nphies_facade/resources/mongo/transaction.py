"""Store transactions on MongoDB: one client session running one multi-document transaction.

Reads in the transaction see its own writes and a snapshot of everything else. A write conflict with a
concurrent transaction surfaces as the port's TransientConflict (from a statement or from the commit);
whoever opened the transaction runs its unit of work again. A commit whose outcome is unknown (a lost
connection) is retried as MongoDB documents: committing twice is harmless.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from ..search.plan import SearchPlan
from ..store import (
    IndexValues,
    OutboxEvent,
    SearchPage,
    StoredVersion,
    StoreTransaction,
    TransientConflict,
    VersionConflict,
)
from .collections import Collections
from .conditional import FIND_IDS_LIMIT, conditional_filter
from .conditions import lock_condition
from .conflicts import UNKNOWN_COMMIT_LABEL, is_transient, transient_as_conflict
from .counters import HISTORY, OUTBOX, next_value
from .documents import (
    VERSION_PROJECTION,
    action_of,
    current_fields,
    current_version,
    history_document,
    index_entries,
    new_resource,
    outbox_document,
    resource_key,
)
from .search_exec import FOUND_PROJECTION, MongoSearch, found_version

COMMIT_ATTEMPTS = 3
TRANSIENT_ATTEMPTS = 20
MAX_RETRY_DELAY = 0.2

T = TypeVar("T")


class MongoTransaction(StoreTransaction):
    def __init__(self, collections: Collections, session: AsyncClientSession) -> None:
        self.collections = collections
        self.session = session

    async def current(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        with transient_as_conflict():
            doc = await self.collections.resources.find_one(
                {"_id": resource_key(resource_type, resource_id)}, VERSION_PROJECTION, session=self.session
            )
        return current_version(doc) if doc is not None else None

    async def write(self, version: StoredVersion, index: IndexValues, trace_id: str) -> OutboxEvent:
        c = self.collections
        with transient_as_conflict():
            position = await next_value(c.counters, HISTORY, self.session)
            await self._store_current(version, index, position)
            await c.history.insert_one(history_document(version, position), session=self.session)
            seq = await next_value(c.counters, OUTBOX, self.session)
            event = OutboxEvent(
                seq,
                version.resource_type,
                version.id,
                version.version,
                action_of(version),
                version.last_updated,
                trace_id,
            )
            await c.outbox.insert_one(outbox_document(event), session=self.session)
        return event

    async def _store_current(self, version: StoredVersion, index: IndexValues, position: int) -> None:
        """Inserts version 1 or replaces version n-1; VersionConflict when the resource is elsewhere."""
        key = resource_key(version.resource_type, version.id)
        if version.version == 1:
            fields = new_resource(version, index, position)
            del fields["_id"]
            result = await self.collections.resources.update_one(
                {"_id": key}, {"$setOnInsert": fields}, upsert=True, session=self.session
            )
            stored = result.upserted_id is not None
        else:
            result = await self.collections.resources.update_one(
                {"_id": key, "version": version.version - 1},
                {"$set": current_fields(version, index, position)},
                session=self.session,
            )
            stored = result.matched_count == 1
        if not stored:
            raise VersionConflict(f"{key} is no longer at version {version.version - 1}")

    async def live(self, resource_type: str, resource_id: str) -> bool:
        """Marks the live target written (a counter), so a transaction deleting it meanwhile collides
        with this one: a snapshot read alone would let both commit."""
        with transient_as_conflict():
            result = await self.collections.resources.update_one(
                {"_id": resource_key(resource_type, resource_id), "deleted": False},
                {"$inc": {"referenced": 1}},
                session=self.session,
            )
        return result.matched_count == 1

    async def referrers(
        self, targets: list[tuple[str, str]], params: list[tuple[str, str]], limit: int
    ) -> list[tuple[str, str]]:
        types = sorted({kind for kind, _ in params})
        codes = sorted({code for _, code in params})
        found = []
        for resource_type, resource_id in targets:
            target = resource_key(resource_type, resource_id)
            match = {"p": {"$in": codes}, "s1": resource_id, "s2": resource_type, "s3": target}
            cursor = self.collections.resources.find(
                {"type": {"$in": types}, "deleted": False, "idx": {"$elemMatch": match}},
                {"type": True, "id": True},
                session=self.session,
            ).limit(limit)
            with transient_as_conflict():
                found += [(target, resource_key(doc["type"], doc["id"])) async for doc in cursor]
        return found

    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]:
        with transient_as_conflict():
            await lock_condition(self.collections.conditions, resource_type, criteria, self.session)
            return await find_ids(self.collections, resource_type, criteria, self.session)

    async def match_ids(
        self, resource_type: str, criteria: list[tuple[str, str]], plan: SearchPlan, limit: int
    ) -> list[str]:
        with transient_as_conflict():
            await lock_condition(self.collections.conditions, resource_type, criteria, self.session)
            return await MongoSearch(self.collections, self.session).ids(plan, limit)

    async def search(self, plan: SearchPlan) -> SearchPage:
        with transient_as_conflict():
            return await MongoSearch(self.collections, self.session).run(plan)

    async def latest_position(self, resource_type: str) -> int:
        with transient_as_conflict():
            return await latest_position(self.collections, resource_type, self.session)

    async def scan(self, resource_type: str, after: int, limit: int) -> list[StoredVersion]:
        cursor = self.collections.resources.find(
            {"type": resource_type, "deleted": False, "rid": {"$gt": after}},
            FOUND_PROJECTION,
            session=self.session,
        ).sort("rid", 1)
        with transient_as_conflict():
            return [found_version(doc) async for doc in cursor.limit(limit)] if limit > 0 else []

    async def replace_index(self, entries: list[tuple[StoredVersion, IndexValues]]) -> None:
        """New index entries for current versions read with scan (position = rid); nothing else changes."""
        with transient_as_conflict():
            for version, index in entries:
                await self.collections.resources.update_one(
                    {"_id": resource_key(version.resource_type, version.id), "rid": version.position},
                    {"$set": {"idx": index_entries(index)}},
                    session=self.session,
                )


async def latest_position(
    collections: Collections, resource_type: str, session: AsyncClientSession | None = None
) -> int:
    doc = await collections.history.find_one(
        {"type": resource_type}, {"_id": True}, sort=[("_id", -1)], session=session
    )
    return doc["_id"] if doc is not None else 0


async def find_ids(
    collections: Collections,
    resource_type: str,
    criteria: list[tuple[str, str]],
    session: AsyncClientSession | None = None,
) -> list[str]:
    cursor = (
        collections.resources.find(conditional_filter(resource_type, criteria), {"id": True}, session=session)
        .sort("rid", 1)
        .limit(FIND_IDS_LIMIT)
    )
    return [doc["id"] async for doc in cursor]


async def _abort(session: AsyncClientSession) -> None:
    if session.in_transaction:
        await session.abort_transaction()  # the driver ignores the server's errors on abort


async def _commit(session: AsyncClientSession) -> None:
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as exc:
            if exc.has_error_label(UNKNOWN_COMMIT_LABEL) and attempt < COMMIT_ATTEMPTS:
                continue
            if is_transient(exc):
                raise TransientConflict(f"MongoDB transaction conflict at commit: {exc}") from exc
            raise


@asynccontextmanager
async def transaction(client: AsyncMongoClient, collections: Collections) -> AsyncIterator[MongoTransaction]:
    async with client.start_session() as session:
        await session.start_transaction(
            read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
        )
        try:
            yield MongoTransaction(collections, session)
        except BaseException as exc:
            await _abort(session)
            if is_transient(exc):
                raise TransientConflict(f"MongoDB transaction conflict: {exc}") from exc
            raise
        await _commit(session)


async def in_transaction(
    open_transaction: Callable[[], AbstractAsyncContextManager[StoreTransaction]],
    work: Callable[[MongoTransaction], Awaitable[T]],
    attempts: int = TRANSIENT_ATTEMPTS,
) -> T:
    """Runs `work` in a transaction, and again in a new one when a concurrent transaction conflicted."""
    for attempt in range(1, attempts + 1):
        try:
            async with open_transaction() as tx:
                return await work(tx)
        except TransientConflict:
            if attempt == attempts:
                raise
            await asyncio.sleep(retry_delay(attempt))
    raise AssertionError("unreachable")


def retry_delay(attempt: int) -> float:
    """Jittered exponential back-off, capped, so writers of several processes stop colliding."""
    return random.uniform(0, min(MAX_RETRY_DELAY, 0.002 * 2**attempt))
