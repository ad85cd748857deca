"""An in-process stand-in for pymongo's AsyncMongoClient, over mongomock, for tests without a server.

It serves the calls the MongoDB store makes, with the transaction semantics the store relies on:
a transaction reads and writes a snapshot taken when it starts; a write to a document that another
open transaction wrote, or that was committed after the snapshot, fails at once with MongoDB's
WriteConflict (code 112, label TransientTransactionError); commit publishes the written documents and
abort drops them. Writes outside a transaction go straight to the shared data. Query and update
semantics are mongomock's.
"""

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import mongomock
from pymongo import ReturnDocument
from pymongo.errors import InvalidOperation, OperationFailure

Key = tuple[str, object]


async def _round_trip() -> None:
    """Each call gives other tasks their turn, as a call to a server does, so transactions interleave."""
    await asyncio.sleep(0)


def write_conflict() -> OperationFailure:
    return OperationFailure(
        "WriteConflict error: this operation conflicted with another operation",
        code=112,
        details={"errorLabels": ["TransientTransactionError"], "code": 112, "codeName": "WriteConflict"},
    )


@dataclass
class _Shared:
    """The committed data, the indexes asked for, and who holds which document."""

    indexes: dict[str, list] = field(default_factory=dict)
    committed_at: dict[tuple[str, str, object], int] = field(default_factory=dict)
    holders: dict[tuple[str, str, object], "FakeSession"] = field(default_factory=dict)
    clock: itertools.count = field(default_factory=lambda: itertools.count(1))
    now: int = 0

    def tick(self) -> int:
        self.now = next(self.clock)
        return self.now


class FakeCursor:
    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def sort(self, key, direction: int | None = None) -> "FakeCursor":
        self._cursor = self._cursor.sort(key, direction) if direction is not None else self._cursor.sort(key)
        return self

    def limit(self, n: int) -> "FakeCursor":
        self._cursor = self._cursor.limit(n)
        return self

    def skip(self, n: int) -> "FakeCursor":
        self._cursor = self._cursor.skip(n)
        return self

    async def to_list(self, length: int | None = None) -> list[dict]:
        await _round_trip()
        docs = list(self._cursor)
        return docs if length is None else docs[:length]

    def __aiter__(self) -> "FakeCursor":
        self._iter: Iterator[dict] = iter(self._cursor)
        return self

    async def __anext__(self) -> dict:
        try:
            return next(self._iter)
        except StopIteration:
            raise StopAsyncIteration from None


class FakeCollection:
    def __init__(self, client: "FakeMongoClient", database: str, name: str) -> None:
        self._client = client
        self._database = database
        self.name = name

    # ----- where a call reads and writes -----

    def _target(self, session: "FakeSession | None") -> mongomock.Collection:
        if session is not None and session.in_transaction:
            return session.snapshot(self._database)[self.name]
        return self._client.shared_db(self._database)[self.name]

    def _claim(self, session: "FakeSession | None", ids: list) -> None:
        shared = self._client.shared
        for doc_id in ids:
            key = (self._database, self.name, doc_id)
            if session is None or not session.in_transaction:
                shared.committed_at[key] = shared.tick()
                continue
            holder = shared.holders.get(key)
            if (holder is not None and holder is not session) or shared.committed_at.get(
                key, 0
            ) > session.start:
                raise write_conflict()
            shared.holders[key] = session
            session.written.add(key)

    def _ids(self, target: mongomock.Collection, flt: dict, many: bool) -> list:
        docs = target.find(flt, {"_id": True})
        return [d["_id"] for d in (docs if many else docs.limit(1))]

    # ----- reads -----

    async def find_one(self, flt: dict | None = None, projection=None, session=None, **kwargs) -> dict | None:
        await _round_trip()
        return self._target(session).find_one(flt or {}, projection, **kwargs)

    def find(self, flt: dict | None = None, projection=None, session=None, **kwargs) -> FakeCursor:
        return FakeCursor(self._target(session).find(flt or {}, projection, **kwargs))

    async def aggregate(self, pipeline: list[dict], session=None, **kwargs) -> FakeCursor:
        await _round_trip()
        return FakeCursor(self._target(session).aggregate(pipeline))

    async def count_documents(self, flt: dict, session=None, **kwargs) -> int:
        await _round_trip()
        return self._target(session).count_documents(flt, **kwargs)

    async def estimated_document_count(self, **kwargs) -> int:
        await _round_trip()
        return self._target(None).estimated_document_count()

    async def distinct(self, key: str, flt: dict | None = None, session=None) -> list:
        await _round_trip()
        return self._target(session).distinct(key, flt or {})

    # ----- writes -----

    async def insert_one(self, doc: dict, session=None, **kwargs):
        await _round_trip()
        target = self._target(session)
        self._claim(session, [doc["_id"]] if "_id" in doc else [])
        result = target.insert_one(doc)
        if "_id" not in doc:
            self._claim(session, [result.inserted_id])
        return result

    async def insert_many(self, docs: list[dict], session=None, **kwargs):
        await _round_trip()
        self._claim(session, [d["_id"] for d in docs if "_id" in d])
        result = self._target(session).insert_many(docs, **kwargs)
        return result

    async def update_one(self, flt: dict, update: dict, upsert: bool = False, session=None, **kwargs):
        await _round_trip()
        target = self._target(session)
        self._claim(session, self._ids(target, flt, many=False))
        result = target.update_one(flt, update, upsert=upsert, **kwargs)
        if result.upserted_id is not None:
            self._claim(session, [result.upserted_id])
        return result

    async def update_many(self, flt: dict, update: dict, upsert: bool = False, session=None, **kwargs):
        await _round_trip()
        target = self._target(session)
        self._claim(session, self._ids(target, flt, many=True))
        result = target.update_many(flt, update, upsert=upsert, **kwargs)
        if result.upserted_id is not None:
            self._claim(session, [result.upserted_id])
        return result

    async def replace_one(self, flt: dict, doc: dict, upsert: bool = False, session=None, **kwargs):
        await _round_trip()
        target = self._target(session)
        self._claim(session, self._ids(target, flt, many=False))
        result = target.replace_one(flt, doc, upsert=upsert, **kwargs)
        if result.upserted_id is not None:
            self._claim(session, [result.upserted_id])
        return result

    async def find_one_and_update(
        self, flt: dict, update: dict, projection=None, upsert: bool = False, session=None, **kwargs
    ) -> dict | None:
        await _round_trip()
        target = self._target(session)
        ids = self._ids(target, flt, many=False)
        self._claim(session, ids)
        doc = target.find_one_and_update(flt, update, projection, upsert=upsert, **kwargs)
        if not ids and doc is not None:
            self._claim(session, [doc["_id"]])
        elif not ids and upsert:
            inserted = target.find_one(flt)
            self._claim(session, [inserted["_id"]] if inserted else [])
        return doc

    async def find_one_and_delete(self, flt: dict, session=None, **kwargs) -> dict | None:
        await _round_trip()
        target = self._target(session)
        self._claim(session, self._ids(target, flt, many=False))
        return target.find_one_and_delete(flt, **kwargs)

    async def delete_one(self, flt: dict, session=None, **kwargs):
        await _round_trip()
        target = self._target(session)
        self._claim(session, self._ids(target, flt, many=False))
        return target.delete_one(flt)

    async def delete_many(self, flt: dict, session=None, **kwargs):
        await _round_trip()
        target = self._target(session)
        self._claim(session, self._ids(target, flt, many=True))
        return target.delete_many(flt)

    # ----- indexes -----

    async def create_indexes(self, models: list, **kwargs) -> list[str]:
        await _round_trip()
        known = self._client.shared.indexes.setdefault(f"{self._database}.{self.name}", [])
        names = {m.document["name"] for m in known}
        known.extend(m for m in models if m.document["name"] not in names)
        return self._target(None).create_indexes(models)

    async def index_information(self) -> dict:
        await _round_trip()
        return self._target(None).index_information()

    async def watch(self, *args, **kwargs):
        await _round_trip()
        raise OperationFailure("The fake MongoDB client has no change streams", code=40573)


class FakeDatabase:
    def __init__(self, client: "FakeMongoClient", name: str) -> None:
        self._client = client
        self.name = name

    def __getitem__(self, name: str) -> FakeCollection:
        return FakeCollection(self._client, self.name, name)

    def __getattr__(self, name: str) -> FakeCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    async def list_collection_names(self, **kwargs) -> list[str]:
        await _round_trip()
        return self._client.shared_db(self.name).list_collection_names()

    async def create_collection(self, name: str, **kwargs) -> FakeCollection:
        await _round_trip()
        self._client.shared_db(self.name).create_collection(name)
        return self[name]

    async def command(self, name: str, *args, **kwargs) -> dict:
        await _round_trip()
        if name == "hello":
            return dict(self._client.hello)
        return {"ok": 1.0}


class FakeSession:
    def __init__(self, client: "FakeMongoClient") -> None:
        self._client = client
        self.in_transaction = False
        self.start = 0
        self.written: set = set()
        self._snapshots: dict[str, mongomock.Database] = {}

    async def __aenter__(self) -> "FakeSession":
        return self

    async def __aexit__(self, *exc) -> None:
        if self.in_transaction:
            await self.abort_transaction()

    def snapshot(self, database: str) -> mongomock.Database:
        if database not in self._snapshots:
            self._snapshots[database] = self._client.copy_database(database)
        return self._snapshots[database]

    async def start_transaction(self, **kwargs) -> SimpleNamespace:
        await _round_trip()
        if self.in_transaction:
            raise InvalidOperation("Transaction already in progress")
        self.in_transaction = True
        self.start = self._client.shared.now
        self.written = set()
        self._snapshots = {}
        return SimpleNamespace()

    async def commit_transaction(self) -> None:
        await _round_trip()
        shared = self._client.shared
        now = shared.tick()
        for database, collection, doc_id in self.written:
            doc = self._snapshots[database][collection].find_one({"_id": doc_id})
            published = self._client.shared_db(database)[collection]
            if doc is None:
                published.delete_one({"_id": doc_id})
            else:
                published.replace_one({"_id": doc_id}, doc, upsert=True)
            shared.committed_at[(database, collection, doc_id)] = now
        self._end()
        self._client.commits += 1

    async def abort_transaction(self) -> None:
        await _round_trip()
        self._end()
        self._client.aborts += 1

    def _end(self) -> None:
        holders = self._client.shared.holders
        for key in self.written:
            if holders.get(key) is self:
                del holders[key]
        self.in_transaction = False
        self.written = set()
        self._snapshots = {}


class FakeMongoClient:
    """`replica_set=False` answers `hello` as a standalone server does."""

    def __init__(self, replica_set: bool = True) -> None:
        self._mongomock = mongomock.MongoClient()
        self.shared = _Shared()
        self.hello = {"isWritablePrimary": True, "ok": 1.0}
        if replica_set:
            self.hello["setName"] = "rs0"
        self.admin = FakeDatabase(self, "admin")
        self.commits = 0
        self.aborts = 0

    def __getitem__(self, name: str) -> FakeDatabase:
        return FakeDatabase(self, name)

    def shared_db(self, name: str) -> mongomock.Database:
        return self._mongomock[name]

    def copy_database(self, name: str) -> mongomock.Database:
        """A private copy of the committed data of `name`, with the same indexes."""
        copy = mongomock.MongoClient()[name]
        source = self.shared_db(name)
        for collection in source.list_collection_names():
            models = self.shared.indexes.get(f"{name}.{collection}", [])
            if models:
                copy[collection].create_indexes(models)
            docs = list(source[collection].find())
            if docs:
                copy[collection].insert_many(docs)
            elif collection not in copy.list_collection_names():
                copy.create_collection(collection)
        return copy

    def start_session(self, **kwargs) -> FakeSession:
        return FakeSession(self)

    async def close(self) -> None:
        await _round_trip()
        self._mongomock.close()


__all__ = ["FakeMongoClient", "ReturnDocument", "write_conflict"]
