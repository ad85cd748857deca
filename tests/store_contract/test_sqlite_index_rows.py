"""SQLite: an update replaces only the index rows that changed, leaving the rows a fresh write would."""

import sqlite3

from nphies_facade.resources.sqlite.store import SqliteStore

from .writing import NID, write


def _task(status: str, owner: str | None, codes: list[str]) -> dict:
    task = {
        "resourceType": "Task",
        "id": "t1",
        "status": status,
        "intent": "order",
        "identifier": [{"system": NID, "value": code} for code in codes],
        "businessStatus": {"text": status},
    }
    if owner:
        task["owner"] = {"reference": owner}
    return task


def _rows(path, resource_id: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return sorted(
            db.execute(
                "SELECT p.code, s1, s2, s3, s4, n1, n2, n3 FROM idx JOIN params p USING (pid) "
                "JOIN resources r USING (rid) WHERE r.id = ?",
                (resource_id,),
            ).fetchall(),
            key=repr,
        )


async def test_rows_after_updates_equal_a_fresh_writes(tmp_path, extractor):
    versions = [
        _task("requested", "Practitioner/a", ["x", "x", "y"]),
        _task("in-progress", "Practitioner/a", ["x", "z"]),
        _task("in-progress", None, ["z", "z", "x"]),
        _task("completed", "Practitioner/b", ["x"]),
    ]
    updated = SqliteStore(tmp_path / "updated.sqlite3")
    await updated.open()
    try:
        for number, task in enumerate(versions, start=1):
            at = f"2024-01-0{number}T00:00:00Z"
            await write(updated, extractor, task, number, at)
            fresh = SqliteStore(tmp_path / f"fresh{number}.sqlite3")
            await fresh.open()
            try:
                await write(fresh, extractor, task, 1, at)
            finally:
                await fresh.close()
            rows = _rows(tmp_path / "updated.sqlite3", "t1")
            assert rows == _rows(tmp_path / f"fresh{number}.sqlite3", "t1")
            assert len(rows) > 3
    finally:
        await updated.close()
