"""SQLite: an update replaces only the index rows that changed, leaving the rows a fresh write would."""

import sqlite3

import orjson

from nphies_facade.resources.sqlite.store import SqliteStore

from .writing import NID, write


def _task(status: str, owners: list[str], codes: list[str]) -> dict:
    return {
        "resourceType": "Task",
        "id": "t1",
        "status": status,
        "intent": "order",
        "identifier": [{"system": NID, "value": code} for code in codes],
        "owner": {"reference": owners[0]} if owners else None,
        "businessStatus": {"text": status},
    }


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
        _task("requested", ["Practitioner/a"], ["x", "x", "y"]),
        _task("in-progress", ["Practitioner/a"], ["x", "z"]),
        _task("in-progress", [], ["z", "z", "x"]),
        _task("completed", ["Practitioner/b"], ["x"]),
    ]
    versions = [{k: v for k, v in t.items() if v is not None} for t in versions]
    updated = SqliteStore(tmp_path / "updated.sqlite3")
    await updated.open()
    try:
        for number, task in enumerate(versions, start=1):
            await write(updated, extractor, task, number, f"2024-01-0{number}T00:00:00Z")
            fresh = SqliteStore(tmp_path / f"fresh{number}.sqlite3")
            await fresh.open()
            try:
                await write(
                    fresh, extractor, orjson.loads(orjson.dumps(task)), 1, f"2024-01-0{number}T00:00:00Z"
                )
            finally:
                await fresh.close()
            assert _rows(tmp_path / "updated.sqlite3", "t1") == _rows(
                tmp_path / f"fresh{number}.sqlite3", "t1"
            )
            assert len(_rows(tmp_path / "updated.sqlite3", "t1")) > 3
    finally:
        await updated.close()
