"""The statements of one write (resource, history row, index rows, outbox event), run on the writer's thread.

`prepare_index` turns extracted values into rows before the hand-off, so the writer's thread, which holds
the write lock, only resolves parameter ids and inserts. `create_versions` writes a run of creations (a
transaction Bundle's) with one executemany per table.
"""

import sqlite3
from collections import Counter
from typing import Protocol

from ..store import IndexValues, OutboxEvent, StoredVersion, VersionConflict
from .index_rows import Row, rows_for

PreparedIndex = list[tuple[str, list[Row]]]


class Pids(Protocol):
    def ensure_sync(self, db: sqlite3.Connection, resource_type: str, code: str) -> int: ...


def prepare_index(index: IndexValues) -> PreparedIndex:
    return [(code, rows) for code, values in index.items() if (rows := rows_for(values))]


def _store_current(db: sqlite3.Connection, v: StoredVersion) -> int:
    deleted = 1 if v.body is None else 0
    if v.version == 1:
        row = db.execute(
            "INSERT INTO resources (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (type, id) DO NOTHING RETURNING rid",
            (v.resource_type, v.id, v.version, v.last_updated, deleted, v.body),
        ).fetchone()
    else:
        row = db.execute(
            "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, body = ? "
            "WHERE type = ? AND id = ? AND version = ? RETURNING rid",
            (v.version, v.last_updated, deleted, v.body, v.resource_type, v.id, v.version - 1),
        ).fetchone()
    if row is None:
        raise VersionConflict(f"{v.resource_type}/{v.id} is no longer at version {v.version - 1}")
    return row[0]


def _store_index(
    db: sqlite3.Connection, pids: Pids, rid: int, v: StoredVersion, index: PreparedIndex
) -> None:
    rows = []
    for code, code_rows in index:
        pid = pids.ensure_sync(db, v.resource_type, code)
        rows += [(rid, pid, *row) for row in code_rows]
    if v.version > 1:
        rows = _replace_changed(db, rid, rows)
    if rows:
        db.executemany("INSERT INTO idx VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _replace_changed(db: sqlite3.Connection, rid: int, rows: list[tuple]) -> list[tuple]:
    """Deletes the resource's index rows that the new version no longer has; returns the new rows it
    lacks. An update mostly changes a few values (a Task's status, its dates), and every row deleted
    or inserted costs a change to each of the table's indexes."""
    wanted = Counter(rows)
    stale = []
    for rowid, *values in db.execute(
        "SELECT rowid, rid, pid, s1, s2, s3, s4, n1, n2, n3 FROM idx WHERE rid = ?", (rid,)
    ):
        key = tuple(values)
        if wanted[key] > 0:
            wanted[key] -= 1
        else:
            stale.append((rowid,))
    if stale:
        db.executemany("DELETE FROM idx WHERE rowid = ?", stale)
    return list(wanted.elements())


def _conflicting_create(
    db: sqlite3.Connection, versions: list[StoredVersion], first_rid: int
) -> VersionConflict:
    for rid, v in enumerate(versions, start=first_rid):
        row = db.execute(
            "SELECT rid FROM resources WHERE type = ? AND id = ?", (v.resource_type, v.id)
        ).fetchone()
        if row is None or row[0] != rid:
            return VersionConflict(f"{v.resource_type}/{v.id} is no longer at version 0")
    return VersionConflict("a created resource already exists")


def create_versions(
    db: sqlite3.Connection, pids: Pids, writes: list[tuple[StoredVersion, PreparedIndex, str]]
) -> list[OutboxEvent]:
    """What write_version does for each of `writes` (first versions, not deletions), one statement per table;
    raises VersionConflict when one of them already exists."""
    versions = [v for v, _, _ in writes]
    first_rid = (db.execute("SELECT max(rid) FROM resources").fetchone()[0] or 0) + 1
    before = db.total_changes
    db.executemany(
        "INSERT INTO resources (rid, type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, 1, ?, 0, ?) "
        "ON CONFLICT (type, id) DO NOTHING",
        [
            (rid, v.resource_type, v.id, v.last_updated, v.body)
            for rid, v in enumerate(versions, start=first_rid)
        ],
    )
    if db.total_changes - before != len(versions):
        raise _conflicting_create(db, versions, first_rid)
    db.executemany(
        "INSERT INTO history (rid, type, id, version, last_updated, method, body) VALUES (?, ?, ?, 1, ?, ?, ?)",
        [
            (rid, v.resource_type, v.id, v.last_updated, v.method, v.body)
            for rid, v in enumerate(versions, start=first_rid)
        ],
    )
    rows = []
    for rid, (v, index, _) in enumerate(writes, start=first_rid):
        for code, code_rows in index:
            pid = pids.ensure_sync(db, v.resource_type, code)
            rows += [(rid, pid, *row) for row in code_rows]
    if rows:
        db.executemany("INSERT INTO idx VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO outbox (type, id, version, action, at, trace_id) VALUES (?, ?, 1, 'create', ?, ?)",
        [(v.resource_type, v.id, v.last_updated, trace_id) for v, _, trace_id in writes],
    )
    first_seq = db.execute("SELECT last_insert_rowid()").fetchone()[0] - len(writes) + 1
    return [
        OutboxEvent(seq, v.resource_type, v.id, 1, "create", v.last_updated, trace_id)
        for seq, (v, _, trace_id) in enumerate(writes, start=first_seq)
    ]


def write_version(
    db: sqlite3.Connection, pids: Pids, v: StoredVersion, index: PreparedIndex, trace_id: str
) -> OutboxEvent:
    """All statements of one write; raises VersionConflict when v is not one more than the current."""
    rid = _store_current(db, v)
    db.execute(
        "INSERT INTO history (rid, type, id, version, last_updated, method, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (rid, v.resource_type, v.id, v.version, v.last_updated, v.method, v.body),
    )
    _store_index(db, pids, rid, v, index)
    action = "delete" if v.body is None else ("create" if v.version == 1 else "update")
    seq = db.execute(
        "INSERT INTO outbox (type, id, version, action, at, trace_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
        (v.resource_type, v.id, v.version, action, v.last_updated, trace_id),
    ).fetchone()[0]
    return OutboxEvent(seq, v.resource_type, v.id, v.version, action, v.last_updated, trace_id)
