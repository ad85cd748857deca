"""In-memory evaluation of parsed search criteria against one resource's extracted index values.

Subscriptions match the version that was written with it, and the search tests use it as the brute-force
reference for the store's query results; the store renders the same rules as SQL (or MongoDB filters).
"""

from collections.abc import Callable

from .converters import normalize_string
from .query import CompositeMatch, Criterion, HasCriterion, RangeMatch, ReferenceMatch, TokenMatch
from .values import (
    CompositeValue,
    DateValue,
    IndexValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)

IndexValues = dict[str, list[IndexValue]]
Clock = Callable[[], float]


class NotEvaluableInMemory(Exception):
    """Criteria that need other resources (chains, _has) cannot be matched against one resource."""


def date_matches(match: RangeMatch, lo: float, hi: float, now_ms: float) -> bool:
    plo, phi = match.lo, match.hi
    within = lo >= plo and hi <= phi
    prefix = match.prefix
    if prefix == "eq":
        return within
    if prefix == "ne":
        return not within
    if prefix == "gt":
        return hi > phi
    if prefix == "lt":
        return lo < plo
    if prefix == "ge":
        return hi > phi or within
    if prefix == "le":
        return lo < plo or within
    if prefix == "sa":
        return lo >= phi
    if prefix == "eb":
        return hi <= plo
    low, high = approximate_date_bounds(match, now_ms)
    return lo < high and hi > low


def approximate_date_bounds(match: RangeMatch, now_ms: float) -> tuple[float, float]:
    """`ap` on dates: the asked range widened on both sides by 10% of the distance between the value and
    now, at least by the value's own precision; a value matches when its range overlaps (low, high)."""
    margin = max(abs(now_ms - match.lo) * 0.1, match.hi - match.lo)
    return match.lo - margin, match.hi + margin


def approximate_bounds(match: RangeMatch) -> tuple[float, float]:
    """`ap` on numbers and quantities: within 10% of the asked value, both ends included."""
    margin = abs(match.value) * 0.1
    return match.value - margin, match.value + margin


def number_matches(match: RangeMatch, value: float) -> bool:
    prefix = match.prefix
    if prefix == "eq":
        return match.lo <= value < match.hi
    if prefix == "ne":
        return not match.lo <= value < match.hi
    if prefix in ("gt", "sa"):
        return value > match.value
    if prefix in ("lt", "eb"):
        return value < match.value
    if prefix == "ge":
        return value >= match.value
    if prefix == "le":
        return value <= match.value
    low, high = approximate_bounds(match)
    return low <= value <= high


def token_matches(match: TokenMatch, value: TokenValue) -> bool:
    if not match.system_given:
        return value.code == match.code
    if match.code is None:
        return value.system == match.system
    return value.code == match.code and value.system == match.system


def reference_matches(match: ReferenceMatch, value: ReferenceValue) -> bool:
    if match.url is not None:
        return value.url == match.url
    if match.type is not None and value.type != match.type:
        return False
    return value.id == match.id


def _quantity_matches(match: RangeMatch, value: QuantityValue) -> bool:
    if match.code is not None and value.code != match.code and value.unit != match.code:
        return False
    if match.system is not None and value.system != match.system:
        return False
    return number_matches(match, value.value)


def value_matches(kind: str, modifier: str | None, match: object, value: IndexValue, now_ms: float) -> bool:
    if kind == "string" and isinstance(value, StringValue):
        if modifier == "exact":
            return value.exact == match
        if modifier == "contains":
            return match in value.norm
        return value.norm.startswith(match)
    if kind == "token" and isinstance(value, TokenValue):
        if modifier == "text":
            return value.text is not None and normalize_string(value.text).startswith(match)
        if modifier == "of-type":
            type_system, type_code, code = match
            return value.type_system == type_system and value.type_code == type_code and value.code == code
        return token_matches(match, value)
    if kind == "reference" and isinstance(value, ReferenceValue):
        return reference_matches(match, value)
    if kind == "date" and isinstance(value, DateValue):
        return date_matches(match, value.lo, value.hi, now_ms)
    if kind == "number" and isinstance(value, NumberValue):
        return number_matches(match, value.value)
    if kind == "quantity" and isinstance(value, QuantityValue):
        return _quantity_matches(match, value)
    if kind == "uri" and isinstance(value, UriValue):
        if modifier == "below":
            return value.uri.startswith(match)
        if modifier == "above":
            return match.startswith(value.uri)
        return value.uri == match
    if kind == "composite" and isinstance(value, CompositeValue):
        return _composite_matches(match, value, now_ms)
    return False


def _composite_matches(match: CompositeMatch, value: CompositeValue, now_ms: float) -> bool:
    if len(match.parts) != len(value.parts):
        return False
    for (param, part_match), (_, part_value) in zip(match.parts, value.parts, strict=True):
        if not value_matches(param.type, None, part_match, part_value, now_ms):
            return False
    return True


def criterion_matches(criterion: Criterion | HasCriterion, index: IndexValues, now_ms: float) -> bool:
    if isinstance(criterion, HasCriterion) or criterion.chain is not None:
        raise NotEvaluableInMemory("chained and _has criteria need other resources")
    values = index.get(criterion.param.code, ())
    if criterion.missing is not None:
        return not values if criterion.missing else bool(values)
    kind, modifier = criterion.param.type, criterion.modifier
    if kind == "token" and modifier == "not":
        return not any(
            token_matches(m, v) for m in criterion.values for v in values if isinstance(v, TokenValue)
        )
    return any(value_matches(kind, modifier, m, v, now_ms) for m in criterion.values for v in values)


def check_in_memory(criteria: list[Criterion | HasCriterion]) -> None:
    """Raises NotEvaluableInMemory when some criterion needs other resources."""
    for criterion in criteria:
        if isinstance(criterion, HasCriterion) or criterion.chain is not None:
            raise NotEvaluableInMemory(f"{_name(criterion)} needs other resources to evaluate")


def all_match(criteria: list[Criterion | HasCriterion], index: IndexValues, now_ms: float) -> bool:
    return all(criterion_matches(c, index, now_ms) for c in criteria)


def _name(criterion: Criterion | HasCriterion) -> str:
    if isinstance(criterion, HasCriterion):
        return f"_has:{criterion.source_type}:{criterion.reference.code}"
    return criterion.param.code
