"""The security port in the embedded store's SQLite file: audit chain, clients, used jti, erasure."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import aiosqlite
import orjson

from ..security_store import AuditHead, AuditQuery, AuditRow, SecurityStore
from ..store import StoredVersion, StoreTransaction

if TYPE_CHECKING:
    from .store import SqliteStore

_AUDIT_COLUMNS = (
    "seq, recorded, action, subtype, outcome, actor, client, role, entity, patient_hash, provider_hash, "
    "digest, trace_id, detail, prev_hash, hash"
)


def _conn(tx: StoreTransaction) -> aiosqlite.Connection:
    return tx._conn  # type: ignore[attr-defined]


class SqliteSecurity(SecurityStore):
    def __init__(self, store: "SqliteStore") -> None:
        self._store = store

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._store._write_lock:
            conn = self._store._writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return list(await self._store._reader().execute_fetchall(sql, args))

    # ----- audit -----

    async def audit_head(self, tx: StoreTransaction) -> AuditHead | None:
        rows = await _conn(tx).execute_fetchall("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return AuditHead(rows[0][0], rows[0][1]) if rows else None

    async def append_audit(self, tx: StoreTransaction, row: AuditRow) -> None:
        await _conn(tx).execute(
            f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            (
                row.seq,
                row.recorded,
                row.action,
                row.subtype,
                row.outcome,
                row.actor,
                row.client,
                row.role,
                row.entity,
                row.patient_hash,
                row.provider_hash,
                row.digest,
                row.trace_id,
                row.detail,
                row.prev_hash,
                row.hash,
            ),
        )

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

    # ----- references -----

    async def _pids(self, resource_type: str, codes: Sequence[str]) -> list[int]:
        params = self._store._params
        pids = [params.known(resource_type, code) for code in codes]
        if None in pids:
            await params.load(self._store._reader())
            pids = [params.known(resource_type, code) for code in codes]
        return [pid for pid in pids if pid is not None]

    async def find_by_reference(
        self, resource_type: str, codes: Sequence[str], reference: str, limit: int = 1000
    ) -> list[str]:
        pids = await self._pids(resource_type, codes)
        target_type, _, target_id = reference.partition("/")
        if not pids or not target_id:
            return []
        marks = ", ".join("?" * len(pids))
        rows = await self._read(
            "SELECT r.id FROM resources r WHERE r.type = ? AND r.deleted = 0 AND r.rid IN "
            f"(SELECT rid FROM idx WHERE pid IN ({marks}) AND (s1 = ? OR (s2 = ? AND s3 = ?))) "
            "ORDER BY r.rid LIMIT ?",
            (resource_type, *pids, reference, target_type, target_id, limit),
        )
        return [row[0] for row in rows]

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
