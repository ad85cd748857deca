"""The backend-neutral search plan: a SearchQuery as predicates on index entries, sort keys, keyset, includes.

A criterion becomes a filter on one parameter's index entries: `atoms` are ORed, the conditions of one
atom hold on the same entry (an `idx` row in SQLite, an array element in MongoDB). Conditions name the
logical fields of a value kind (`code`, `system`, `lo`, `hi` ...); each backend maps them to its own
columns or fields and renders the plan (sqlite/search_sql.py). The conditions say exactly what
matching.py decides, so a backend that renders them faithfully returns what the in-memory matcher would.
"""

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

import orjson

from ..errors import bad_request
from ..types import supported_types
from .converters import normalize_string, reference_string_values
from .definitions import SearchParam, SearchRegistry
from .matching import approximate_bounds, approximate_date_bounds
from .query import (
    CompositeMatch,
    Criterion,
    HasCriterion,
    Include,
    RangeMatch,
    ReferenceMatch,
    SearchQuery,
    SortKey,
    TokenMatch,
)

MAX_INCLUDED = 1000


@dataclass(frozen=True, slots=True)
class Cond:
    """`field op value`; ops: eq lt le gt ge prefix contains in (a tuple) null notnull."""

    field: str
    op: str
    value: object = None


Atom = tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class CompositeAtom:
    """A composite entry: `first` narrows on the first component's key; every component is then checked
    part by part as matching.py checks a CompositeValue."""

    first: Atom
    match: CompositeMatch
    now_ms: float


@dataclass(frozen=True, slots=True)
class ParamRef:
    """The index entries of parameter `codes` on resources of `types` (None: of every type)."""

    kind: str
    codes: tuple[str, ...]
    types: tuple[str, ...] | None

    def keys(self) -> list[tuple[str, str]]:
        return [(t, c) for t in self.types or () for c in self.codes]


@dataclass(frozen=True, slots=True)
class ValueFilter:
    """Some entry matches some atom (with `negate`: no entry matches any atom)."""

    param: ParamRef
    atoms: tuple[Atom | CompositeAtom, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class PresenceFilter:
    param: ParamRef
    present: bool


@dataclass(frozen=True, slots=True)
class IdFilter:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChainFilter:
    """The reference `param` points at a live resource of `target_types` that meets every `inner` filter."""

    param: ParamRef
    target_types: tuple[str, ...]
    inner: tuple["Filter", ...]


@dataclass(frozen=True, slots=True)
class HasFilter:
    """A live `source_type` resource meeting every `inner` filter points here through `param`."""

    source_type: str
    param: ParamRef
    inner: tuple["Filter", ...]


Filter = ValueFilter | PresenceFilter | IdFilter | ChainFilter | HasFilter


@dataclass(frozen=True, slots=True)
class SortSpec:
    """`key` is `_id`, `_lastUpdated` (resource columns) or `param` (the lowest value ascending, the
    highest descending; resources without one come last either way)."""

    key: str
    descending: bool
    param: ParamRef | None = None


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    """Forward: what the (source type, reference code) `params` of a found resource point at. Reverse:
    resources whose `params` point at a found resource. `target_type` narrows what is pointed at."""

    reverse: bool
    iterate: bool
    params: tuple[tuple[str, str], ...]
    target_type: str | None


@dataclass(frozen=True, slots=True)
class Keyset:
    """The position a page continues from: the sort values and row key of a row, and the direction."""

    values: tuple
    backwards: bool


@dataclass(frozen=True, slots=True)
class SearchPlan:
    types: tuple[str, ...] | None
    filters: tuple[Filter, ...]
    sort: tuple[SortSpec, ...] = ()
    limit: int = 50
    keyset: Keyset | None = None
    includes: tuple[IncludeSpec, ...] = ()
    count_total: bool = False
    fetch_matches: bool = True
    max_included: int = MAX_INCLUDED


def param_keys(plan: SearchPlan) -> set[tuple[str, str]]:
    """Every (resource type, code) the plan's filters and sort keys read."""
    keys: set[tuple[str, str]] = set()
    for f in _walk(plan.filters):
        keys.update(f.param.keys() if not isinstance(f, IdFilter) else ())
    for spec in plan.sort:
        if spec.param is not None:
            keys.update(spec.param.keys())
    return keys


def only_tokens_and_ids(plan: SearchPlan) -> bool:
    """Whether the plan's filters are `_id` and plain token equalities (what `find_ids` answers)."""
    for f in plan.filters:
        if isinstance(f, IdFilter):
            continue
        if not isinstance(f, ValueFilter) or f.param.kind != "token" or f.negate:
            return False
        if any(
            isinstance(a, CompositeAtom) or any(c.field not in ("code", "system") for c in a) for a in f.atoms
        ):
            return False
    return True


def _walk(filters: Iterable[Filter]) -> Iterator[Filter]:
    for f in filters:
        yield f
        if isinstance(f, ChainFilter | HasFilter):
            yield from _walk(f.inner)


# ----- criteria -> filters -----


def _prefix_cond(field: str, text: str) -> Cond:
    return Cond(field, "prefix", text) if text else Cond(field, "notnull")


def string_atoms(modifier: str | None, match: str) -> tuple[Atom, ...]:
    if modifier == "exact":
        return ((Cond("norm", "eq", normalize_string(match)), Cond("exact", "eq", match)),)
    if modifier == "contains":
        return ((Cond("norm", "contains", match) if match else Cond("norm", "notnull"),),)
    return ((_prefix_cond("norm", match),),)


def _system_cond(system: str | None) -> Cond:
    return Cond("system", "eq", system) if system is not None else Cond("system", "null")


def token_atoms(modifier: str | None, match: object) -> tuple[Atom, ...]:
    if modifier == "text":
        return ((_prefix_cond("text", match),),)
    if modifier == "of-type":
        type_system, type_code, code = match
        type_key = (
            None if type_system is None and type_code is None else f"{type_system or ''}|{type_code or ''}"
        )
        type_cond = Cond("type", "eq", type_key) if type_key is not None else Cond("type", "null")
        return ((Cond("code", "eq", code), type_cond),)
    assert isinstance(match, TokenMatch)
    if not match.system_given:
        return ((Cond("code", "eq", match.code),),)
    if match.code is None:
        return ((_system_cond(match.system),),)
    return ((Cond("code", "eq", match.code), _system_cond(match.system)),)


def reference_atoms(match: ReferenceMatch) -> tuple[Atom, ...]:
    if match.url is not None:
        atoms: list[Atom] = [(Cond("key", "eq", match.url), Cond("url", "eq", match.url))]
        parsed = reference_string_values(match.url)
        if parsed and parsed[0].id is not None:
            atoms.insert(0, (Cond("key", "eq", parsed[0].id), Cond("url", "eq", match.url)))
        return tuple(atoms)
    if match.type is not None:
        return ((Cond("key", "eq", match.id), Cond("type", "eq", match.type)),)
    return ((Cond("key", "eq", match.id), Cond("type", "notnull")),)


def date_atoms(match: RangeMatch, now_ms: float) -> tuple[Atom, ...]:
    plo, phi = match.lo, match.hi
    within = (Cond("lo", "ge", plo), Cond("hi", "le", phi))
    prefix = match.prefix
    if prefix == "eq":
        return (within,)
    if prefix == "ne":
        return ((Cond("lo", "lt", plo),), (Cond("hi", "gt", phi),))
    if prefix == "gt":
        return ((Cond("hi", "gt", phi),),)
    if prefix == "lt":
        return ((Cond("lo", "lt", plo),),)
    if prefix == "ge":
        return ((Cond("hi", "gt", phi),), within)
    if prefix == "le":
        return ((Cond("lo", "lt", plo),), within)
    if prefix == "sa":
        return ((Cond("lo", "ge", phi),),)
    if prefix == "eb":
        return ((Cond("hi", "le", plo),),)
    low, high = approximate_date_bounds(match, now_ms)
    return ((Cond("lo", "lt", high), Cond("hi", "gt", low)),)


def number_atoms(match: RangeMatch) -> tuple[Atom, ...]:
    prefix, value = match.prefix, match.value
    if prefix == "eq":
        return ((Cond("value", "ge", match.lo), Cond("value", "lt", match.hi)),)
    if prefix == "ne":
        return ((Cond("value", "lt", match.lo),), (Cond("value", "ge", match.hi),))
    if prefix in ("gt", "sa"):
        return ((Cond("value", "gt", value),),)
    if prefix in ("lt", "eb"):
        return ((Cond("value", "lt", value),),)
    if prefix == "ge":
        return ((Cond("value", "ge", value),),)
    if prefix == "le":
        return ((Cond("value", "le", value),),)
    low, high = approximate_bounds(match)
    return ((Cond("value", "ge", low), Cond("value", "le", high)),)


def quantity_atoms(match: RangeMatch) -> tuple[Atom, ...]:
    units: tuple[Atom, ...] = ((),)
    if match.code is not None:
        units = ((Cond("code", "eq", match.code),), (Cond("unit", "eq", match.code),))
    system: Atom = (Cond("system", "eq", match.system),) if match.system is not None else ()
    return tuple(number + unit + system for number in number_atoms(match) for unit in units)


def uri_atoms(modifier: str | None, match: str) -> tuple[Atom, ...]:
    if modifier == "below":
        return ((_prefix_cond("uri", match),),)
    if modifier == "above":
        prefixes = tuple(match[:n] for n in range(1, len(match) + 1))
        return ((Cond("uri", "in", prefixes),),) if prefixes else ()
    return ((Cond("uri", "eq", match),),)


def _first_component(match: CompositeMatch) -> Atom:
    """What the first component's key must be, when the first part asks for one exactly."""
    if not match.parts:
        return ()
    param, first = match.parts[0]
    if param.type == "token" and isinstance(first, TokenMatch) and first.code is not None:
        return (Cond("key", "eq", first.code),)
    if param.type == "reference" and isinstance(first, ReferenceMatch) and first.url is None:
        return (Cond("key", "eq", first.id),)
    return ()


def value_atoms(kind: str, modifier: str | None, match: object, now_ms: float) -> tuple:
    """The atoms one parsed value of a criterion stands for (any of them matching is a match)."""
    if kind == "string":
        return string_atoms(modifier, match)
    if kind == "token":
        return token_atoms(modifier, match)
    if kind == "reference":
        return reference_atoms(match)
    if kind == "date":
        return date_atoms(match, now_ms)
    if kind == "number":
        return number_atoms(match)
    if kind == "quantity":
        return quantity_atoms(match)
    if kind == "uri":
        return uri_atoms(modifier, match)
    if kind == "composite":
        return (CompositeAtom(_first_component(match), match, now_ms),)
    return ()


def _plain_ids(criterion: Criterion) -> tuple[str, ...] | None:
    """`_id=a,b` without modifiers: the resource ids themselves, no index lookup needed."""
    if criterion.param.code != "_id" or criterion.modifier is not None or criterion.missing is not None:
        return None
    if not all(isinstance(v, TokenMatch) and not v.system_given for v in criterion.values):
        return None
    return tuple(v.code for v in criterion.values)


def param_ref(param: SearchParam, types: tuple[str, ...]) -> ParamRef:
    return ParamRef(param.type, (param.code,), types or None)


def criterion_filter(criterion: Criterion | HasCriterion, types: tuple[str, ...], now_ms: float) -> Filter:
    if isinstance(criterion, HasCriterion):
        source = (criterion.source_type,)
        inner = criterion_filter(criterion.inner, source, now_ms)
        return HasFilter(criterion.source_type, param_ref(criterion.reference, source), (inner,))
    ref = param_ref(criterion.param, types)
    if criterion.chain is not None:
        inner = criterion_filter(criterion.chain, criterion.target_types, now_ms)
        return ChainFilter(ref, criterion.target_types, (inner,))
    if criterion.missing is not None:
        return PresenceFilter(ref, not criterion.missing)
    ids = _plain_ids(criterion)
    if ids is not None:
        return IdFilter(ids)
    kind, modifier = criterion.param.type, criterion.modifier
    if kind == "token" and modifier == "not":
        atoms = tuple(a for v in criterion.values for a in token_atoms(None, v))
        return ValueFilter(ref, atoms, negate=True)
    atoms = tuple(a for v in criterion.values for a in value_atoms(kind, modifier, v, now_ms))
    return ValueFilter(ref, atoms)


# ----- sort, includes, cursors -----


def sort_specs(keys: tuple[SortKey, ...], types: tuple[str, ...]) -> tuple[SortSpec, ...]:
    specs = []
    for key in keys:
        if key.code in ("_id", "_lastUpdated"):
            specs.append(SortSpec(key.code, key.descending))
        else:
            specs.append(SortSpec("param", key.descending, param_ref(key.param, types)))
    return tuple(specs)


@cache
def _reference_codes(registry: SearchRegistry, version: int) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for resource_type in sorted(supported_types()):
        params = registry.params_for(resource_type)
        out[resource_type] = tuple(code for code, p in params.items() if p.type == "reference")
    return out


def reference_codes(registry: SearchRegistry) -> dict[str, tuple[str, ...]]:
    """Resource type -> the codes of its reference parameters (for `*` includes)."""
    return _reference_codes(registry, registry.version)


def include_spec(include: Include, types: tuple[str, ...], registry: SearchRegistry) -> IncludeSpec:
    refs = reference_codes(registry)
    if include.source_type != "*":
        sources: tuple[str, ...] = (include.source_type,)
    elif types and not include.reverse and not include.iterate:
        sources = types
    else:
        sources = tuple(refs)
    pairs = tuple((s, c) for s in sources for c in refs.get(s, ()) if include.code in ("*", c))
    return IncludeSpec(include.reverse, include.iterate, pairs, include.target_type)


def sort_signature(sort: tuple[SortSpec, ...]) -> str:
    text = ",".join(f"{'-' if s.descending else ''}{s.key}:{s.param.codes if s.param else ''}" for s in sort)
    return hashlib.blake2s(text.encode(), digest_size=4).hexdigest()


def encode_cursor(sort: tuple[SortSpec, ...], values: tuple, backwards: bool) -> str:
    raw = orjson.dumps([sort_signature(sort), "p" if backwards else "n", list(values)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: tuple[SortSpec, ...]) -> Keyset:
    try:
        signature, direction, values = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad_request(
            "The paging cursor is not valid; follow the links the server gave", "_cursor"
        ) from None
    if signature != sort_signature(sort) or direction not in ("n", "p") or len(values) != len(sort) + 1:
        raise bad_request(
            "The paging cursor belongs to another sort order; follow the links the server gave", "_cursor"
        )
    return Keyset(tuple(values), direction == "p")


# ----- the plan -----


class Planner:
    """Plans SearchQueries against one registry; `now_ms` anchors `ap` on dates."""

    def __init__(self, registry: SearchRegistry, now_ms: float) -> None:
        self.registry = registry
        self.now_ms = now_ms

    def filters(self, query: SearchQuery) -> tuple[Filter, ...]:
        return tuple(criterion_filter(c, query.resource_types, self.now_ms) for c in query.criteria)

    def plan(self, query: SearchQuery, extra: tuple[Filter, ...] = ()) -> SearchPlan:
        """`extra` filters are ANDed (the compartment access rules put the caller's patient here)."""
        types = query.resource_types or None
        sort = sort_specs(query.sort, query.resource_types)
        # `_count=0` asks for no matches, so what it can want is how many there are.
        counting = query.summary == "count" or (query.count == 0 and query.total != "none")
        return SearchPlan(
            types=types,
            filters=self.filters(query) + extra,
            sort=sort,
            limit=query.count,
            keyset=decode_cursor(query.cursor, sort) if query.cursor else None,
            includes=()
            if counting
            else tuple(include_spec(i, query.resource_types, self.registry) for i in query.includes),
            count_total=counting or query.total in ("accurate", "estimate"),
            fetch_matches=not counting and query.count > 0,
        )
