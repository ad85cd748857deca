"""FHIR JSON in and out with every number kept as it was written: `105.00` stays `105.00`, `1e2` stays
`1e2` (DESIGN 4: decimals keep their text).

`loads` parses a number to an int or a float when orjson prints that value back as the same characters
(`1`, `2.5`, `-0.0`, the common case); any other number parses to a JsonNumber, a float that keeps its
text. Python code computes with a JsonNumber as with any float (results are plain floats); `dumps` writes
it back as its text. Parsing is msgspec's decoder, as fast as orjson's and it hands over each float's
text; writing is orjson's encoder. Leaves of the package (nphies/) use it too, so it sits at the top.
"""

import json
import re
from typing import Any

import msgspec
import orjson

# orjson writes integers in this range; msgspec parses any integer exactly.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# `-0` as an integer token: msgspec reads it as 0. A candidate is `-0` not followed by more of a number
# (dates such as 2024-01-05 are not); it is a number when a value starts there.
_NEGATIVE_ZERO = re.compile(rb"-0(?![0-9.eE])")
_VALUE_START = frozenset(b":[,")
_SPACE = b" \t\r\n"


class JSONDecodeError(ValueError):
    """The text is not JSON (or holds a number too large for a double)."""


class JsonNumber(float):
    """A JSON number whose float would not print back as it was written; it keeps the text."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> "JsonNumber":
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def __reduce__(self) -> tuple:
        return JsonNumber, (self.text,)


def _number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JSONDecodeError(f"the number {text[:40]} is too large for a double")
    if orjson.dumps(value) == text.encode():
        return value
    return JsonNumber(text)


def _integer(text: str) -> int | float:
    return JsonNumber(text) if text == "-0" else int(text)


def _no_constant(name: str) -> None:
    raise JSONDecodeError(f"{name} is not JSON")


_decoder = msgspec.json.Decoder(float_hook=_number)


def _has_negative_zero(data: bytes) -> bool:
    for match in _NEGATIVE_ZERO.finditer(data):
        at = match.start() - 1
        while at >= 0 and data[at] in _SPACE:
            at -= 1
        if at < 0 or data[at] in _VALUE_START:
            return True
    return False


def loads(data: bytes | str) -> Any:
    """JSON to Python values, numbers keeping their text; raises JSONDecodeError."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = _decoder.decode(raw)
        if _has_negative_zero(raw):  # rare: the standard library's parser hands over integers' text
            return json.loads(raw, parse_float=_number, parse_int=_integer, parse_constant=_no_constant)
        return value
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise JSONDecodeError(str(exc)) from None


def _text_of(value: object) -> orjson.Fragment:
    if isinstance(value, JsonNumber):
        return orjson.Fragment(value.text)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _big_integers_as_text(value: Any) -> Any:
    if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
        return orjson.Fragment(str(value))
    if isinstance(value, dict):
        return {key: _big_integers_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_big_integers_as_text(item) for item in value]
    return value


def dumps(value: Any, option: int | None = None) -> bytes:
    """Python values to JSON bytes (orjson), JsonNumbers as their text."""
    try:
        return orjson.dumps(value, default=_text_of, option=option)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_big_integers_as_text(value), default=_text_of, option=option)


def copy(value: Any) -> Any:
    """A deep copy of JSON data, numbers keeping their text; several times faster than copy.deepcopy."""
    return loads(dumps(value))


def plain(value: Any) -> Any:
    """A deep copy with plain floats for JsonNumbers, for code that takes only exact JSON types (the
    jsonschema-rs validator refuses float subclasses)."""
    return orjson.loads(dumps(value))
