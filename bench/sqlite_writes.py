"""CPU time per resource of the SQLite store's write statements, for transaction Bundles of creations.

Writes the documents of bundle_ingest.py (search index extracted beforehand, as FhirService does) into a
fresh store schema, one transaction and savepoint per bundle like the group commit: once resource by
resource (`write_version`, what updates and lone writes use) and once per bundle (`create_versions`, what
a deferred unit's run of creations uses). The baseline, in the same run: bare sqlite3, one INSERT of the
JSON per resource, one transaction per bundle.

  .venv/bin/python bench/sqlite_writes.py [--bundles 40] [--entries 100]
"""

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bundle_ingest import machine, make_bundles  # noqa: E402

from nphies_facade.resources.search.definitions import SearchRegistry  # noqa: E402
from nphies_facade.resources.search.extraction import Extractor  # noqa: E402
from nphies_facade.resources.sqlite.schema import PRAGMAS, SCHEMA  # noqa: E402
from nphies_facade.resources.sqlite.writes import create_versions, prepare_index, write_version  # noqa: E402
from nphies_facade.resources.store import StoredVersion  # noqa: E402


class Pids:
    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], int] = {}

    def ensure_sync(self, db: sqlite3.Connection, resource_type: str, code: str) -> int:
        key = (resource_type, code)
        if key not in self.ids:
            db.execute("INSERT OR IGNORE INTO params (type, code) VALUES (?, ?)", key)
            self.ids[key] = db.execute("SELECT pid FROM params WHERE type = ? AND code = ?", key).fetchone()[
                0
            ]
        return self.ids[key]


def units_of(bundles: list[dict]) -> list[list[tuple[StoredVersion, list, str]]]:
    extractor = Extractor(SearchRegistry())
    units = []
    for bundle in bundles:
        unit = []
        for entry in bundle["entry"]:
            resource = {**entry["resource"], "id": str(uuid.uuid4())}
            stored = StoredVersion(
                resource["resourceType"],
                resource["id"],
                1,
                "2025-03-01T00:00:00Z",
                "POST",
                orjson.dumps(resource),
            )
            unit.append((stored, prepare_index(extractor.extract(resource)), "bench"))
        units.append(unit)
    return units


def open_store(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        db.execute(pragma)
    db.executescript(SCHEMA)
    return db


def timed(db: sqlite3.Connection, units: list, write) -> float:
    """CPU seconds of this process to write the units, each in its transaction and savepoint."""
    started = time.process_time()
    for unit in units:
        db.execute("BEGIN IMMEDIATE")
        db.execute("SAVEPOINT unit")
        write(db, unit)
        db.execute("RELEASE unit")
        db.execute("COMMIT")
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=40)
    parser.add_argument("--entries", type=int, default=100)
    args = parser.parse_args()
    warmup, measured = 4, args.bundles
    units = units_of(make_bundles(2 * (warmup + measured), args.entries, 7))
    count = sum(len(unit) for unit in units[warmup : warmup + measured])
    results = {}
    with tempfile.TemporaryDirectory(prefix="sqlite-writes-") as folder:
        pids = Pids()
        one_by_one = lambda db, unit: [write_version(db, pids, v, index, trace) for v, index, trace in unit]  # noqa: E731
        batched = lambda db, unit: create_versions(db, pids, unit)  # noqa: E731
        for part, (name, write) in enumerate((("write_version", one_by_one), ("create_versions", batched))):
            pids.ids.clear()
            db = open_store(Path(folder) / f"{name}.sqlite3")
            chunk = units[part * (warmup + measured) : (part + 1) * (warmup + measured)]
            timed(db, chunk[:warmup], write)
            results[name] = timed(db, chunk[warmup:], write)
            db.close()
        db = sqlite3.connect(Path(folder) / "baseline.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE resources (type TEXT NOT NULL, id TEXT NOT NULL, body BLOB, PRIMARY KEY (type, id))"
        )
        insert = "INSERT INTO resources (type, id, body) VALUES (?, ?, ?)"
        baseline = timed(
            db,
            units[warmup + measured : 2 * (warmup + measured)][warmup:],
            lambda db, unit: db.executemany(insert, [(v.resource_type, v.id, v.body) for v, _, _ in unit]),
        )
        db.close()
    print(f"command:  {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine:  {machine()}")
    print(f"workload: {measured} bundles x {args.entries} creations (bundle_ingest.py documents), CPU time")
    for name, seconds in results.items():
        print(f"{name + ':':17} {seconds * 1e6 / count:7.1f} us per resource")
    print(f"baseline:          {baseline * 1e6 / count:7.1f} us per resource (bare sqlite3, JSON only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
