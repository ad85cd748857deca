"""The security port in the embedded store's SQLite file: audit chain, clients, used jti, erasure."""

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import astuple
from typing import TYPE_CHECKING

import aiosqlite
import orjson

from ..security_store import AuditBuilder, AuditHead, AuditQuery, AuditRow, SecurityStore
from ..store import StoredVersion, StoreTransaction
from .connection import WriteLock, begin, commit, rollback, run_on_connection

if TYPE_CHECKING:
    from .store import SqliteStore

_AUDIT_COLUMNS = (
    "seq, recorded, action, subtype, outcome, actor, client, role, entity, patient_hash, provider_hash, "
    "digest, trace_id, detail, prev_hash, hash"
)


def _conn(tx: StoreTransaction) -> aiosqlite.Connection:
    return tx._conn  # type: ignore[attr-defined]


def _append(db: sqlite3.Connection, build: AuditBuilder) -> AuditRow:
    """On the connection's thread: reads the chain's head and inserts the row built on it."""
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    row = build(AuditHead(last[0], last[1]) if last else None)
    db.execute(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 16)})", astuple(row))
    return row


def _append_alone(db: sqlite3.Connection, lock: WriteLock, builds: Sequence[AuditBuilder]) -> list[AuditRow]:
    begin(db, lock)
    try:
        rows = [_append(db, build) for build in builds]
    except BaseException:
        rollback(db, lock)
        raise
    commit(db, lock)
    return rows


class SqliteSecurity(SecurityStore):
    def __init__(self, store: "SqliteStore") -> None:
        self._store = store

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._store.transaction() as tx:
            yield _conn(tx)

    async def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return list(await self._store._reader().execute_fetchall(sql, args))

    # ----- audit -----

    async def append_audit(self, tx: StoreTransaction, build: AuditBuilder) -> AuditRow:
        return await run_on_connection(_conn(tx), _append, build)

    async def append_audit_alone(self, builds: Sequence[AuditBuilder]) -> list[AuditRow]:
        store = self._store
        async with store._write_lock:
            return await run_on_connection(store._writer, _append_alone, store._file_lock, builds)

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

    async def claim_jti(self, key: str, expires_at: float, now: float) -> bool:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM used_jti WHERE expires < ?", (now,))
            rows = await conn.execute_fetchall(
                "INSERT INTO used_jti (key, expires) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key",
                (key, expires_at),
            )
        return bool(rows)

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
        rows = await _conn(tx).execute_fetchall(
            "SELECT type, id, version, last_updated, method, body, hid FROM history WHERE rid = "
            "(SELECT rid FROM resources WHERE type = ? AND id = ?) ORDER BY version",
            (resource_type, resource_id),
        )
        return [StoredVersion(*row) for row in rows]

    async def purge(self, tx: StoreTransaction, resource_type: str, resource_id: str) -> int:
        conn = _conn(tx)
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
        conn = _conn(tx)
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
