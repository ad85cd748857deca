"""The MongoDB store: the store port on a replica set, written in multi-document transactions."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from ..search.plan import SearchPlan
from ..store import HistoryQuery, OutboxEvent, SearchPage, Store, StoredVersion, StoreTransaction
from .collections import Collections
from .connection import connect, require_replica_set
from .documents import VERSION_PROJECTION, history_version, outbox_event, read_version, resource_key
from .indexes import ensure_indexes
from .ledger import MongoLedger
from .outbox_watch import follow_outbox
from .search_exec import MongoSearch
from .security import MongoSecurity
from .transaction import find_ids, latest_position, transaction

DEFAULT_DATABASE = "nphies_facade"


def history_filter(query: HistoryQuery) -> dict:
    clauses: dict = {}
    if query.resource_type:
        clauses["type"] = query.resource_type
        if query.id:
            clauses["id"] = query.id
    if query.since:
        clauses["last_updated"] = {"$gte": query.since}
    if query.before_position is not None:
        clauses["_id"] = {"$lt": query.before_position}
    return clauses


class MongoStore(Store):
    """`client` is for tests that bring their own (it is then theirs to close)."""

    def __init__(
        self,
        url: str | None = None,
        database: str = DEFAULT_DATABASE,
        *,
        client: AsyncMongoClient | None = None,
    ) -> None:
        if url is None and client is None:
            raise ValueError("MongoStore needs a MongoDB URL or a client")
        self.url = url
        self.database = database
        self._given_client = client
        self._client: AsyncMongoClient | None = None
        self._collections: Collections | None = None
        self._write_lock = asyncio.Lock()
        self._ledger: MongoLedger | None = None
        self._security: MongoSecurity | None = None

    @property
    def client(self) -> AsyncMongoClient:
        if self._client is None:
            raise RuntimeError("the MongoDB store is not open")
        return self._client

    @property
    def collections(self) -> Collections:
        if self._collections is None:
            raise RuntimeError("the MongoDB store is not open")
        return self._collections

    async def open(self) -> None:
        client = self._given_client or connect(self.url)
        try:
            await require_replica_set(client)
            db = client[self.database]
            await ensure_indexes(db)
        except BaseException:
            if self._given_client is None:
                await client.close()
            raise
        self._client = client
        self._collections = Collections.of(db)

    async def close(self) -> None:
        if self._client is not None and self._given_client is None:
            await self._client.close()
        self._client, self._collections = None, None

    async def ping(self) -> bool:
        try:
            await self.collections.db.command("ping")
        except (PyMongoError, RuntimeError):
            return False
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        # Every write transaction takes the same counter documents, so two of one process would only
        # conflict: they queue here (as SQLite's do on its write lock); other processes' are retried.
        async with self._write_lock, transaction(self.client, self.collections) as tx:
            yield tx

    async def read(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        doc = await self.collections.resources.find_one(
            {"_id": resource_key(resource_type, resource_id)}, VERSION_PROJECTION
        )
        return read_version(doc) if doc is not None else None

    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredVersion | None:
        doc = await self.collections.history.find_one(
            {"type": resource_type, "id": resource_id, "version": version}
        )
        return history_version(doc) if doc is not None else None

    async def history(self, query: HistoryQuery) -> list[StoredVersion]:
        if query.count <= 0:
            return []
        cursor = self.collections.history.find(history_filter(query)).sort("_id", -1).limit(query.count)
        return [history_version(doc) async for doc in cursor]

    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]:
        return await find_ids(self.collections, resource_type, criteria)

    async def search(self, plan: SearchPlan) -> SearchPage:
        return await MongoSearch(self.collections).run(plan)

    async def latest_position(self, resource_type: str) -> int:
        return await latest_position(self.collections, resource_type)

    async def outbox_after(self, seq: int, limit: int = 100) -> list[OutboxEvent]:
        if limit <= 0:
            return []
        cursor = self.collections.outbox.find({"_id": {"$gt": seq}}).sort("_id", 1).limit(limit)
        return [outbox_event(doc) async for doc in cursor]

    async def follow_outbox(self, wake: Callable[[], None], stop: asyncio.Event) -> None:
        """Calls `wake` when an outbox event is written, from any process, until `stop` (outbox_watch.py)."""
        await follow_outbox(self.collections.outbox, wake, stop)

    def ledger(self) -> MongoLedger:
        if self._ledger is None:
            self._ledger = MongoLedger(self)
        return self._ledger

    def security(self) -> MongoSecurity:
        if self._security is None:
            self._security = MongoSecurity(self)
        return self._security
