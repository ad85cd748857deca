"""Deferred write transactions: a unit of work that takes the write lock only to commit.

While the unit runs, its writes and audit records are collected as statements. `current` answers with
the last version the unit queued of the resource; of one it has not written, it reads the last committed
version, remembering the version it saw; so does `latest_position` (every write asks it about
SearchParameter). At the end the unit goes to the process's group commit (group_commit.py), which
checks under the lock that every version and position read is still current (else TransientConflict:
the caller runs the unit again) and applies the statements. A unit that needs more than that
(conditional criteria, searches) turns into an ordinary locked transaction at that point: the lock is taken, the reads are checked
and the collected statements applied, and the rest runs as in SqliteStore.transaction. Creations with
nothing but audit records between them are collected into one CreateBatch (a transaction Bundle's
POSTs), written with one statement per table.
"""

from typing import TYPE_CHECKING

import aiosqlite

from ..store import IndexValues, OutboxEvent, SearchPage, StoredVersion, StoreTransaction
from .connection import begin, commit, rollback, run_on_connection
from .group_commit import Op, Unit, apply_unit
from .search_exec import latest_position
from .writes import PreparedIndex, create_versions, prepare_index, write_version

if TYPE_CHECKING:
    from .store import SqliteStore, SqliteTransaction


class CreateBatch:
    """An op: first versions written together (create_versions), in the order they came."""

    def __init__(self, params) -> None:
        self._params = params
        self.writes: list[tuple[StoredVersion, PreparedIndex, str]] = []

    def __call__(self, db) -> list[OutboxEvent]:
        return create_versions(db, self._params, self.writes)


def _begin_with(db, lock, unit: Unit) -> None:
    begin(db, lock)
    apply_unit(db, unit)


class DeferredTransaction(StoreTransaction):
    def __init__(self, store: "SqliteStore") -> None:
        self._store = store
        self._unit = Unit([])
        self._tx: SqliteTransaction | None = None
        self._creates: CreateBatch | None = None
        self.wrote = self._unit.types
        self._queued: dict[tuple[str, str], StoredVersion] = {}  # the last version queued per resource

    def defer(self, op: Op) -> bool:
        """Queues op(db) to run with the unit's writes; False when the unit already holds the lock."""
        if self._tx is not None:
            return False
        self._unit.ops.append(op)
        return True

    async def _locked(self) -> "SqliteTransaction":
        if self._tx is None:
            store = self._store
            await store._write_lock.acquire()
            # From here on `abandon` rolls back and releases: even a caller cancelled while waiting has
            # begin run on the connection's thread.
            self._tx = store._locked_transaction()
            self._tx.wrote = self.wrote
            await run_on_connection(store._writer, _begin_with, store._file_lock, self._unit)
        return self._tx

    async def connection(self) -> aiosqlite.Connection:
        return await (await self._locked()).connection()

    async def current(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        if self._tx is not None:
            return await self._tx.current(resource_type, resource_id)
        queued = self._queued.get((resource_type, resource_id))
        if queued is not None:
            return queued
        found = await self._store._committed_current(resource_type, resource_id)
        self._unit.reads.setdefault((resource_type, resource_id), found.version if found else None)
        return found

    async def live(self, resource_type: str, resource_id: str) -> bool:
        """Read from the committed state unless queued; the commit checks it is still live (an update
        of the target meanwhile is no conflict)."""
        if self._tx is not None:
            return await self._tx.live(resource_type, resource_id)
        queued = self._queued.get((resource_type, resource_id))
        if queued is not None:
            return not queued.deleted
        alive = self._store._committed_live(resource_type, resource_id)
        if alive:
            self._unit.live.add((resource_type, resource_id))
        return alive

    async def referrers(self, targets, params, limit: int) -> list[tuple[str, str]]:
        return await (await self._locked()).referrers(targets, params, limit)

    async def write(self, v: StoredVersion, index: IndexValues, trace_id: str) -> OutboxEvent | None:
        """None while deferred: the event exists once the unit commits."""
        prepared = prepare_index(index)
        if self._tx is not None:
            return await self._tx.write_prepared(v, prepared, trace_id)
        params = self._store._params
        self.wrote.add(v.resource_type)
        self._queued[(v.resource_type, v.id)] = v
        if v.version == 1 and v.body is not None:
            if self._creates is None:
                self._creates = CreateBatch(params)
                self._unit.ops.append(self._creates)
            self._creates.writes.append((v, prepared, trace_id))
        else:
            self._creates = None  # later creations come after this write, as they were made
            self._unit.ops.append(lambda db: write_version(db, params, v, prepared, trace_id))
        return None

    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]:
        return await (await self._locked()).find_ids(resource_type, criteria)

    async def match_ids(self, resource_type: str, criteria, plan, limit: int) -> list[str]:
        return await (await self._locked()).match_ids(resource_type, criteria, plan, limit)

    async def search(self, plan) -> SearchPage:
        return await (await self._locked()).search(plan)

    async def latest_position(self, resource_type: str) -> int:
        if self._tx is not None or resource_type in self.wrote:
            return await (await self._locked()).latest_position(resource_type)
        seen = self._unit.positions.get(resource_type)
        if seen is not None:  # a later change fails the unit's check at the commit anyway
            return seen
        store = self._store
        position = store._watch.cached(resource_type)
        if position is None:
            stamp = store._watch.stamp()
            position = await run_on_connection(store._reader(), latest_position, resource_type)
            store._watch.remember(resource_type, stamp, position)
        self._unit.positions.setdefault(resource_type, position)
        return position

    async def scan(self, resource_type: str, after: int, limit: int) -> list[StoredVersion]:
        return await (await self._locked()).scan(resource_type, after, limit)

    async def replace_index(self, entries: list[tuple[StoredVersion, IndexValues]]) -> None:
        await (await self._locked()).replace_index(entries)

    async def finish(self) -> None:
        store = self._store
        if self._tx is None:
            if self._unit.ops:
                await store._group.submit(self._unit)
            return
        try:
            await run_on_connection(store._writer, commit, store._file_lock)
        except BaseException:
            await self._rollback()
            raise
        finally:
            store._write_lock.release()
        store._watch.committed(self.wrote)

    async def abandon(self) -> None:
        if self._tx is None:
            return
        try:
            await self._rollback()
        finally:
            self._store._write_lock.release()

    async def _rollback(self) -> None:
        store = self._store
        await run_on_connection(store._writer, rollback, store._file_lock)
        await store._params.load(store._writer)
