"""The security port in the embedded store's SQLite file: audit chain, clients, used jti, erasure."""

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING

import aiosqlite
import orjson

from ..security_store import AuditBuilder, AuditHead, AuditQuery, AuditRow, SecurityStore
from ..store import StoredVersion, StoreTransaction
from .connection import run_on_connection
from .deferred import DeferredTransaction
from .group_commit import Unit

if TYPE_CHECKING:
    from .store import SqliteStore

_AUDIT_COLUMNS = (
    "seq, recorded, action, subtype, outcome, actor, client, role, entity, patient_hash, provider_hash, "
    "digest, trace_id, detail, prev_hash, hash"
)
_INSERT_AUDIT = f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 16)})"
# The row's values in column order (dataclasses.astuple would deep-copy each of them).
_audit_values = attrgetter(*(f.name for f in fields(AuditRow)))


async def _conn(tx: StoreTransaction) -> aiosqlite.Connection:
    return await tx.connection()  # type: ignore[attr-defined]


def _append(db: sqlite3.Connection, build: AuditBuilder) -> AuditRow:
    """On the connection's thread: reads the chain's head and inserts the row built on it."""
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    row = build(AuditHead(last[0], last[1]) if last else None)
    db.execute(_INSERT_AUDIT, _audit_values(row))
    return row


def _appended(build: AuditBuilder) -> Callable[[sqlite3.Connection], AuditRow]:
    return lambda db: _append(db, build)


class SqliteSecurity(SecurityStore):
    def __init__(self, store: "SqliteStore") -> None:
        self._store = store

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._store.transaction() as tx:
            yield await _conn(tx)

    async def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return list(await self._store._reader().execute_fetchall(sql, args))

    # ----- audit -----

    async def append_audit(self, tx: StoreTransaction, build: AuditBuilder) -> AuditRow | None:
        """None in a deferred transaction: the row is chained when the transaction commits."""
        if isinstance(tx, DeferredTransaction) and tx.defer(_appended(build)):
            return None
        return await run_on_connection(await _conn(tx), _append, build)

    async def append_audit_alone(self, builds: Sequence[AuditBuilder]) -> list[AuditRow]:
        """In the next group commit of this process (one transaction with other writers' units)."""
        rows = await self._store._group.submit(Unit([_appended(build) for build in builds]))
        return rows  # type: ignore[return-value]

    async def audit_rows(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRow]:
        rows = await self._read(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [AuditRow(*row) for row in rows]

    async def audit_query(self, query: AuditQuery) -> list[AuditRow]:
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE 1 = 1"
        args: list = []
        for column, value in (
            ("patient_hash", query.patient_hash),
            ("entity", query.entity),
            ("action", query.action),
            ("subtype", query.subtype),
        ):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if query.since is not None:
            sql += " AND recorded >= ?"
            args.append(query.since)
        if query.before_seq is not None:
            sql += " AND seq < ?"
            args.append(query.before_seq)
        rows = await self._read(sql + " ORDER BY seq DESC LIMIT ?", [*args, query.count])
        return [AuditRow(*row) for row in rows]

    async def audit_row(self, seq: int) -> AuditRow | None:
        rows = await self._read(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq = ?", (seq,))
        return AuditRow(*rows[0]) if rows else None

    # ----- authorization server -----

    async def put_client(self, client_id: str, record: dict) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO clients (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                (client_id, orjson.dumps(record)),
            )

    async def get_client(self, client_id: str) -> dict | None:
        rows = await self._read("SELECT body FROM clients WHERE id = ?", (client_id,))
        return orjson.loads(rows[0][0]) if rows else None

    async def list_clients(self) -> list[dict]:
        return [orjson.loads(row[0]) for row in await self._read("SELECT body FROM clients ORDER BY id")]

    async def delete_client(self, client_id: str) -> bool:
        async with self._tx() as conn:
            cursor = await conn.execute("DELETE FROM clients WHERE id = ?", (client_id,))
            return cursor.rowcount > 0

    async def client_state(self, client_id: str) -> dict | None:
        """On the event loop's thread (a primary-key lookup takes microseconds): it sees what another
        process committed, so a disabled client's tokens stop at its next request."""
        rows = self._store._sync_read("SELECT body FROM clients WHERE id = ?", (client_id,))
        return orjson.loads(rows[0][0]) if rows else None

    async def claim_jti(self, key: str, expires_at: float, now: float) -> bool:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM used_jti WHERE expires < ?", (now,))
            rows = await conn.execute_fetchall(
                "INSERT INTO used_jti (key, expires) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key",
                (key, expires_at),
            )
        return bool(rows)

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
        conflict = (
            "DO NOTHING"
            if create
            else "DO UPDATE SET body = excluded.body, used = 0, purge_at = excluded.purge_at"
        )
        async with self._tx() as conn:
            if now is not None:
                await conn.execute("DELETE FROM auth_records WHERE purge_at < ?", (now,))
            rows = await conn.execute_fetchall(
                "INSERT INTO auth_records (kind, key, body, purge_at) VALUES (?, ?, ?, ?) "
                f"ON CONFLICT (kind, key) {conflict} RETURNING key",
                (kind, key, orjson.dumps(body), purge_at),
            )
        return bool(rows)

    async def get_record(self, kind: str, key: str) -> dict | None:
        rows = await self._read("SELECT body FROM auth_records WHERE kind = ? AND key = ?", (kind, key))
        return orjson.loads(rows[0][0]) if rows else None

    async def record_state(self, kind: str, key: str) -> dict | None:
        """On the event loop's thread, like client_state: a primary-key lookup takes microseconds."""
        rows = self._store._sync_read("SELECT body FROM auth_records WHERE kind = ? AND key = ?", (kind, key))
        return orjson.loads(rows[0][0]) if rows else None

    async def list_records(self, kind: str) -> list[dict]:
        rows = await self._read("SELECT body FROM auth_records WHERE kind = ? ORDER BY key", (kind,))
        return [orjson.loads(row[0]) for row in rows]

    async def delete_record(self, kind: str, key: str) -> bool:
        async with self._tx() as conn:
            rows = await conn.execute_fetchall(
                "DELETE FROM auth_records WHERE kind = ? AND key = ? RETURNING key", (kind, key)
            )
        return bool(rows)

    async def take_record(self, kind: str, key: str) -> tuple[dict | None, bool]:
        async with self._tx() as conn:
            rows = await conn.execute_fetchall(
                "UPDATE auth_records SET used = used + 1 WHERE kind = ? AND key = ? RETURNING body, used",
                (kind, key),
            )
        if not rows:
            return None, False
        return orjson.loads(rows[0][0]), rows[0][1] == 1

    # ----- retention -----

    async def expired(
        self, resource_type: str, before: str, after: tuple[str, str] | None = None, limit: int = 200
    ) -> list[StoredVersion]:
        sql = (
            "SELECT type, id, version, last_updated, CASE deleted WHEN 1 THEN 'DELETE' ELSE '' END, body "
            "FROM resources WHERE type = ? AND last_updated < ?"
        )
        args: list = [resource_type, before]
        if after is not None:
            sql += " AND (last_updated, id) > (?, ?)"
            args += list(after)
        rows = await self._read(sql + " ORDER BY last_updated, id LIMIT ?", [*args, limit])
        return [StoredVersion(*row) for row in rows]

    async def versions(
        self, tx: StoreTransaction, resource_type: str, resource_id: str
    ) -> list[StoredVersion]:
        rows = await (await _conn(tx)).execute_fetchall(
            "SELECT type, id, version, last_updated, method, body, hid FROM history WHERE rid = "
            "(SELECT rid FROM resources WHERE type = ? AND id = ?) ORDER BY version",
            (resource_type, resource_id),
        )
        return [StoredVersion(*row) for row in rows]

    async def purge(self, tx: StoreTransaction, resource_type: str, resource_id: str) -> int:
        conn = await _conn(tx)
        rows = await conn.execute_fetchall(
            "SELECT rid FROM resources WHERE type = ? AND id = ?", (resource_type, resource_id)
        )
        if not rows:
            return 0
        rid = rows[0][0]
        await conn.execute("DELETE FROM idx WHERE rid = ?", (rid,))
        removed = await conn.execute_fetchall("DELETE FROM history WHERE rid = ? RETURNING hid", (rid,))
        await conn.execute("DELETE FROM resources WHERE rid = ?", (rid,))
        return len(removed)

    async def replace_bodies(
        self, tx: StoreTransaction, resource_type: str, resource_id: str, bodies: Sequence[tuple[int, bytes]]
    ) -> None:
        conn = await _conn(tx)
        rows = await conn.execute_fetchall(
            "SELECT rid, version, deleted FROM resources WHERE type = ? AND id = ?",
            (resource_type, resource_id),
        )
        if not rows:
            return
        rid, current, deleted = rows[0]
        await conn.executemany(
            "UPDATE history SET body = ? WHERE rid = ? AND version = ? AND body IS NOT NULL",
            [(body, rid, version) for version, body in bodies],
        )
        for version, body in bodies:
            if version == current and not deleted:
                await conn.execute("UPDATE resources SET body = ? WHERE rid = ?", (body, rid))
