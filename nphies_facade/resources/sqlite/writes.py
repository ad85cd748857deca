"""The statements of one write (resource, history row, index rows, outbox event), run on the writer's thread.

`prepare_index` turns extracted values into rows before the hand-off, so the writer's thread, which holds
the write lock, only resolves parameter ids and inserts.
"""

import sqlite3
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
    if v.version > 1:
        db.execute("DELETE FROM idx WHERE rid = ?", (rid,))
    rows = []
    for code, code_rows in index:
        pid = pids.ensure_sync(db, v.resource_type, code)
        rows += [(rid, pid, *row) for row in code_rows]
    if rows:
        db.executemany("INSERT INTO idx VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


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
