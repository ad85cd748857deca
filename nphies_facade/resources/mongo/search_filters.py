"""The search plan's value conditions, sort keys and keyset as MongoDB query documents and stages.

A value filter is an `$elemMatch` on the `idx` array: the parameter code (`p`) and the atoms' conditions
hold on one entry, as they hold on one `idx` row in SQLite (sqlite/search_sql.py). The logical fields of
the plan's conditions map to the entry's columns through index_rows.FIELDS. A composite entry carries
its components' rows in `c` (documents.py), so each component is checked on its own column set.
"""

import re

from ..search.plan import (
    CompositeAtom,
    Cond,
    ParamRef,
    PresenceFilter,
    SearchPlan,
    SortSpec,
    ValueFilter,
    value_atoms,
)
from ..sqlite.index_rows import FIELDS

NOTHING: dict = {"_id": {"$in": []}}
EVERYTHING: dict = {}
# Sort keys of resources without a value: after every value, ascending or descending (as SQLite's).
TEXT_LAST_ASC, TEXT_LAST_DESC = "\U0010ffff", ""
NUMBER_LAST_ASC, NUMBER_LAST_DESC = 1.7976931348623157e308, -1.7976931348623157e308
_COMPARE = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


def after_prefix(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix` (None if there is none)."""
    last = ord(prefix[-1])
    if last == 0x10FFFF:
        return None
    following = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
    return prefix[:-1] + chr(following)


def cond_query(kind: str, cond: Cond, path: str = "") -> dict:
    """One condition as a query on an entry (`path` prefixes the column: a composite component)."""
    column = path + FIELDS[kind][cond.field]
    op, value = cond.op, cond.value
    if op == "eq":
        return {column: value} if value is not None else {column: {"$in": []}}
    if op in _COMPARE:
        return {column: {_COMPARE[op]: value}}
    if op == "null":
        return {column: None}
    if op == "notnull":
        return {column: {"$ne": None}}
    if op == "in":
        return {column: {"$in": list(value)}}
    if op == "contains":
        return {column: {"$regex": re.escape(value)}}
    if op == "prefix":
        upper = after_prefix(value)
        if upper is None:
            return {column: {"$regex": "^" + re.escape(value)}}
        return {column: {"$gte": value, "$lt": upper}}
    raise ValueError(f"unknown condition operator {op!r}")


def conjunction(queries: list[dict]) -> dict:
    """Merges queries on distinct columns into one document (index bounds stay one compound range);
    queries that name the same column twice go under `$and`."""
    merged: dict = {}
    rest: list[dict] = []
    for query in queries:
        for column, condition in query.items():
            if column not in merged:
                merged[column] = condition
            elif (
                isinstance(merged[column], dict)
                and isinstance(condition, dict)
                and not (merged[column].keys() & condition.keys())
                and all(k.startswith("$") for k in (*merged[column], *condition))
            ):
                merged[column] = {**merged[column], **condition}
            else:
                rest.append({column: condition})
    if rest:
        merged.setdefault("$and", []).extend(rest)
    return merged


def atom_query(kind: str, atom: tuple[Cond, ...], path: str = "") -> dict:
    return conjunction([cond_query(kind, cond, path) for cond in atom])


def any_of(queries: list[dict]) -> dict:
    if not queries:
        return NOTHING
    return queries[0] if len(queries) == 1 else {"$or": queries}


def composite_query(atom: CompositeAtom) -> dict:
    """The first component's key, then every component against its part, as matching.py checks them."""
    parts = atom.match.parts
    queries = [atom_query("composite", atom.first), {"c": {"$size": len(parts)}}]
    for n, (param, part) in enumerate(parts):
        atoms = value_atoms(param.type, None, part, atom.now_ms)
        queries.append(any_of([atom_query(param.type, a, f"c.{n}.") for a in atoms]))
    return {"$and": queries}


def entry_query(param: ParamRef, atoms: tuple) -> dict:
    """What one `idx` entry of the parameter must hold for some atom."""
    codes = {"p": param.codes[0]} if len(param.codes) == 1 else {"p": {"$in": list(param.codes)}}
    rendered = [
        composite_query(a) if isinstance(a, CompositeAtom) else atom_query(param.kind, a) for a in atoms
    ]
    if len(rendered) == 1 and "$or" not in rendered[0] and "p" not in rendered[0]:
        return {**codes, **rendered[0]}
    return {**codes, "$or": rendered}


def of_types(param: ParamRef, query: dict) -> dict:
    """Entries count only on resources of the parameter's types (SQLite's pid is per type and code)."""
    if param.types is None:
        return query
    types = param.types[0] if len(param.types) == 1 else {"$in": list(param.types)}
    return {"type": types, **query}


def value_filter(f: ValueFilter) -> dict:
    if not f.atoms:
        return EVERYTHING if f.negate else NOTHING
    matched = of_types(f.param, {"idx": {"$elemMatch": entry_query(f.param, f.atoms)}})
    return {"$nor": [matched]} if f.negate else matched


def presence_filter(f: PresenceFilter) -> dict:
    codes = {"$in": list(f.param.codes)}
    present = of_types(f.param, {"idx": {"$elemMatch": {"p": codes}}})
    return present if f.present else {"$nor": [present]}


def id_filter(ids: tuple[str, ...]) -> dict:
    return {"id": {"$in": list(ids)}}


# ----- sort keys and keyset -----


def sort_column(spec: SortSpec) -> str:
    """The entry column a parameter sort reads (as sqlite/search_sql.py reads it)."""
    kind = spec.param.kind
    if kind == "date":
        return FIELDS[kind]["hi" if spec.descending else "lo"]
    if kind in ("number", "quantity"):
        return FIELDS[kind]["value"]
    if kind == "reference":
        return FIELDS[kind]["url"]
    return "s1"


def sort_last(spec: SortSpec) -> object:
    numeric = sort_column(spec).startswith("n")
    if spec.descending:
        return NUMBER_LAST_DESC if numeric else TEXT_LAST_DESC
    return NUMBER_LAST_ASC if numeric else TEXT_LAST_ASC


def sort_field(n: int, spec: SortSpec) -> str:
    if spec.key == "_id":
        return "id"
    if spec.key == "_lastUpdated":
        return "last_updated"
    return f"k{n}"


def sort_key_stages(plan: SearchPlan) -> list[dict]:
    """`$addFields` stages that compute each parameter sort key: the lowest value of the parameter's
    entries ascending, the highest descending, and the `last` value when it has none."""
    stages: list[dict] = []
    for n, spec in enumerate(plan.sort):
        if spec.key in ("_id", "_lastUpdated"):
            continue
        field, column = f"k{n}", sort_column(spec)
        entries = {
            "$filter": {
                "input": "$idx",
                "as": "e",
                "cond": {
                    "$and": [{"$in": ["$$e.p", list(spec.param.codes)]}, {"$gt": [f"$$e.{column}", None]}]
                },
            }
        }
        stages += [
            {"$addFields": {field: entries}},
            {"$addFields": {field: {"$max" if spec.descending else "$min": f"${field}.{column}"}}},
            {"$addFields": {field: {"$ifNull": [f"${field}", sort_last(spec)]}}},
        ]
    return stages


def order(plan: SearchPlan) -> list[tuple[str, bool]]:
    """(field, descending) per sort key, then the row key `rid`; reversed when paging backwards."""
    keys = [(sort_field(n, spec), spec.descending) for n, spec in enumerate(plan.sort)]
    keys.append(("rid", plan.sort[-1].descending if plan.sort else False))
    if plan.keyset is not None and plan.keyset.backwards:
        keys = [(field, not descending) for field, descending in keys]
    return keys


def sort_document(keys: list[tuple[str, bool]]) -> dict:
    sort: dict = {}
    for field, descending in keys:
        sort.setdefault(field, -1 if descending else 1)
    return sort


def keyset_filter(keys: list[tuple[str, bool]], values: tuple) -> dict:
    """Rows after `values` in the order `keys` gives: some key is past its value, all before it equal."""
    branches = []
    for n, (field, descending) in enumerate(keys):
        equal = [{f: v} for (f, _), v in zip(keys[:n], values[:n], strict=True)]
        past = {field: {"$lt" if descending else "$gt": values[n]}}
        branches.append({"$and": [*equal, past]} if equal else past)
    return any_of(branches)
