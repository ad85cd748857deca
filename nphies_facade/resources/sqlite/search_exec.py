"""Running search plans on one SQLite connection: the page, the total, the includes, in one thread hop.

Each function takes the `sqlite3.Connection` it runs on (a reader, or the writer inside a transaction so
conditional interactions see the transaction's own writes) and is sent whole to that connection's thread.
"""

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from ..search.plan import IdFilter, SearchPlan, ValueFilter, param_keys
from ..store import Found, IndexValues, SearchPage, StoredVersion
from .index_rows import rows_for
from .search_sql import INTERSECT, RANGE, WALK, Driver, SqlRenderer, can_drive, first_driver

# Misses above this many are resolved by reading the whole (small) params table once.
_SINGLE_LOOKUPS = 8
# A filter matching at least this many index rows is not worth listing when the type can be walked in the
# result order instead (with the filters probed on each resource until the page is full).
ESTIMATE_CAP = 1000
# A filter counted with at most this many rows drives the search without counting the others.
FEW = 16
# A page sorted by _lastUpdated either sorts the driver's whole list (a probe and a row read per listed
# row) or walks the type in that order keeping rows found in the list (a cheap step per walked row, about
# (page + 1) x type size / list size of them). The walk is chosen when its steps are fewer than the list
# times this ratio (measured near 20), and the list is longer than WALK_FROM.
WALK_ADVANTAGE = 10
WALK_FROM = 100
# How long a type's size, counted for that choice, is reused.
TYPE_SIZE_SECONDS = 60.0
_type_sizes: dict[tuple[int, str], tuple[float, int]] = {}


class Pids(Protocol):
    def resolve_sync(self, db: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> list[int]: ...

    def ensure_sync(self, db: sqlite3.Connection, resource_type: str, code: str) -> int: ...


def resolve_pids(
    cache: dict[tuple[str, str], int], db: sqlite3.Connection, keys: Iterable[tuple[str, str]]
) -> list[int]:
    """The pids of the keys that have one; a key not cached is looked up (another process may have
    created it), never remembered as absent."""
    found, missing = [], []
    for key in keys:
        pid = cache.get(key)
        if pid is None:
            missing.append(key)
        else:
            found.append(pid)
    if not missing:
        return found
    if len(missing) > _SINGLE_LOOKUPS:
        table = {(t, c): pid for pid, t, c in db.execute("SELECT pid, type, code FROM params")}
        cache.update(table)
        return found + [table[k] for k in missing if k in table]
    for resource_type, code in missing:
        row = db.execute(
            "SELECT pid FROM params WHERE type = ? AND code = ?", (resource_type, code)
        ).fetchone()
        if row is not None:
            cache[(resource_type, code)] = row[0]
            found.append(row[0])
    return found


def _version(row: tuple) -> StoredVersion:
    return StoredVersion(row[1], row[2], row[3], row[4], "", row[5], row[0])


def _index_ordered(plan: SearchPlan) -> bool:
    """Whether the one searched type can be walked through an index in the result order."""
    if plan.types is None or len(plan.types) != 1:
        return False
    return not plan.sort or (len(plan.sort) == 1 and plan.sort[0].key == "_lastUpdated")


def choose_drivers(db: sqlite3.Connection, renderer: SqlRenderer, plan: SearchPlan) -> tuple[Driver, Driver]:
    """(what the page query starts from, what the count starts from).

    Two filters on one date or number parameter (a range such as `ge..&lt..`) start from the values
    meeting both when those are few. Otherwise the value filter with the fewest matching index rows,
    counted up to ESTIMATE_CAP (each count stops at the smallest so far; likely narrow filters are
    counted first, and one with at most FEW rows is taken at once); when even that one has many, the
    type is walked in result order if it can be (a page fills fast unless the filters rarely hold
    together), else the two smallest are intersected.
    """
    first = first_driver(plan.filters)
    if first is None or isinstance(plan.filters[first], IdFilter):
        return first, first
    candidates = [n for n, f in enumerate(plan.filters) if can_drive(f)]
    ordered = _index_ordered(plan)
    if len(candidates) == 1 and not ordered:
        return first, first
    same = _same_parameter(plan, candidates)
    if same is not None and plan.filters[same[0]].param.kind in ("date", "number"):
        a, b = (plan.filters[n] for n in same)
        if _count(db, renderer.range_estimate(a, b, ESTIMATE_CAP)) < ESTIMATE_CAP:
            return (RANGE, *same), (RANGE, *same)
    sizes: dict[int, int] = {}
    cap = ESTIMATE_CAP
    for n in sorted(candidates, key=lambda n: _narrowness(plan.filters[n])):
        sizes[n] = _count(db, renderer.estimate(plan.filters[n], cap))
        cap = max(1, min(cap, sizes[n]))
        if sizes[n] <= FEW:
            break
    ranked = sorted(sizes, key=sizes.__getitem__)
    if sizes[ranked[0]] < ESTIMATE_CAP or len(ranked) == 1:
        best = ranked[0]
        if ordered and sizes[best] >= ESTIMATE_CAP:
            return None, best
        if ordered and plan.sort and _walk_pays(db, plan, sizes[best]):
            return (WALK, best), best
        return best, best
    pair = (INTERSECT, *(same or ranked[:2]))
    return (None if ordered else pair), pair


def _walk_pays(db: sqlite3.Connection, plan: SearchPlan, listed: int) -> bool:
    if listed <= WALK_FROM:
        return False
    return (plan.limit + 1) * type_size(db, plan.types[0]) < WALK_ADVANTAGE * listed * listed


def type_size(db: sqlite3.Connection, resource_type: str) -> int:
    """Live resources of the type, counted at most every TYPE_SIZE_SECONDS per connection (an estimate
    for choosing a plan; every plan gives the same rows)."""
    key, now = (id(db), resource_type), time.monotonic()
    known = _type_sizes.get(key)
    if known is None or now - known[0] > TYPE_SIZE_SECONDS:
        if len(_type_sizes) > 1024:
            _type_sizes.clear()
        row = db.execute(
            "SELECT count(*) FROM resources WHERE type = ? AND deleted = 0", (resource_type,)
        ).fetchone()
        known = _type_sizes[key] = (now, row[0])
    return known[1]


def _narrowness(f: ValueFilter) -> int:
    """0 for a reference (usually a few resources), 1 for a system|code (a code can be on every resource
    of a type), 2 for the rest: the order in which the filters are counted."""
    if f.param.kind == "reference":
        return 0
    fields = {c.field for atom in f.atoms if isinstance(atom, tuple) for c in atom}
    return 1 if f.param.kind == "token" and "system" in fields and "code" in fields else 2


def _same_parameter(plan: SearchPlan, candidates: list[int]) -> tuple[int, int] | None:
    for n, a in enumerate(candidates):
        for b in candidates[n + 1 :]:
            if plan.filters[a].param == plan.filters[b].param:
                return (a, b)
    return None


def _count(db: sqlite3.Connection, rendered: tuple[str, list] | None) -> int:
    return db.execute(*rendered).fetchone()[0] if rendered is not None else 0


def run_search(db: sqlite3.Connection, pids: Pids, plan: SearchPlan) -> SearchPage:
    renderer = SqlRenderer(lambda keys: pids.resolve_sync(db, keys))
    pids.resolve_sync(db, param_keys(plan))  # warms the cache in one go
    page_driver, count_driver = choose_drivers(db, renderer, plan)
    matches: list[Found] = []
    more = False
    page = renderer.page(plan, page_driver) if plan.fetch_matches else None
    if page is not None:
        rows = db.execute(*page).fetchall()
        more = len(rows) > plan.limit
        rows = rows[: plan.limit]
        if plan.keyset is not None and plan.keyset.backwards:
            rows.reverse()
        matches = [Found(_version(row), (*row[6:], row[0])) for row in rows]
    total = None
    if plan.count_total:
        count = renderer.count(plan, count_driver)
        total = db.execute(*count).fetchone()[0] if count is not None else 0
    included = _included(db, renderer, plan, matches)
    return SearchPage(matches, included, total, more)


def _included(
    db: sqlite3.Connection, renderer: SqlRenderer, plan: SearchPlan, matches: list[Found]
) -> list[StoredVersion]:
    """Includes of the matches; `:iterate` ones again on what they brought, until nothing new comes."""
    if not plan.includes or not matches:
        return []
    seen = {(m.version.resource_type, m.version.id) for m in matches}
    frontier = [(m.version.position, m.version.resource_type, m.version.id) for m in matches]
    included: list[StoredVersion] = []
    specs = plan.includes
    while frontier and specs and len(included) < plan.max_included:
        added = []
        for spec in specs:
            rendered = renderer.include(spec, frontier, plan.max_included - len(included))
            if rendered is None:
                continue
            for row in db.execute(*rendered):
                if (row[1], row[2]) not in seen and len(included) < plan.max_included:
                    seen.add((row[1], row[2]))
                    included.append(_version(row))
                    added.append((row[0], row[1], row[2]))
        frontier = added
        specs = tuple(s for s in plan.includes if s.iterate)
    return included


def run_ids(db: sqlite3.Connection, pids: Pids, plan: SearchPlan, limit: int) -> list[str]:
    renderer = SqlRenderer(lambda keys: pids.resolve_sync(db, keys))
    rendered = renderer.ids(plan, limit, choose_drivers(db, renderer, plan)[1])
    return [row[0] for row in db.execute(*rendered)] if rendered is not None else []


def latest_position(db: sqlite3.Connection, resource_type: str) -> int:
    row = db.execute("SELECT max(hid) FROM history WHERE type = ?", (resource_type,)).fetchone()
    return row[0] or 0


def scan(db: sqlite3.Connection, resource_type: str, after: int, limit: int) -> list[StoredVersion]:
    """Live current versions of a type in row order after position `after` (for reindexing)."""
    rows = db.execute(
        "SELECT rid, type, id, version, last_updated, body FROM resources "
        "WHERE type = ? AND deleted = 0 AND rid > ? ORDER BY rid LIMIT ?",
        (resource_type, after, limit),
    ).fetchall()
    return [_version(row) for row in rows]


def replace_index(
    db: sqlite3.Connection, pids: Pids, entries: list[tuple[StoredVersion, IndexValues]]
) -> None:
    """New index rows for current versions (position = row id); the versions themselves stay as they are."""
    rows = []
    for version, index in entries:
        db.execute("DELETE FROM idx WHERE rid = ?", (version.position,))
        for code, values in index.items():
            pid = pids.ensure_sync(db, version.resource_type, code)
            rows += [(version.position, pid, *row) for row in rows_for(values)]
    if rows:
        db.executemany("INSERT INTO idx VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


class TypeWatch:
    """Tells a write transaction cheaply whether a watched type (e.g. SearchParameter) changed since it
    last asked: a process that commits a change to a watched type moves the modification stamp of a file
    beside the database, so every server process re-reads the type's position only when the stamp moved.
    A type is watched once `latest_position` was asked for it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: dict[str, tuple[int, int]] = {}  # type -> (file stamp, position)
        self.watched: set[str] = set()

    def stamp(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return 0

    def cached(self, resource_type: str) -> int | None:
        self.watched.add(resource_type)
        known = self._known.get(resource_type)
        return known[1] if known is not None and known[0] == self.stamp() else None

    def remember(self, resource_type: str, stamp: int, position: int) -> None:
        self._known[resource_type] = (stamp, position)

    def committed(self, resource_types: set[str]) -> None:
        """After a commit that wrote these types: forget them here and signal the other processes."""
        changed = resource_types & self.watched
        if not changed:
            return
        for resource_type in changed:
            self._known.pop(resource_type, None)
        stamp = max(self.stamp() + 1, time.time_ns())  # strictly later, whatever the clock's granularity
        self.path.touch(exist_ok=True)
        os.utime(self.path, ns=(stamp, stamp))
