"""JSON read with every number as its text, for tests that check numbers to the character."""

import json


class Number(str):
    """A JSON number's text, told apart from a string."""


def parsed(body: bytes | str) -> object:
    """A JSON document with its numbers as Number (their text)."""
    return json.loads(body, parse_float=Number, parse_int=Number)


def numbers_in(value: object) -> list[str]:
    """The text of every number in parsed JSON, in document order."""
    if isinstance(value, Number):
        return [str(value)]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in numbers_in(item)]


def numbers(body: bytes | str) -> list[str]:
    return numbers_in(parsed(body))


def same_text(value: object) -> object:
    """Parsed JSON where Numbers compare by their text and apart from strings (Number("1") != "1")."""
    if isinstance(value, Number):
        return ("number", str(value))
    if isinstance(value, dict):
        return {key: same_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [same_text(item) for item in value]
    return value
