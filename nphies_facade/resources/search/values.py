"""Typed search-index values: what a search parameter extracts from a resource, one class per kind."""

from dataclasses import dataclass

# Open ends of a Period: 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in epoch milliseconds.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_800_000


@dataclass(frozen=True, slots=True)
class StringValue:
    """`norm` is lower-cased, accent-free, whitespace-collapsed (for default and :contains); `exact` as written."""

    norm: str
    exact: str


@dataclass(frozen=True, slots=True)
class TokenValue:
    """A system|code pair; `text` serves :text, `type_system`/`type_code` serve Identifier :of-type."""

    system: str | None
    code: str | None
    text: str | None = None
    type_system: str | None = None
    type_code: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """A reference: `type`/`id` when they can be read from `url`; `url` is what was written, less history."""

    type: str | None
    id: str | None
    url: str


@dataclass(frozen=True, slots=True)
class DateValue:
    """The instants a value covers, in epoch milliseconds: `lo` inclusive, `hi` exclusive."""

    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class NumberValue:
    """A number and the range its written precision implies ([lo, hi), e.g. 1.5 -> [1.45, 1.55))."""

    value: float
    lo: float
    hi: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    """A Quantity (Age, Duration, Money ...): number with precision range plus system/code/unit."""

    value: float
    lo: float
    hi: float
    system: str | None
    code: str | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class UriValue:
    uri: str


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """One combination of component values: ((component code, value), ...) in component order."""

    parts: tuple[tuple[str, object], ...]


IndexValue = (
    StringValue
    | TokenValue
    | ReferenceValue
    | DateValue
    | NumberValue
    | QuantityValue
    | UriValue
    | CompositeValue
)
