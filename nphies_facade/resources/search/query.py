"""Search requests parsed into a typed query: criteria (AND of ORs), result parameters, includes.

The same SearchQuery feeds the store's planner (plan.py, rendered to SQL or MongoDB filters) and the
in-memory matcher (subscriptions), so both read parameters, modifiers, prefixes and escapes one way.
"""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ..errors import FhirError, Issue, bad_request
from ..types import is_supported, supported_types
from .converters import normalize_string
from .definitions import SearchParam, SearchRegistry
from .precision import date_range, number_range

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = frozenset(
    {
        "_sort",
        "_count",
        "_total",
        "_summary",
        "_elements",
        "_include",
        "_revinclude",
        "_cursor",
        "_format",
        "_pretty",
        "_type",
    }
)
SUMMARY_VALUES = frozenset({"true", "false", "count", "data", "text"})
TOTAL_VALUES = frozenset({"none", "accurate", "estimate"})
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "of-type", "missing"},
    "reference": {"missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"below", "above", "missing"},
    "composite": {"missing"},
    "special": set(),
}
# Types a system-level search without _type runs over: the parameters of Resource apply to all of them.
ALL_TYPES = "Resource"


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """`code` alone matches any system; `system|code` both; `|code` no system; `system|` any code."""

    system: str | None
    code: str | None
    system_given: bool


@dataclass(frozen=True, slots=True)
class ReferenceMatch:
    """`Type/id` or a bare id (type None: any type), or an absolute `url` compared as written."""

    type: str | None
    id: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class RangeMatch:
    """A date, number or quantity value with its prefix; [lo, hi) is the precision range of what was asked."""

    prefix: str
    value: float
    lo: float
    hi: float
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class CompositeMatch:
    parts: tuple[tuple[SearchParam, object], ...]


@dataclass(frozen=True, slots=True)
class Criterion:
    """One parameter occurrence: its values are ORed; criteria of a query are ANDed.

    `missing` is set for `:missing`; `chain` for a chained reference (`subject:Patient.name=x`), with
    `target_types` the types the chain continues on.
    """

    param: SearchParam
    modifier: str | None = None
    values: tuple = ()
    missing: bool | None = None
    chain: "Criterion | HasCriterion | None" = None
    target_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HasCriterion:
    """Reverse chaining `_has:Task:focus:status=x`: resources some `source_type` refers to through `reference`."""

    source_type: str
    reference: SearchParam
    inner: "Criterion | HasCriterion"


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    descending: bool
    param: SearchParam | None = None


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=Task:focus[:Claim]` (reverse=False) or `_revinclude=Provenance:target` (reverse=True).

    `source_type` and `code` are "*" for `_include=*`; `code` is "*" for `_include=Task:*`.
    """

    source_type: str
    code: str
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass
class SearchQuery:
    """`resource_types` is empty for a system search over every type; `used` are the parameters applied
    (what a self link repeats), `ignored` the names of unknown parameters left out."""

    resource_types: tuple[str, ...]
    criteria: list[Criterion | HasCriterion] = field(default_factory=list)
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    total: str | None = None  # `_total` as given; None when the search did not say
    summary: str | None = None
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    cursor: str | None = None
    ignored: tuple[str, ...] = ()
    used: tuple[tuple[str, str], ...] = ()


# ----- values -----


def _split_or(raw: str) -> list[str]:
    """Splits a value on commas that are not escaped; other escapes stay for the value's own parser."""
    parts, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char if char == "," else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _split_unescaped(raw: str, sep: str) -> list[str]:
    """Splits on unescaped `sep` and removes the escapes of `\\`, `,`, `$` and `|`."""
    parts, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char if char in ",$|\\" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def unescape(raw: str) -> str:
    return _split_unescaped(raw, "\x00")[0] if "\\" in raw else raw


def _prefix(raw: str) -> tuple[str, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES:
        return raw[:2], raw[2:]
    return "eq", raw


def _decimal(text: str, name: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise bad_request(f"'{text}' is not a number (in {name})", name) from None
    if not number.is_finite():
        raise bad_request(f"'{text}' is not a finite number (in {name})", name)
    return number


def parse_date(raw: str, name: str) -> RangeMatch:
    prefix, text = _prefix(raw)
    bounds = date_range(text.replace(" ", "+"))
    if bounds is None:
        raise bad_request(
            f"'{raw}' is not a valid date search value for {name} "
            "(e.g. 2024, 2024-03, 2024-03-01, ge2024-03-01T10:00:00Z)",
            name,
        )
    return RangeMatch(prefix, float(bounds[0]), float(bounds[0]), float(bounds[1]))


def parse_number(raw: str, name: str) -> RangeMatch:
    prefix, text = _prefix(raw)
    value, lo, hi = number_range(_decimal(text, name))
    return RangeMatch(prefix, value, lo, hi)


def parse_quantity(raw: str, name: str) -> RangeMatch:
    prefix, text = _prefix(raw)
    parts = _split_unescaped(text, "|")
    if len(parts) not in (1, 3):
        raise bad_request(f"'{raw}' is not a quantity search value (number|system|code) for {name}", name)
    value, lo, hi = number_range(_decimal(parts[0], name))
    system = parts[1] or None if len(parts) == 3 else None
    code = parts[2] or None if len(parts) == 3 else None
    return RangeMatch(prefix, value, lo, hi, system, code)


def parse_token(raw: str, name: str) -> TokenMatch:
    parts = _split_unescaped(raw, "|")
    if len(parts) == 1:
        if not parts[0]:
            raise bad_request(f"An empty token value was given for {name}", name)
        return TokenMatch(None, parts[0], False)
    if len(parts) != 2:
        raise bad_request(
            f"'{raw}' is not a token search value (code, system|code, |code or system|) for {name}", name
        )
    system, code = parts
    return TokenMatch(system or None, code or None, True)


def parse_reference(raw: str, name: str, type_modifier: str | None, base_url: str | None) -> ReferenceMatch:
    text = unescape(raw)
    if base_url and text.startswith(base_url.rstrip("/") + "/"):
        text = text[len(base_url.rstrip("/")) + 1 :]
    text = text.split("/_history/", 1)[0]
    if "://" in text or text.startswith("urn:"):
        return ReferenceMatch(None, None, text)
    segments = text.split("/")
    if len(segments) == 1:
        if not text:
            raise bad_request(f"An empty reference was given for {name}", name)
        return ReferenceMatch(type_modifier, text, None)
    if len(segments) == 2 and is_supported(segments[0]) and segments[1]:
        if type_modifier and type_modifier != segments[0]:
            raise bad_request(f"{name}:{type_modifier} cannot match a {segments[0]} reference", name)
        return ReferenceMatch(segments[0], segments[1], None)
    raise bad_request(f"'{raw}' is not a reference search value (id, Type/id or an absolute URL)", name)


def _of_type(raw: str, name: str) -> tuple[str | None, str | None, str]:
    parts = _split_unescaped(raw, "|")
    if len(parts) != 3 or not parts[2]:
        raise bad_request(f"{name} takes type-system|type-code|value", name)
    return (parts[0] or None, parts[1] or None, parts[2])


def parse_value(
    param: SearchParam,
    modifier: str | None,
    raw: str,
    name: str,
    registry: SearchRegistry,
    base_url: str | None = None,
) -> object:
    """One (escaped) value of a parameter as the matcher and planner compare it."""
    kind = param.type
    if kind == "string":
        return unescape(raw) if modifier == "exact" else normalize_string(unescape(raw))
    if kind == "token":
        if modifier == "text":
            return normalize_string(unescape(raw))
        if modifier == "of-type":
            return _of_type(raw, name)
        return parse_token(raw, name)
    if kind == "reference":
        return parse_reference(raw, name, modifier, base_url)
    if kind == "date":
        return parse_date(raw, name)
    if kind == "number":
        return parse_number(raw, name)
    if kind == "quantity":
        return parse_quantity(raw, name)
    if kind == "uri":
        return unescape(raw)
    if kind == "composite":
        return _parse_composite(param, raw, name, registry, base_url)
    raise bad_request(f"Search parameter {name} of type {kind} is not supported", name, code="not-supported")


def _parse_composite(
    param: SearchParam, raw: str, name: str, registry: SearchRegistry, base_url: str | None
) -> CompositeMatch:
    components = [registry.by_url(url) for url, _ in param.components]
    parts = _split_escaped_keep(raw, "$")
    if len(parts) != len(components) or any(c is None for c in components):
        raise bad_request(f"{name} takes {len(components)} values joined by '$'", name)
    return CompositeMatch(
        tuple(
            (c, parse_value(c, None, part, name, registry, base_url))
            for c, part in zip(components, parts, strict=True)
        )
    )


def _split_escaped_keep(raw: str, sep: str) -> list[str]:
    """Splits on unescaped `sep`, keeping escapes for the part's own parser."""
    parts, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char if char == sep else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _split_name(name: str) -> tuple[str, str | None, str | None]:
    """`code[:modifier][.chained-rest]` -> (code, modifier, rest)."""
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    return code, modifier or None, rest if dot else None


# ----- parameters -----


class QueryParser:
    def __init__(self, registry: SearchRegistry, base_url: str | None = None) -> None:
        self.registry = registry
        self.base_url = base_url

    def parse(
        self,
        resource_types: tuple[str, ...],
        params: list[tuple[str, str]],
        *,
        strict: bool = False,
        default_count: int = 50,
        max_count: int = 1000,
    ) -> SearchQuery:
        """Unknown parameters raise a 400 when `strict`, else are left out and named in `ignored`."""
        query = SearchQuery(self._types(resource_types, params), count=default_count)
        ignored: list[str] = []
        issues: list[Issue] = []
        used: list[tuple[str, str]] = []
        for name, raw in params:
            if split_result_param_name(name) in RESULT_PARAMS:
                self._result_param(query, name, raw, max_count)
                if name not in ("_cursor", "_format", "_pretty"):
                    used.append((name, raw))
                continue
            try:
                criterion = self._criterion(query.resource_types, name, raw)
            except _Unknown as unknown:
                issues.append(Issue("not-supported", str(unknown), expression=name))
                ignored.append(name)
                continue
            used.append((name, raw))
            if criterion is not None:
                query.criteria.append(criterion)
        if strict and issues:
            raise FhirError(400, issues)
        query.ignored = tuple(ignored)
        query.used = tuple(used)
        return query

    def parse_criterion(self, resource_type: str, name: str, raw: str) -> Criterion | HasCriterion | None:
        try:
            return self._criterion((resource_type,), name, raw)
        except _Unknown as unknown:
            raise bad_request(str(unknown), name, code="not-supported") from None

    def _types(self, resource_types: tuple[str, ...], params: list[tuple[str, str]]) -> tuple[str, ...]:
        """The searched types: the type of a type-level search, else what _type names (none: all)."""
        named: list[str] = []
        for name, raw in params:
            if name == "_type":
                named += [t.strip() for t in raw.split(",") if t.strip()]
        unknown = [t for t in named if not is_supported(t)]
        if unknown:
            raise bad_request(f"_type names unknown resource types: {', '.join(unknown)}", "_type")
        if resource_types:
            if any(t not in resource_types for t in named):
                raise bad_request(f"_type cannot widen a search of {', '.join(resource_types)}", "_type")
            return resource_types
        return tuple(dict.fromkeys(named))

    def _param(self, resource_types: tuple[str, ...], code: str) -> SearchParam:
        found = [self.registry.get(t, code) for t in resource_types or (ALL_TYPES,)]
        if not found or any(p is None for p in found):
            where = ", ".join(resource_types) or "all resource types"
            raise _Unknown(f"Unknown search parameter '{code}' for {where}")
        if len({p.type for p in found}) > 1:
            raise bad_request(
                f"'{code}' is a parameter of different types across {', '.join(resource_types)}", code
            )
        return found[0]

    def _criterion(
        self, resource_types: tuple[str, ...], name: str, raw: str
    ) -> Criterion | HasCriterion | None:
        """None when the value is empty (an empty parameter is no criterion)."""
        if name.startswith("_has:"):
            return self._has(name, raw)
        code, modifier, chain_rest = _split_name(name)
        param = self._param(resource_types, code)
        if chain_rest is not None:
            return self._chain(param, modifier, chain_rest, name, raw)
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise bad_request(f"{name} takes true or false", name)
            return Criterion(param, modifier, missing=raw == "true")
        self._check_modifier(param, modifier, name)
        parts = [part for part in _split_or(raw) if part]
        if not parts:
            return None
        values = tuple(
            parse_value(param, modifier, part, name, self.registry, self.base_url) for part in parts
        )
        target_types = (modifier,) if param.type == "reference" and modifier else ()
        return Criterion(param, modifier, values, target_types=target_types)

    def _check_modifier(self, param: SearchParam, modifier: str | None, name: str) -> None:
        if modifier is None:
            return
        if param.type == "reference" and is_supported(modifier):
            if param.targets and modifier not in param.targets:
                raise bad_request(f"{name}: {param.code} cannot refer to a {modifier}", name)
            return
        if modifier not in MODIFIERS.get(param.type, set()):
            raise bad_request(
                f"The modifier :{modifier} is not supported on {param.type} parameter {param.code}",
                name,
                code="not-supported",
            )

    def _chain(
        self, param: SearchParam, modifier: str | None, rest: str, name: str, raw: str
    ) -> Criterion | None:
        if param.type != "reference":
            raise bad_request(
                f"Only reference parameters can be chained; {param.code} is a {param.type}", name
            )
        if modifier and not is_supported(modifier):
            raise bad_request(f"{name}: name the target type, e.g. {param.code}:Patient.{rest}", name)
        targets = (modifier,) if modifier else param.targets or tuple(sorted(supported_types()))
        targets = tuple(t for t in targets if is_supported(t))
        inner_code = rest.split(":", 1)[0] if rest.startswith("_has:") else _split_name(rest)[0]
        if inner_code == "_has":
            known = targets
        else:
            known = tuple(t for t in targets if self.registry.get(t, inner_code) is not None)
        if not known:
            raise _Unknown(f"Unknown chained parameter '{rest}' on the targets of {param.code}")
        inner = self._criterion(known, rest, raw)
        if inner is None:
            return None
        return Criterion(param, None, chain=inner, target_types=known)

    def _has(self, name: str, raw: str) -> HasCriterion | None:
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise bad_request(f"{name}: write _has:Type:reference:parameter=value", name)
        _, source_type, reference_code, rest = parts
        if not is_supported(source_type):
            raise bad_request(f"{name}: unknown resource type {source_type}", name)
        reference = self._param((source_type,), reference_code)
        if reference.type != "reference":
            raise bad_request(f"{name}: {reference_code} is not a reference parameter of {source_type}", name)
        inner = self._criterion((source_type,), rest, raw)
        return HasCriterion(source_type, reference, inner) if inner is not None else None

    # ----- result parameters -----

    def _result_param(self, query: SearchQuery, name: str, raw: str, max_count: int) -> None:
        if name == "_count":
            if not raw.isdigit():
                raise bad_request(f"_count must be a whole number, not {raw!r}", name)
            query.count = min(int(raw), max_count)
        elif name == "_total":
            if raw not in TOTAL_VALUES:
                raise bad_request(f"_total must be one of {', '.join(sorted(TOTAL_VALUES))}", name)
            query.total = raw
        elif name == "_summary":
            if raw not in SUMMARY_VALUES:
                raise bad_request(f"_summary must be one of {', '.join(sorted(SUMMARY_VALUES))}", name)
            query.summary = None if raw == "false" else raw
        elif name == "_elements":
            query.elements += tuple(e.strip() for e in raw.split(",") if e.strip())
        elif name == "_sort":
            query.sort += tuple(self._sort_key(query.resource_types, key) for key in raw.split(",") if key)
        elif name.startswith(("_include", "_revinclude")):
            query.includes += (self._include(name, raw),)
        elif name == "_cursor":
            query.cursor = raw

    def _sort_key(self, resource_types: tuple[str, ...], key: str) -> SortKey:
        descending = key.startswith("-")
        code = key.removeprefix("-")
        try:
            param = self._param(resource_types, code)
        except _Unknown as unknown:
            raise bad_request(f"Cannot sort by {code}: {unknown}", "_sort") from None
        if param.type in ("composite", "special"):
            raise bad_request(f"Cannot sort by {code}, a {param.type} parameter", "_sort")
        return SortKey(code, descending, param)

    def _include(self, name: str, raw: str) -> Include:
        if name.split(":", 1)[0] not in ("_include", "_revinclude") or name.count(":") > 1:
            raise bad_request(f"{name} is not an include parameter (_include[:iterate])", name)
        modifier = name.partition(":")[2]
        if modifier not in ("", "iterate", "recurse"):
            raise bad_request(f"{name}: the only include modifier is :iterate", name)
        iterate, reverse = bool(modifier), name.startswith("_revinclude")
        if raw == "*":
            return Include("*", "*", None, iterate, reverse)
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not is_supported(parts[0]):
            raise bad_request(f"{name}={raw}: write SourceType:parameter[:TargetType]", name)
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if code != "*":
            param = self.registry.get(source, code)
            if param is None or param.type != "reference":
                raise bad_request(f"{name}={raw}: {code} is not a reference parameter of {source}", name)
        if target is not None and not is_supported(target):
            raise bad_request(f"{name}={raw}: unknown target type {target}", name)
        return Include(source, code, target, iterate, reverse)


class _Unknown(Exception):
    """An unknown parameter: an error under Prefer: handling=strict, otherwise ignored and reported."""


def split_result_param_name(name: str) -> str:
    return name.split(":", 1)[0] if name.startswith(("_include", "_revinclude")) else name
