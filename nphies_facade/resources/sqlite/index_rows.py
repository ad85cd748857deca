"""How each kind of search index value is laid into the generic `idx` columns of the SQLite store.

string     s1 normalised text, s2 exact text
token      s1 code, s2 system, s3 normalised display text, s4 "type-system|type-code" (identifiers)
reference  s1 reference ("Patient/1" or an absolute URL), s2 target type, s3 target id
uri        s1 uri
date       n1 lower bound, n2 upper bound (epoch ms, upper exclusive)
number     n1 lower bound, n2 upper bound, n3 value
quantity   n1 lower bound, n2 upper bound, n3 value, s1 code, s2 system, s3 unit
"""

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


def _token_type(value: TokenValue) -> str | None:
    if value.type_system is None and value.type_code is None:
        return None
    return f"{value.type_system or ''}|{value.type_code or ''}"


def _composite_key(value: CompositeValue) -> str:
    return "$".join(str(part) for _, part in value.parts)


def row_for(value: IndexValue) -> Row | None:
    match value:
        case StringValue():
            return (value.norm, value.exact, None, None, None, None, None)
        case TokenValue():
            text = value.text.lower() if value.text else None
            return (value.code, value.system, text, _token_type(value), None, None, None)
        case ReferenceValue():
            return (value.url, value.type, value.id, None, None, None, None)
        case UriValue():
            return (value.uri, None, None, None, None, None, None)
        case DateValue():
            return (None, None, None, None, value.lo, value.hi, None)
        case NumberValue():
            return (None, None, None, None, value.lo, value.hi, value.value)
        case QuantityValue():
            return (value.code, value.system, value.unit, None, value.lo, value.hi, value.value)
        case CompositeValue():
            return (_composite_key(value), None, None, None, None, None, None)
    return None
