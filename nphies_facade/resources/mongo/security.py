"""The security port in MongoDB: audit chain, registered clients, used jti, erasure.

audit     {_id: seq, recorded, action, subtype, outcome, actor, client, role, entity, patient_hash,
           provider_hash, digest, trace_id, detail, prev_hash, hash}; the head is read and the next
           record inserted in one transaction, so two concurrent appends of the same seq conflict
           and one runs again
clients   {_id: client id, body: JSON bytes}
used_jti  {_id: key, expires}
auth_records  {_id: "kind:key", kind, body: JSON bytes, used, purge_at}: SMART App Launch records
"""

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

import orjson
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ..security_store import AuditBuilder, AuditHead, AuditQuery, AuditRow, SecurityStore
from ..store import StoredVersion, StoreTransaction, TransientConflict
from .conflicts import transient_as_conflict
from .documents import history_version, read_version, resource_key
from .transaction import MongoTransaction, in_transaction

if TYPE_CHECKING:
    from .store import MongoStore


def _session(tx: StoreTransaction):
    if not isinstance(tx, MongoTransaction):
        raise TypeError(f"the MongoDB store was given a {type(tx).__name__}")
    return tx.session


def _audit_document(row: AuditRow) -> dict:
    fields = asdict(row)
    return {"_id": fields.pop("seq"), **fields}


def _audit_row(doc: dict) -> AuditRow:
    fields = dict(doc)
    return AuditRow(seq=fields.pop("_id"), **fields)


CLIENT_STATE_SECONDS = 1.0


class MongoSecurity(SecurityStore):
    def __init__(self, store: "MongoStore") -> None:
        self._store = store
        self._client_states: dict[str, tuple[float, dict | None]] = {}

    def _c(self, name: str) -> AsyncCollection:
        return self._store.collections.db[name]

    # ----- audit -----

    async def append_audit(self, tx: StoreTransaction, build: AuditBuilder) -> AuditRow:
        session = _session(tx)
        try:
            with transient_as_conflict():
                last = await self._c("audit").find_one(
                    {}, {"hash": True}, sort=[("_id", -1)], session=session
                )
                row = build(AuditHead(last["_id"], last["hash"]) if last is not None else None)
                await self._c("audit").insert_one(_audit_document(row), session=session)
        except DuplicateKeyError as exc:
            raise TransientConflict("an audit record was appended concurrently") from exc
        return row

    async def append_audit_alone(self, builds: Sequence[AuditBuilder]) -> list[AuditRow]:
        async def append(tx: MongoTransaction) -> list[AuditRow]:
            return [await self.append_audit(tx, build) for build in builds]

        return await in_transaction(self._store.transaction, append)

    async def audit_rows(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRow]:
        if limit <= 0:
            return []
        cursor = self._c("audit").find({"_id": {"$gt": after_seq}}).sort("_id", 1).limit(limit)
        return [_audit_row(doc) async for doc in cursor]

    async def audit_query(self, query: AuditQuery) -> list[AuditRow]:
        if query.count <= 0:
            return []
        flt: dict = {
            field: value
            for field, value in (
                ("patient_hash", query.patient_hash),
                ("entity", query.entity),
                ("action", query.action),
                ("subtype", query.subtype),
            )
            if value is not None
        }
        if query.since is not None:
            flt["recorded"] = {"$gte": query.since}
        if query.before_seq is not None:
            flt["_id"] = {"$lt": query.before_seq}
        cursor = self._c("audit").find(flt).sort("_id", -1).limit(query.count)
        return [_audit_row(doc) async for doc in cursor]

    async def audit_row(self, seq: int) -> AuditRow | None:
        doc = await self._c("audit").find_one({"_id": seq})
        return _audit_row(doc) if doc is not None else None

    # ----- authorization server -----

    async def put_client(self, client_id: str, record: dict) -> None:
        self._client_states.pop(client_id, None)
        await self._c("clients").replace_one({"_id": client_id}, {"body": orjson.dumps(record)}, upsert=True)

    async def get_client(self, client_id: str) -> dict | None:
        doc = await self._c("clients").find_one({"_id": client_id})
        return orjson.loads(doc["body"]) if doc is not None else None

    async def list_clients(self) -> list[dict]:
        return [orjson.loads(doc["body"]) async for doc in self._c("clients").find().sort("_id", 1)]

    async def delete_client(self, client_id: str) -> bool:
        self._client_states.pop(client_id, None)
        result = await self._c("clients").delete_one({"_id": client_id})
        return result.deleted_count > 0

    async def client_state(self, client_id: str) -> dict | None:
        """Read at most once a second per client: the round trip would otherwise be on every request, so
        a client disabled in MongoDB stops within CLIENT_STATE_SECONDS."""
        now = time.monotonic()
        cached = self._client_states.get(client_id)
        if cached is not None and now - cached[0] < CLIENT_STATE_SECONDS:
            return cached[1]
        record = await self.get_client(client_id)
        if len(self._client_states) >= 10_000:
            self._client_states.clear()
        self._client_states[client_id] = (now, record)
        return record

    async def claim_jti(self, key: str, expires_at: float, now: float) -> bool:
        used = self._c("used_jti")
        await used.delete_many({"expires": {"$lt": now}})
        try:
            await used.insert_one({"_id": key, "expires": expires_at})
        except DuplicateKeyError:
            return False
        return True

    # ----- SMART App Launch records -----

    async def put_record(
        self,
        kind: str,
        key: str,
        body: dict,
        purge_at: float | None = None,
        *,
        now: float | None = None,
        create: bool = False,
    ) -> bool:
        records = self._c("auth_records")
        if now is not None:
            await records.delete_many({"purge_at": {"$lt": now}})
        doc = {"kind": kind, "body": orjson.dumps(body), "used": 0, "purge_at": purge_at}
        if not create:
            await records.replace_one({"_id": f"{kind}:{key}"}, doc, upsert=True)
            return True
        try:
            await records.insert_one({"_id": f"{kind}:{key}", **doc})
        except DuplicateKeyError:
            return False
        return True

    async def get_record(self, kind: str, key: str) -> dict | None:
        doc = await self._c("auth_records").find_one({"_id": f"{kind}:{key}"})
        return orjson.loads(doc["body"]) if doc is not None else None

    async def list_records(self, kind: str) -> list[dict]:
        cursor = self._c("auth_records").find({"kind": kind}).sort("_id", 1)
        return [orjson.loads(doc["body"]) async for doc in cursor]

    async def delete_record(self, kind: str, key: str) -> bool:
        result = await self._c("auth_records").delete_one({"_id": f"{kind}:{key}"})
        return result.deleted_count == 1

    async def take_record(self, kind: str, key: str) -> tuple[dict | None, bool]:
        doc = await self._c("auth_records").find_one_and_update(
            {"_id": f"{kind}:{key}"}, {"$inc": {"used": 1}}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            return None, False
        return orjson.loads(doc["body"]), doc["used"] == 1

    # ----- retention -----

    async def expired(
        self, resource_type: str, before: str, after: tuple[str, str] | None = None, limit: int = 200
    ) -> list[StoredVersion]:
        if limit <= 0:
            return []
        flt: dict = {"type": resource_type, "last_updated": {"$lt": before}}
        if after is not None:
            updated, resource_id = after
            flt["$or"] = [
                {"last_updated": {"$gt": updated}},
                {"last_updated": updated, "id": {"$gt": resource_id}},
            ]
        cursor = self._c("resources").find(flt, {"idx": False}).sort([("last_updated", 1), ("id", 1)])
        return [read_version(doc) async for doc in cursor.limit(limit)]

    async def versions(
        self, tx: StoreTransaction, resource_type: str, resource_id: str
    ) -> list[StoredVersion]:
        cursor = self._c("history").find({"type": resource_type, "id": resource_id}, session=_session(tx))
        with transient_as_conflict():
            return [history_version(doc) async for doc in cursor.sort("version", 1)]

    async def purge(self, tx: StoreTransaction, resource_type: str, resource_id: str) -> int:
        session = _session(tx)
        with transient_as_conflict():
            removed = await self._c("resources").delete_one(
                {"_id": resource_key(resource_type, resource_id)}, session=session
            )
            if removed.deleted_count == 0:
                return 0
            versions = await self._c("history").delete_many(
                {"type": resource_type, "id": resource_id}, session=session
            )
        return versions.deleted_count

    async def replace_bodies(
        self, tx: StoreTransaction, resource_type: str, resource_id: str, bodies: Sequence[tuple[int, bytes]]
    ) -> None:
        session = _session(tx)
        key = resource_key(resource_type, resource_id)
        with transient_as_conflict():
            current = await self._c("resources").find_one(
                {"_id": key}, {"version": True, "deleted": True}, session=session
            )
            if current is None:
                return
            for version, body in bodies:
                await self._c("history").update_one(
                    {"type": resource_type, "id": resource_id, "version": version, "body": {"$ne": None}},
                    {"$set": {"body": body}},
                    session=session,
                )
                if version == current["version"] and not current["deleted"]:
                    await self._c("resources").update_one(
                        {"_id": key}, {"$set": {"body": body}}, session=session
                    )
