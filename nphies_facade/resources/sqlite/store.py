"""The embedded store: one SQLite file in WAL mode, written through one connection, read through a few."""

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from ..store import (
    HistoryQuery,
    IndexValues,
    OutboxEvent,
    SearchPage,
    Store,
    StoredVersion,
    StoreTransaction,
)
from .connection import WriteLock, begin, commit, rollback, run_on_connection
from .deferred import DeferredTransaction
from .group_commit import GroupCommit
from .ledger import SqliteLedger
from .referrers import referrers
from .schema import PRAGMAS, SCHEMA
from .search_exec import TypeWatch, latest_position, replace_index, resolve_pids, run_ids, run_search, scan
from .search_sql import SQL_FUNCTIONS
from .security import SqliteSecurity
from .writes import PreparedIndex, prepare_index, write_version

READERS = 2
ACTIONS = {"DELETE": "delete"}

_VERSION_COLUMNS = "type, id, version, last_updated, method, body"
_CURRENT_SQL = (
    "SELECT h.type, h.id, h.version, h.last_updated, h.method, h.body, h.hid FROM resources r "
    "JOIN history h ON h.rid = r.rid AND h.version = r.version WHERE r.type = ? AND r.id = ?"
)


def _version(row: tuple, position: int = 0) -> StoredVersion:
    return StoredVersion(row[0], row[1], row[2], row[3], row[4], row[5], position)


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        await conn.execute(pragma)
    for name, arity, function in SQL_FUNCTIONS:
        await conn.create_function(name, arity, function, deterministic=True)
    return conn


def _connect_sync(path: Path) -> sqlite3.Connection:
    """The connection used on the event loop's thread: group-commit batches and reads of one row."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        db.execute(pragma)
    db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in the background (SqliteStore.checkpoint)
    return db


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class ParamIds:
    """(resource type, parameter code) -> pid, kept in memory once read or created."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}

    async def load(self, conn: aiosqlite.Connection) -> None:
        rows = await conn.execute_fetchall("SELECT pid, type, code FROM params")
        self._ids = {(rtype, code): pid for pid, rtype, code in rows}  # swapped whole: readers use it

    def reload_sync(self, db: sqlite3.Connection) -> None:
        """After a rollback on the writer's thread: forgets pids whose insert was undone."""
        rows = db.execute("SELECT pid, type, code FROM params").fetchall()
        self._ids = {(rtype, code): pid for pid, rtype, code in rows}

    def resolve_sync(self, db: sqlite3.Connection, keys) -> list[int]:
        """Pids of the (type, code) keys that exist; unknown keys are looked up, never cached as absent."""
        return resolve_pids(self._ids, db, keys)

    def known(self, resource_type: str, code: str) -> int | None:
        return self._ids.get((resource_type, code))

    async def ensure(self, conn: aiosqlite.Connection, resource_type: str, code: str) -> int:
        pid = self._ids.get((resource_type, code))
        if pid is None:
            pid = await run_on_connection(conn, self.ensure_sync, resource_type, code)
        return pid

    def ensure_sync(self, db: sqlite3.Connection, resource_type: str, code: str) -> int:
        pid = self._ids.get((resource_type, code))
        if pid is None:
            db.execute("INSERT OR IGNORE INTO params (type, code) VALUES (?, ?)", (resource_type, code))
            row = db.execute(
                "SELECT pid FROM params WHERE type = ? AND code = ?", (resource_type, code)
            ).fetchone()
            pid = self._ids[(resource_type, code)] = row[0]
        return pid


async def _find_ids(
    conn: aiosqlite.Connection, params: ParamIds, resource_type: str, criteria: list[tuple[str, str]]
) -> list[str]:
    sql = "SELECT r.id FROM resources r WHERE r.type = ? AND r.deleted = 0"
    args: list = [resource_type]
    for code, value in criteria:
        if code == "_id":
            sql += " AND r.id = ?"
            args.append(value)
            continue
        pid = params.known(resource_type, code)
        if pid is None:
            await params.load(conn)
            pid = params.known(resource_type, code)
        if pid is None:
            return []
        system, sep, token = value.rpartition("|") if "|" in value else (None, "", value)
        clause = "SELECT rid FROM idx WHERE pid = ? AND s1 = ?"
        clause_args: list = [pid, token]
        if sep and system:
            clause += " AND s2 = ?"
            clause_args.append(system)
        elif sep:
            clause += " AND s2 IS NULL"
        sql += f" AND r.rid IN ({clause})"
        args.extend(clause_args)
    rows = await conn.execute_fetchall(sql + " ORDER BY r.rid LIMIT 1000", args)
    return [row[0] for row in rows]


async def _current(conn: aiosqlite.Connection, resource_type: str, resource_id: str) -> StoredVersion | None:
    rows = await conn.execute_fetchall(_CURRENT_SQL, (resource_type, resource_id))
    return _version(rows[0], rows[0][6]) if rows else None


class SqliteTransaction(StoreTransaction):
    def __init__(self, conn: aiosqlite.Connection, params: ParamIds, watch: TypeWatch | None = None) -> None:
        self._conn = conn
        self._params = params
        self._watch = watch
        self.wrote: set[str] = set()

    async def connection(self) -> aiosqlite.Connection:
        return self._conn

    async def current(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        return await _current(self._conn, resource_type, resource_id)

    async def write(self, v: StoredVersion, index: IndexValues, trace_id: str) -> OutboxEvent:
        return await self.write_prepared(v, prepare_index(index), trace_id)

    async def write_prepared(self, v: StoredVersion, index: PreparedIndex, trace_id: str) -> OutboxEvent:
        self.wrote.add(v.resource_type)
        return await run_on_connection(self._conn, write_version, self._params, v, index, trace_id)

    async def match_ids(self, resource_type: str, criteria, plan, limit: int) -> list[str]:
        return await run_on_connection(self._conn, run_ids, self._params, plan, limit)

    async def search(self, plan) -> SearchPage:
        return await run_on_connection(self._conn, run_search, self._params, plan)

    async def latest_position(self, resource_type: str) -> int:
        watch = self._watch
        if watch is not None and resource_type not in self.wrote:
            cached = watch.cached(resource_type)
            if cached is not None:
                return cached
            stamp = watch.stamp()
            position = await run_on_connection(self._conn, latest_position, resource_type)
            watch.remember(resource_type, stamp, position)
            return position
        return await run_on_connection(self._conn, latest_position, resource_type)

    async def scan(self, resource_type: str, after: int, limit: int) -> list[StoredVersion]:
        return await run_on_connection(self._conn, scan, resource_type, after, limit)

    async def replace_index(self, entries: list[tuple[StoredVersion, IndexValues]]) -> None:
        await run_on_connection(self._conn, replace_index, self._params, entries)

    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]:
        return await _find_ids(self._conn, self._params, resource_type, criteria)

    async def referrers(
        self, targets: list[tuple[str, str]], params: list[tuple[str, str]], limit: int
    ) -> list[tuple[str, str]]:
        return await run_on_connection(self._conn, self._referrers, targets, params, limit)

    def _referrers(self, db, targets, params, limit) -> list[tuple[str, str]]:
        return referrers(db, self._params.resolve_sync(db, params), targets, limit)


def _create_schema(db: sqlite3.Connection, lock: WriteLock) -> None:
    """Under the write lock, so server processes starting together on a new file do not collide."""
    lock.acquire()
    try:
        db.executescript(SCHEMA)
    finally:
        lock.release()


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._sync: sqlite3.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(READERS))
        self._write_lock = asyncio.Lock()
        self._file_lock: WriteLock | None = None
        self._params = ParamIds()
        self._watch = TypeWatch(self.path.with_name(self.path.name + ".changes"))
        self._ledger: SqliteLedger | None = None
        self._security: SqliteSecurity | None = None
        self._group = GroupCommit(self)

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file_lock = WriteLock(self.path.with_name(self.path.name + ".write-lock"))
        self._writer = await _connect(self.path)
        await run_on_connection(self._writer, _create_schema, self._file_lock)
        await self._params.load(self._writer)
        self._readers = [await _connect(self.path) for _ in range(READERS)]
        self._sync = _connect_sync(self.path)

    async def close(self) -> None:
        await self._group.close()
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        for conn in [*self._readers, self._writer]:
            if conn is not None:
                await conn.close()
        self._readers, self._writer = [], None
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None

    def _reader(self) -> aiosqlite.Connection:
        return self._readers[next(self._next_reader)]

    async def ping(self) -> bool:
        try:
            await self._reader().execute_fetchall("SELECT 1")
        except (aiosqlite.Error, IndexError, ValueError):
            return False
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self._write_lock:
            conn = self._writer
            try:
                # Inside the try: a caller cancelled while waiting still has begin run on the
                # connection's thread (lock taken, transaction open), so it must be rolled back.
                await run_on_connection(conn, begin, self._file_lock)
                tx = SqliteTransaction(conn, self._params, self._watch)
                yield tx
            except BaseException:
                await run_on_connection(conn, rollback, self._file_lock)
                await self._params.load(conn)
                raise
            await run_on_connection(conn, commit, self._file_lock)
            self._watch.committed(tx.wrote)

    @asynccontextmanager
    async def deferred_transaction(self) -> AsyncIterator[StoreTransaction]:
        """See deferred.py: takes the write lock only to commit, with other units of this process."""
        tx = DeferredTransaction(self)
        try:
            yield tx
        except BaseException:
            await tx.abandon()
            raise
        await tx.finish()

    def _locked_transaction(self) -> SqliteTransaction:
        return SqliteTransaction(self._writer, self._params, self._watch)

    async def checkpoint(self) -> None:
        """Copies the WAL into the database on a reader's thread (PASSIVE: never waits for writers)."""
        await run_on_connection(self._reader(), _checkpoint)

    # Reads of one row by key run on the event loop's thread: a lookup on the unique (type, id) index
    # takes microseconds, less than the hand-off to a reader's thread would.

    def _sync_read(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self._sync is None:
            raise RuntimeError("the store is not open")
        return self._sync.execute(sql, args).fetchall()

    async def _committed_current(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        rows = self._sync.execute(_CURRENT_SQL, (resource_type, resource_id)).fetchall()
        return _version(rows[0], rows[0][6]) if rows else None

    def _committed_live(self, resource_type: str, resource_id: str) -> bool:
        row = self._sync.execute(
            "SELECT deleted FROM resources WHERE type = ? AND id = ?", (resource_type, resource_id)
        ).fetchone()
        return row is not None and not row[0]

    async def read(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        rows = self._sync.execute(
            "SELECT type, id, version, last_updated, CASE deleted WHEN 1 THEN 'DELETE' ELSE '' END, body "
            "FROM resources WHERE type = ? AND id = ?",
            (resource_type, resource_id),
        ).fetchall()
        return _version(rows[0]) if rows else None

    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredVersion | None:
        rows = self._sync.execute(
            f"SELECT {_VERSION_COLUMNS}, hid FROM history h WHERE h.rid = "
            "(SELECT rid FROM resources WHERE type = ? AND id = ?) AND h.version = ?",
            (resource_type, resource_id, version),
        ).fetchall()
        return _version(rows[0], rows[0][6]) if rows else None

    async def history(self, query: HistoryQuery) -> list[StoredVersion]:
        sql = f"SELECT {_VERSION_COLUMNS}, hid FROM history h WHERE 1 = 1"
        args: list = []
        if query.resource_type and query.id:
            sql += " AND h.rid = (SELECT rid FROM resources WHERE type = ? AND id = ?)"
            args += [query.resource_type, query.id]
        elif query.resource_type:
            sql += " AND h.type = ?"
            args.append(query.resource_type)
        if query.since:
            sql += " AND h.last_updated >= ?"
            args.append(query.since)
        if query.before_position is not None:
            sql += " AND h.hid < ?"
            args.append(query.before_position)
        sql += " ORDER BY h.hid DESC LIMIT ?"
        args.append(query.count)
        rows = await self._reader().execute_fetchall(sql, args)
        return [_version(row, row[6]) for row in rows]

    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]:
        return await _find_ids(self._reader(), self._params, resource_type, criteria)

    async def search(self, plan) -> SearchPage:
        return await run_on_connection(self._reader(), run_search, self._params, plan)

    async def latest_position(self, resource_type: str) -> int:
        return await run_on_connection(self._reader(), latest_position, resource_type)

    def ledger(self) -> SqliteLedger:
        if self._ledger is None:
            self._ledger = SqliteLedger(self)
        return self._ledger

    def security(self) -> SqliteSecurity:
        if self._security is None:
            self._security = SqliteSecurity(self)
        return self._security

    async def outbox_after(self, seq: int, limit: int = 100) -> list[OutboxEvent]:
        rows = await self._reader().execute_fetchall(
            "SELECT seq, type, id, version, action, at, trace_id FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [OutboxEvent(*row) for row in rows]
