"""Group commit: the write units of one server process, applied together in one SQLite transaction.

A unit is what a deferred transaction (deferred.py) collected: the statements of its writes as functions
of the connection, and what it read outside the write lock. Units queued while a batch is applied form the
next batch: one write lock, one transaction, one COMMIT for all of them. Each unit runs in its own
savepoint, so a unit that fails (a version conflict, a stale read) is rolled back alone and its neighbours
are still committed.

A batch runs on the event loop's thread, on a plain sqlite3 connection of its own: its statements take
microseconds each, and on the thread of an aiosqlite connection each of them would wait to take the GIL
back from the busy event loop. So the batch holds the lock for its own CPU time only. The lock is taken
without blocking the loop (WriteLock.acquire_async), and the WAL is checkpointed in the background
(`checkpointed`), never in a batch's COMMIT.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..store import TransientConflict
from .search_exec import latest_position

if TYPE_CHECKING:
    from .store import ParamIds, SqliteStore

Op = Callable[[sqlite3.Connection], object]
Reads = dict[tuple[str, str], int | None]

MAX_BATCH = 64  # units per batch: bounds how long one batch holds the event loop
CHECKPOINT_EVERY = 0.5  # seconds between background WAL checkpoints while batches commit


@dataclass(slots=True)
class Unit:
    """`reads`: (type, id) -> version read (None: absent); `live`: resources read as live (referenced),
    which must still be; `positions`: type -> latest position read."""

    ops: list[Op]
    reads: Reads = field(default_factory=dict)
    live: set[tuple[str, str]] = field(default_factory=set)
    positions: dict[str, int] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)


def check_reads(db: sqlite3.Connection, unit: Unit) -> None:
    """Raises TransientConflict when something the unit read outside the lock has changed since."""
    for (resource_type, resource_id), version in unit.reads.items():
        row = db.execute(
            "SELECT version FROM resources WHERE type = ? AND id = ?", (resource_type, resource_id)
        ).fetchone()
        if (row[0] if row else None) != version:
            raise TransientConflict(f"{resource_type}/{resource_id} changed since it was read")
    for resource_type, resource_id in unit.live:
        row = db.execute(
            "SELECT deleted FROM resources WHERE type = ? AND id = ?", (resource_type, resource_id)
        ).fetchone()
        if row is None or row[0]:
            raise TransientConflict(f"{resource_type}/{resource_id} was deleted since it was read")
    for resource_type, position in unit.positions.items():
        if latest_position(db, resource_type) != position:
            raise TransientConflict(f"{resource_type} resources changed since they were read")


def apply_unit(db: sqlite3.Connection, unit: Unit) -> list[object]:
    check_reads(db, unit)
    return [op(db) for op in unit.ops]


def apply_batch(db: sqlite3.Connection, params: "ParamIds", units: list[Unit]) -> list[tuple[bool, object]]:
    """Every unit in its savepoint, then one COMMIT (the caller holds the write lock); per unit
    (True, its op results) or (False, the exception it raised)."""
    outcomes: list[tuple[bool, object]] = []
    try:
        db.execute("BEGIN IMMEDIATE")
        for unit in units:
            db.execute("SAVEPOINT unit")
            try:
                outcomes.append((True, apply_unit(db, unit)))
            except Exception as exc:  # the unit's own failure: undo it alone
                db.execute("ROLLBACK TO unit")
                params.reload_sync(db)
                outcomes.append((False, exc))
            db.execute("RELEASE unit")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        params.reload_sync(db)
        raise
    return outcomes


class GroupCommit:
    def __init__(self, store: "SqliteStore") -> None:
        self._store = store
        self._queue: list[tuple[Unit, asyncio.Future]] = []
        self._runner: asyncio.Task | None = None
        self._checkpoint: asyncio.Task | None = None
        self._checkpointed = time.monotonic()

    @property
    def busy(self) -> bool:
        """Whether a batch is queued or committing, so a unit submitted now costs no COMMIT of its own."""
        return bool(self._queue) or (self._runner is not None and not self._runner.done())

    async def submit(self, unit: Unit) -> list[object]:
        """Commits the unit with whatever else is queued; its op results, or the exception it raised."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                outcomes = await self._commit([unit for unit, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            written: set[str] = set()
            for (unit, future), (ok, result) in zip(batch, outcomes, strict=True):
                if ok:
                    written |= unit.types
                if future.done():
                    continue
                if ok:
                    future.set_result(result)
                else:
                    future.set_exception(result)  # type: ignore[arg-type]
            self._store._watch.committed(written)
            self._checkpoint_later()

    async def _commit(self, units: list[Unit]) -> list[tuple[bool, object]]:
        store = self._store
        lock = store._file_lock
        async with store._write_lock:
            await lock.acquire_async()
            try:
                return apply_batch(store._sync, store._params, units)
            finally:
                lock.release()

    async def close(self) -> None:
        """Waits for the queued units and a running checkpoint (before the connections close)."""
        for task in (self._runner, self._checkpoint):
            if task is not None and not task.done():
                await asyncio.gather(task, return_exceptions=True)

    def _checkpoint_later(self) -> None:
        if time.monotonic() - self._checkpointed < CHECKPOINT_EVERY:
            return
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpointed = time.monotonic()
            self._checkpoint = asyncio.create_task(self._store.checkpoint())
