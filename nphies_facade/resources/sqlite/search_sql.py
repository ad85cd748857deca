"""A search plan rendered as SQLite SQL over `resources` and the generic `idx` table.

Shapes (r is the searched resource, one `idx` row is one index entry; see index_rows.py):

  driving filter   r.rid IN (SELECT rid FROM idx WHERE pid = ? AND <atom> UNION ALL ...)
  other filters    [NOT] EXISTS (SELECT 1 FROM idx INDEXED BY idx_rid_pid WHERE rid = r.rid AND pid = ?
                   AND (<atom> OR ...))                                     (NOT: :not; :missing alike)
  _id              r.id IN (?, ...)
  chain            r.rid IN (SELECT i.rid FROM resources t CROSS JOIN idx i ON i.s1 = t.id AND
                   i.s2 = t.type AND i.pid = ? WHERE <t is a live target meeting the inner filters>)
  _has             r.rid IN (SELECT t.rid FROM resources s CROSS JOIN idx i ON i.rid = s.rid AND
                   i.pid = ? CROSS JOIN resources t ON t.type = i.s2 AND t.id = i.s1 WHERE <s ...>)
  page             SELECT ... FROM (SELECT r.*, <sort keys> FROM resources r WHERE ...)
                   WHERE (<sort keys>, rid) > (<cursor>) ORDER BY <sort keys>, rid LIMIT n + 1

A query lists the matches of one filter (the driver, chosen by search_exec.py from estimated sizes) and
probes the others per candidate, or, when every filter matches many rows, walks the type in result order
(resources_live, resources_recent) probing each; a page sorted by _lastUpdated may also walk the type
looking each row up in the driver's list (no sort of the whole list, and the walk stops at the page end). An atom is a conjunction on one row led by `pid` and an
equality or range on s1/n1/n2, so listing lands on a covering index: idx_key (pid, s1, s2, rid),
idx_low (pid, n1, n2, rid), idx_high (pid, n2, n1, rid); probes, sort keys and includes use idx_rid_pid.
"""

import itertools
from collections.abc import Callable, Iterable
from functools import lru_cache

import orjson

from ..search.matching import value_matches
from ..search.plan import (
    ChainFilter,
    CompositeAtom,
    Cond,
    Filter,
    HasFilter,
    IdFilter,
    IncludeSpec,
    ParamRef,
    PresenceFilter,
    SearchPlan,
    SortSpec,
    ValueFilter,
)
from ..search.query import CompositeMatch, RangeMatch, ReferenceMatch, TokenMatch
from .index_rows import FIELDS, MULTI, composite_parts

PidResolver = Callable[[Iterable[tuple[str, str]]], list[int]]
# Which filter a query starts from: one (its index rows), two ((INTERSECT, a, b): their rows intersected;
# (RANGE, a, b): two filters on one parameter, see SqlRenderer.range_rows), or none (the type is walked).
# (WALK, a): the type is walked in result order and a row is kept when it is in filter a's rows.
Driver = int | tuple[str, int, int] | tuple[str, int] | None
INTERSECT, RANGE, WALK = "intersect", "range", "walk"

ROW_COLUMNS = ("rid", "type", "id", "version", "last_updated", "body")
# Sort keys of resources without a value: after every value, ascending or descending.
TEXT_LAST_ASC, TEXT_LAST_DESC = "\U0010ffff", ""
NUMBER_LAST_ASC, NUMBER_LAST_DESC = 1.7976931348623157e308, -1.7976931348623157e308
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
FIRST = "first"
NOTHING = "0"  # a condition no row meets: a page, count or id query with it is not run at all
_MATCH_CLASSES = {cls.__name__: cls for cls in (TokenMatch, ReferenceMatch, RangeMatch)}


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _after_prefix(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix` (None if there is none)."""
    last = ord(prefix[-1])
    if last == 0x10FFFF:
        return None
    following = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
    return prefix[:-1] + chr(following)


# ----- composites: checked part by part with the in-memory matcher -----


def composite_match_json(match: CompositeMatch) -> str:
    parts = []
    for param, part in match.parts:
        if isinstance(part, str):
            parts.append([param.type, "str", part])
        else:
            parts.append([param.type, type(part).__name__, *(getattr(part, f) for f in part.__slots__)])
    return orjson.dumps(parts).decode()


@lru_cache(maxsize=256)
def _decoded_match(text: str) -> tuple[tuple[str, object], ...]:
    out = []
    for kind, cls, *fields in orjson.loads(text):
        out.append((kind, fields[0] if cls == "str" else _MATCH_CLASSES[cls](*fields)))
    return tuple(out)


def composite_match(values_json: str | None, match_json: str, now_ms: float) -> int:
    """SQL function: 1 when a composite row's components match every part, as matching.py decides."""
    if values_json is None:
        return 0
    values = composite_parts(values_json)
    parts = _decoded_match(match_json)
    if len(values) != len(parts):
        return 0
    return int(
        all(
            value_matches(kind, None, part, value, now_ms)
            for (kind, part), (_, value) in zip(parts, values, strict=True)
        )
    )


SQL_FUNCTIONS = (("composite_match", 3, composite_match),)


# ----- rendering -----


class SqlRenderer:
    """Renders plans; `pids` turns (type, code) pairs into the pids that exist (absent ones are left out)."""

    def __init__(self, pids: PidResolver) -> None:
        self._pids = pids
        self._aliases = itertools.count()

    # conditions

    def _pid_clause(self, param: ParamRef, column: str, args: list) -> str | None:
        if param.types is None:
            args.extend(param.codes)
            return f"{column} IN (SELECT pid FROM params WHERE code IN ({_marks(len(param.codes))}))"
        pids = self._pids(param.keys())
        if not pids:
            return None
        args.extend(pids)
        return f"{column} = ?" if len(pids) == 1 else f"{column} IN ({_marks(len(pids))})"

    @staticmethod
    def _cond(kind: str, cond: Cond, args: list) -> str:
        column = FIELDS[kind][cond.field]
        op, value = cond.op, cond.value
        if op == "eq":
            args.append(value)
            return f"{column} = ?"
        if op in _COMPARE:
            args.append(value)
            return f"{column} {_COMPARE[op]} ?"
        if op == "null":
            return f"{column} IS NULL"
        if op == "notnull":
            return f"{column} IS NOT NULL"
        if op == "in":
            args.extend(value)
            return f"{column} IN ({_marks(len(value))})"
        if op == "contains":
            args.append(value)
            return f"instr({column}, ?) > 0"
        if op == "prefix":
            upper = _after_prefix(value)
            if upper is None:
                args.append(value)
                return f"substr({column}, 1, {len(value)}) = ?"
            args.extend((value, upper))
            return f"{column} >= ? AND {column} < ?"
        raise ValueError(f"unknown condition operator {op!r}")

    def _atom(self, kind: str, atom: tuple[Cond, ...] | CompositeAtom, args: list) -> str:
        if isinstance(atom, CompositeAtom):
            parts = [self._cond(kind, c, args) for c in atom.first]
            args.extend((composite_match_json(atom.match), atom.now_ms))
            parts.append("composite_match(s2, ?, ?)")
        else:
            parts = [self._cond(kind, c, args) for c in atom]
        return " AND ".join(parts) or "1"

    # filters

    def _value_rids(self, f: ValueFilter, args: list) -> str | None:
        pid_args: list = []
        pid = self._pid_clause(f.param, "pid", pid_args)
        if pid is None or not f.atoms:
            return None
        selects = []
        for atom in f.atoms:
            args.extend(pid_args)
            selects.append(f"SELECT rid FROM idx WHERE {pid} AND {self._atom(f.param.kind, atom, args)}")
        return " UNION ALL ".join(selects)

    def _probe(self, f: ValueFilter, alias: str, args: list) -> str:
        """The filter checked on one candidate: its index rows for the parameter, then the atoms."""
        pid = self._pid_clause(f.param, "pid", args)
        if pid is None or not f.atoms:
            return "1" if f.negate else "0"
        atoms = " OR ".join(f"({self._atom(f.param.kind, atom, args)})" for atom in f.atoms)
        exists = f"EXISTS (SELECT 1 FROM idx INDEXED BY idx_rid_pid WHERE rid = {alias}.rid AND {pid} AND ({atoms}))"
        return f"NOT {exists}" if f.negate else exists

    def _filter(self, f: Filter, alias: str, args: list, drives: bool) -> str:
        if isinstance(f, IdFilter):
            args.extend(f.ids)
            return f"{alias}.id IN ({_marks(len(f.ids))})"
        if isinstance(f, ValueFilter):
            if not drives:
                return self._probe(f, alias, args)
            rids = self._value_rids(f, args)
            return NOTHING if rids is None else f"{alias}.rid IN ({rids})"
        if isinstance(f, PresenceFilter):
            pid = self._pid_clause(f.param, "pid", args)
            if pid is None:
                return "0" if f.present else "1"
            exists = f"EXISTS (SELECT 1 FROM idx INDEXED BY idx_rid_pid WHERE rid = {alias}.rid AND {pid})"
            return exists if f.present else f"NOT {exists}"
        if isinstance(f, ChainFilter):
            return self._chain(f, alias, args)
        return self._has(f, alias, args)

    def _chain(self, f: ChainFilter, alias: str, args: list) -> str:
        n = next(self._aliases)
        t, i = f"t{n}", f"i{n}"
        pid = self._pid_clause(f.param, f"{i}.pid", args)
        if pid is None:
            return "0"
        where = self.where(f.target_types, f.inner, t, args)
        return (
            f"{alias}.rid IN (SELECT {i}.rid FROM resources {t} CROSS JOIN idx {i} "
            f"ON {i}.s1 = {t}.id AND {i}.s2 = {t}.type AND {pid} WHERE {where})"
        )

    def _has(self, f: HasFilter, alias: str, args: list) -> str:
        n = next(self._aliases)
        s, i, t = f"s{n}", f"i{n}", f"t{n}"
        pid = self._pid_clause(f.param, f"{i}.pid", args)
        if pid is None:
            return "0"
        where = self.where((f.source_type,), f.inner, s, args)
        return (
            f"{alias}.rid IN (SELECT {t}.rid FROM resources {s} CROSS JOIN idx {i} INDEXED BY idx_rid_pid ON {i}.rid = {s}.rid "
            f"AND {pid} CROSS JOIN resources {t} ON {t}.type = {i}.s2 AND {t}.id = {i}.s1 WHERE {where})"
        )

    def where(
        self,
        types: tuple[str, ...] | None,
        filters: tuple[Filter, ...],
        alias: str,
        args: list,
        driver: Driver | str = FIRST,
    ) -> str:
        """`driver` is the filter whose matches a query starts from (listed through the index), or two
        value filters whose lists are intersected; the other value filters are probed per candidate.
        FIRST: the first filter that can drive; None: none (the type is walked); (WALK, a): the type is
        walked, and filter a's list is a set each walked row is looked up in."""
        if driver == FIRST:
            driver = first_driver(filters)
        member = driver[1] if isinstance(driver, tuple) and driver[0] == WALK else None
        # Starting from a list of row ids, `+` keeps SQLite from walking the type's index instead.
        listed = member is None and (
            isinstance(driver, tuple) or (driver is not None and isinstance(filters[driver], ValueFilter))
        )
        column = f"+{alias}" if listed else alias
        parts = [f"{column}.deleted = 0"]
        if types:
            args.extend(types)
            parts.append(
                f"{column}.type = ?" if len(types) == 1 else f"{column}.type IN ({_marks(len(types))})"
            )
        done: set[int] = set()
        if member is not None:
            driver = member  # its rows are a set the walked rows are looked up in
        elif isinstance(driver, tuple):
            parts.append(self._pair_rows(driver, filters, alias, args))
            done = set(driver[1:]) if driver[0] == INTERSECT else set()
        elif listed:
            parts.append(self._listed(filters, driver, alias, args))
            done = {
                n for n, f in enumerate(filters) if n == driver or isinstance(f, ValueFilter | PresenceFilter)
            }
        for n, f in enumerate(filters):
            if n not in done:
                parts.append(self._filter(f, alias, args, n == driver))
        return NOTHING if NOTHING in parts else " AND ".join(parts)

    def _listed(self, filters: tuple[Filter, ...], driver: int, alias: str, args: list) -> str:
        """The driver's rows, with the other value and :missing filters probed on them before any
        resource row is read."""
        rids = self._value_rids(filters[driver], args)
        if rids is None:
            return NOTHING
        probes = [
            self._filter(f, "d", args, False)
            for n, f in enumerate(filters)
            if n != driver and isinstance(f, ValueFilter | PresenceFilter)
        ]
        if not probes:
            return f"{alias}.rid IN ({rids})"
        return f"{alias}.rid IN (SELECT d.rid FROM ({rids}) d WHERE {' AND '.join(probes)})"

    def _pair_rows(self, driver: tuple, filters: tuple[Filter, ...], alias: str, args: list) -> str:
        how, a, b = driver
        rows = (
            self.range_rows(filters[a], filters[b], args)
            if how == RANGE
            else self._intersection(filters[a], filters[b], args)
        )
        return NOTHING if rows is None else f"{alias}.rid IN ({rows})"

    def _intersection(self, a: ValueFilter, b: ValueFilter, args: list) -> str | None:
        lists = [self._value_rids(f, args) for f in (a, b)]
        if any(rids is None for rids in lists):
            return None
        return " INTERSECT ".join(f"SELECT rid FROM ({rids})" for rids in lists)

    def range_rows(self, a: ValueFilter, b: ValueFilter, args: list) -> str | None:
        """Candidates for two filters on one date or number parameter (e.g. `ge..&lt..`): resources with
        one value meeting both, found by a narrow scan of the lower bounds (a value's `hi` is at most the
        parameter's widest value above its `lo`), and every resource with several values; the filters
        themselves are still checked on each candidate."""
        pid_args: list = []
        pid = self._pid_clause(a.param, "pid", pid_args)
        if pid is None:
            return None
        kind, selects = a.param.kind, []
        for x in a.atoms:
            for y in b.atoms:
                args.extend(pid_args)
                conds = [self._cond(kind, c, args) for c in (*x, *y)]
                conds += self._lower_bounds(kind, (*x, *y), pid, pid_args, args)
                selects.append(f"SELECT rid FROM idx WHERE {pid} AND {' AND '.join(conds)}")
        args.extend(pid_args)
        args.append(MULTI)
        selects.append(f"SELECT rid FROM idx WHERE {pid} AND {FIELDS[kind]['multi']} = ?")
        return " UNION ALL ".join(selects)

    @staticmethod
    def _lower_bounds(kind: str, conds: tuple[Cond, ...], pid: str, pid_args: list, args: list) -> list[str]:
        """`hi > x` implies `lo > x - widest`: a bound the lower-bound index can range over."""
        if kind != "date":
            return []
        bounds = []
        for cond in conds:
            if cond.field == "hi" and cond.op in ("gt", "ge"):
                args.append(cond.value)
                args.extend(pid_args)
                widest = f"(SELECT max(n3) FROM idx WHERE {pid} AND n3 IS NOT NULL)"
                bounds.append(f"n1 {_COMPARE[cond.op]} ? - {widest}")
        return bounds

    def range_estimate(self, a: ValueFilter, b: ValueFilter, cap: int) -> tuple[str, list] | None:
        args: list = []
        rows = self.range_rows(a, b, args)
        return (
            None
            if rows is None
            else (f"SELECT count(*) FROM (SELECT 1 FROM ({rows}) LIMIT {int(cap)})", args)
        )

    def estimate(self, f: ValueFilter, cap: int) -> tuple[str, list] | None:
        """How many index rows match the filter, counted up to `cap` (None: none can)."""
        args: list = []
        rids = self._value_rids(f, args)
        if rids is None:
            return None
        return f"SELECT count(*) FROM (SELECT 1 FROM ({rids}) LIMIT {int(cap)})", args

    # sort keys and keyset

    def _sort_expr(self, spec: SortSpec, args: list, filtered: bool) -> str:
        # With a filter to start from, `+` keeps SQLite from walking a whole type in index order instead.
        if spec.key == "_id":
            return "+r.id" if filtered else "r.id"
        if spec.key == "_lastUpdated":
            return "+r.last_updated" if filtered else "r.last_updated"
        param = spec.param
        kind = param.kind
        if kind == "date":
            column = FIELDS[kind]["hi" if spec.descending else "lo"]
        elif kind in ("number", "quantity"):
            column = FIELDS[kind]["value"]
        elif kind == "reference":
            column = FIELDS[kind]["url"]
        else:
            column = "s1"
        numeric = column.startswith("n")
        last = (
            (NUMBER_LAST_DESC if numeric else TEXT_LAST_DESC)
            if spec.descending
            else (NUMBER_LAST_ASC if numeric else TEXT_LAST_ASC)
        )
        pid_args: list = []
        pid = self._pid_clause(param, "pid", pid_args)
        if pid is None:
            args.append(last)
            return "?"
        args.append(last)
        args.extend(pid_args)
        aggregate = "max" if spec.descending else "min"
        return f"(SELECT coalesce({aggregate}({column}), ?) FROM idx INDEXED BY idx_rid_pid WHERE rid = r.rid AND {pid})"

    @staticmethod
    def _order(plan: SearchPlan) -> list[tuple[str, bool]]:
        """(column of the page query, descending) per sort key, then the row id."""
        keys = [(f"k{n}", spec.descending) for n, spec in enumerate(plan.sort)]
        rid_descending = plan.sort[-1].descending if plan.sort else False
        keys.append(("rid", rid_descending))
        if plan.keyset is not None and plan.keyset.backwards:
            keys = [(column, not descending) for column, descending in keys]
        return keys

    def page(self, plan: SearchPlan, driver: Driver | str = FIRST) -> tuple[str, list] | None:
        args: list = []
        if driver == FIRST:
            driver = first_driver(plan.filters)
        walked = driver is None or (isinstance(driver, tuple) and driver[0] == WALK)
        filtered = not walked or any(isinstance(f, ChainFilter | HasFilter) for f in plan.filters)
        keys = "".join(
            f", {self._sort_expr(spec, args, filtered)} AS k{n}" for n, spec in enumerate(plan.sort)
        )
        where = self.where(plan.types, plan.filters, "r", args, driver)
        if where == NOTHING:
            return None
        # The rows are chosen and ordered on their keys alone; only the page's rows bring their bodies.
        key_columns = "".join(f", k{n}" for n in range(len(plan.sort)))
        chosen = f"SELECT rid{key_columns} FROM (SELECT r.rid AS rid{keys} FROM resources r WHERE {where})"
        order = self._order(plan)
        if plan.keyset is not None:
            chosen += " WHERE " + _keyset_clause(order, plan.keyset.values, args)
        ordering = ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in order)
        chosen += f" ORDER BY {ordering} LIMIT ?"
        args.append(plan.limit + 1)
        outer_keys = "".join(f", p.k{n}" for n in range(len(plan.sort)))
        outer_order = ", ".join(f"p.{c} {'DESC' if d else 'ASC'}" for c, d in order)
        sql = (
            f"SELECT r.rid, r.type, r.id, r.version, r.last_updated, r.body{outer_keys} FROM ({chosen}) p "
            f"CROSS JOIN resources r ON r.rid = p.rid ORDER BY {outer_order}"
        )
        return sql, args

    def count(self, plan: SearchPlan, driver: Driver | str = FIRST) -> tuple[str, list] | None:
        args: list = []
        where = self.where(plan.types, plan.filters, "r", args, driver)
        return None if where == NOTHING else (f"SELECT count(*) FROM resources r WHERE {where}", args)

    def ids(self, plan: SearchPlan, limit: int, driver: Driver | str = FIRST) -> tuple[str, list] | None:
        args: list = []
        where = self.where(plan.types, plan.filters, "r", args, driver)
        if where == NOTHING:
            return None
        args.append(limit)
        return f"SELECT r.id FROM resources r WHERE {where} ORDER BY r.rid LIMIT ?", args

    # includes

    def include(
        self, spec: IncludeSpec, frontier: list[tuple[int, str, str]], limit: int
    ) -> tuple[str, list] | None:
        """What `spec` adds for the found (rid, type, id) rows; None when it cannot add anything."""
        types = {t for _, t, _ in frontier}
        if spec.reverse:
            return self._reverse_include(spec, frontier, limit)
        pids = self._pids([p for p in spec.params if p[0] in types])
        if not pids:
            return None
        args: list = [row[0] for row in frontier] + pids
        sql = (
            "SELECT t.rid, t.type, t.id, t.version, t.last_updated, t.body FROM idx i INDEXED BY idx_rid_pid "
            "CROSS JOIN resources t "
            f"ON t.type = i.s2 AND t.id = i.s1 WHERE i.rid IN ({_marks(len(frontier))}) "
            f"AND i.pid IN ({_marks(len(pids))}) AND t.deleted = 0"
        )
        if spec.target_type is not None:
            sql += " AND i.s2 = ?"
            args.append(spec.target_type)
        args.append(limit)
        return sql + " LIMIT ?", args

    def _reverse_include(
        self, spec: IncludeSpec, frontier: list[tuple[int, str, str]], limit: int
    ) -> tuple[str, list] | None:
        pids = self._pids(spec.params)
        if not pids:
            return None
        ids_by_type: dict[str, list[str]] = {}
        for _, resource_type, resource_id in frontier:
            if spec.target_type in (None, resource_type):
                ids_by_type.setdefault(resource_type, []).append(resource_id)
        if not ids_by_type:
            return None
        args: list = []
        selects = []
        for resource_type, ids in ids_by_type.items():
            args += [*pids, resource_type, *ids]
            selects.append(
                "SELECT s.rid, s.type, s.id, s.version, s.last_updated, s.body FROM idx i CROSS JOIN "
                f"resources s ON s.rid = i.rid WHERE i.pid IN ({_marks(len(pids))}) AND i.s2 = ? "
                f"AND i.s1 IN ({_marks(len(ids))}) AND s.deleted = 0"
            )
        args.append(limit)
        return " UNION ".join(selects) + " LIMIT ?", args


def can_drive(f: Filter) -> bool:
    """Whether a query can start from the filter's matches, listed through an index."""
    if isinstance(f, ValueFilter):
        return not f.negate and bool(f.atoms)
    return isinstance(f, IdFilter)


def first_driver(filters: tuple[Filter, ...]) -> int | None:
    """An `_id` filter, else the first value filter that can drive."""
    ids = [n for n, f in enumerate(filters) if isinstance(f, IdFilter)]
    return ids[0] if ids else next((n for n, f in enumerate(filters) if can_drive(f)), None)


def _keyset_clause(keys: list[tuple[str, bool]], values: tuple, args: list) -> str:
    """Rows after `values` in the order `keys` gives (row values when every key runs one way)."""
    if len({descending for _, descending in keys}) == 1:
        args.extend(values)
        columns = ", ".join(column for column, _ in keys)
        return f"({columns}) {'<' if keys[0][1] else '>'} ({_marks(len(keys))})"
    (column, descending), *rest = keys
    op = "<" if descending else ">"
    if not rest:
        args.append(values[0])
        return f"{column} {op} ?"
    args += [values[0], values[0]]
    inner = _keyset_clause(rest, values[1:], args)
    return f"({column} {op} ? OR ({column} = ? AND {inner}))"
