"""How each kind of search index value is laid into the generic `idx` columns of the SQLite store.

string     s1 normalised text, s2 exact text
token      s1 code, s2 system, s3 normalised display text, s4 "type-system|type-code" (identifiers)
reference  s1 target id (the url when no id can be read), s2 target type, s3 url as written
uri        s1 uri
date       n1 lower bound, n2 upper bound (epoch ms, upper exclusive); in SQLite also n3 width (n2 - n1)
number     n1 value, n2 lower bound, n3 upper bound (the precision range)
           in SQLite, date and number rows of a resource with several values for the parameter have s1 "m"
quantity   n1 value, n2 lower bound, n3 upper bound, s1 code, s2 system, s3 unit
composite  s1 key of the first component (token code, reference id), s2 every component as JSON

`FIELDS` names the column of each logical field the search planner puts conditions on.
"""

from functools import lru_cache

import orjson

from ..search.converters import normalize_string
from ..search.values import (
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

Row = tuple[str | None, str | None, str | None, str | None, float | None, float | None, float | None]

FIELDS: dict[str, dict[str, str]] = {
    "string": {"norm": "s1", "exact": "s2"},
    "token": {"code": "s1", "system": "s2", "text": "s3", "type": "s4"},
    "reference": {"key": "s1", "type": "s2", "url": "s3"},
    "uri": {"uri": "s1"},
    "date": {"lo": "n1", "hi": "n2", "width": "n3", "multi": "s1"},
    "number": {"value": "n1", "lo": "n2", "hi": "n3", "multi": "s1"},
    "quantity": {"value": "n1", "lo": "n2", "hi": "n3", "code": "s1", "system": "s2", "unit": "s3"},
    "composite": {"key": "s1", "parts": "s2"},
}

MULTI = "m"
_VALUE_CLASSES = {
    cls.__name__: cls
    for cls in (StringValue, TokenValue, ReferenceValue, DateValue, NumberValue, QuantityValue, UriValue)
}


def token_type_key(type_system: str | None, type_code: str | None) -> str | None:
    """The s4 text of an identifier's type; None when it has none."""
    if type_system is None and type_code is None:
        return None
    return f"{type_system or ''}|{type_code or ''}"


def reference_key(value: ReferenceValue) -> str:
    return value.id if value.id is not None else value.url


def _first_key(value: CompositeValue) -> str | None:
    first = value.parts[0][1] if value.parts else None
    if isinstance(first, TokenValue):
        return first.code
    if isinstance(first, ReferenceValue):
        return reference_key(first)
    return None


def _part_json(part: object) -> list:
    return [type(part).__name__, *(getattr(part, name) for name in part.__slots__)]


def composite_json(value: CompositeValue) -> str:
    return orjson.dumps([[code, *_part_json(part)] for code, part in value.parts]).decode()


@lru_cache(maxsize=4096)
def composite_parts(text: str) -> tuple[tuple[str, IndexValue], ...]:
    """The (component code, value) pairs a composite row holds (s2 decoded)."""
    return tuple((code, _VALUE_CLASSES[kind](*fields)) for code, kind, *fields in orjson.loads(text))


def row_for(value: IndexValue) -> Row | None:
    match value:
        case StringValue():
            return (value.norm, value.exact, None, None, None, None, None)
        case TokenValue():
            text = normalize_string(value.text) if value.text else None
            return (
                value.code,
                value.system,
                text,
                token_type_key(value.type_system, value.type_code),
                None,
                None,
                None,
            )
        case ReferenceValue():
            return (reference_key(value), value.type, value.url, None, None, None, None)
        case UriValue():
            return (value.uri, None, None, None, None, None, None)
        case DateValue():
            return (None, None, None, None, value.lo, value.hi, None)
        case NumberValue():
            return (None, None, None, None, value.value, value.lo, value.hi)
        case QuantityValue():
            return (value.code, value.system, value.unit, None, value.value, value.lo, value.hi)
        case CompositeValue():
            return (_first_key(value), composite_json(value), None, None, None, None, None)
    return None


def rows_for(values: list[IndexValue]) -> list[Row]:
    """The SQLite rows of one parameter's values: row_for's, plus a date's width in n3, and several
    dates or numbers marked (a range query on one parameter starts from single values and must also
    look at the resources that have several)."""
    rows = [row for row in map(row_for, values) if row is not None]
    if values and isinstance(values[0], DateValue):
        rows = [(*row[:6], row[5] - row[4]) for row in rows]
    if len(rows) > 1 and isinstance(values[0], DateValue | NumberValue):
        rows = [(MULTI, *row[1:]) for row in rows]
    return rows
