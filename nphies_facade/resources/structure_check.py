"""A fast, strict check of FHIR JSON against the element tables of the R4B models.

`surely_valid(resource)` walks the JSON once, with the models' own element lists, cardinalities, required
elements, choice groups and primitive patterns, and answers True only when the R4B models would accept the
resource: every rule here is as strict as the models' or stricter. Anything it is not sure of (an element
it does not know, a primitive extension `_x`, narrative XHTML, a leap second, a type it does not check) is
a False, and the caller validates with the models themselves, which also word the errors. So the models
stay the authority, and the common, valid resource costs a dictionary walk instead of ~50 model instances.
"""

import math
import re
import types
import typing
from collections.abc import Callable
from datetime import date, datetime

from fhir.resources.R4B import get_fhir_model_class
from fhir_core import types as fhir_types

Check = Callable[[object], bool]

ID = re.compile(r"[A-Za-z0-9\-.]{1,255}")
CODE = re.compile(r"[!-~]+( [!-~]+)*")
BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
INT32 = (-(2**31), 2**31 - 1)
MAX_FRACTION_DIGITS = 6


def _no_doubt(value: object) -> bool:
    return False


def _string(value: object) -> bool:
    """Some character that no regex engine takes for whitespace: the models need one non-blank."""
    return isinstance(value, str) and any(c.isalnum() or "!" <= c <= "~" for c in value)


def _any_string(value: object) -> bool:
    return isinstance(value, str)


def _code(value: object) -> bool:
    return isinstance(value, str) and CODE.fullmatch(value) is not None


def _id(value: object) -> bool:
    return isinstance(value, str) and ID.fullmatch(value) is not None


def _base64(value: object) -> bool:
    return isinstance(value, str) and BASE64.fullmatch(value) is not None


def _oid(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and fhir_types.Oid.pattern.fullmatch(value) is not None


def _boolean(value: object) -> bool:
    return isinstance(value, bool)


def _integer(low: int) -> Check:
    def check(value: object) -> bool:
        return type(value) is int and max(low, INT32[0]) <= value <= INT32[1]

    return check


def _decimal(value: object) -> bool:
    if type(value) is float:
        return math.isfinite(value) and fhir_types.Decimal.pattern.fullmatch(str(value)) is not None
    return type(value) is int


def _date(value: object) -> bool:
    if not isinstance(value, str) or not fhir_types.Date.pattern.fullmatch(value):
        return False
    return len(value) != 10 or _parses(date.fromisoformat, value)


def _date_time(pattern: re.Pattern) -> Check:
    def check(value: object) -> bool:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            return False
        if "T" not in value:
            return len(value) != 10 or _parses(date.fromisoformat, value)
        clock = value.split("T", 1)[1]
        seconds = clock[6:8]
        fraction = re.match(r"\.(\d+)", clock[8:])
        if seconds == "60" or (fraction and len(fraction.group(1)) > MAX_FRACTION_DIGITS):
            return False
        return _parses(datetime.fromisoformat, value.replace("Z", "+00:00"))

    return check


def _parses(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


PRIMITIVES: dict[type, Check] = {
    fhir_types.String: _string,
    fhir_types.Code: _code,
    fhir_types.Id: _id,
    fhir_types.Uri: _any_string,
    fhir_types.Canonical: _any_string,
    fhir_types.Markdown: _any_string,
    fhir_types.Xhtml: _any_string,
    fhir_types.Base64Binary: _base64,
    fhir_types.Oid: _oid,
    fhir_types.Decimal: _decimal,
    fhir_types.Date: _date,
    fhir_types.DateTime: _date_time(fhir_types.DateTime.pattern),
    fhir_types.Instant: _date_time(fhir_types.Instant.pattern),
    fhir_types.PositiveInt: _integer(1),
    fhir_types.UnsignedInt: _integer(0),
    fhir_types.Integer: _integer(INT32[0]),
}


class _Element:
    __slots__ = ("check", "many", "required", "group")

    def __init__(self, check: Check, many: bool, required: bool, group: str | None) -> None:
        self.check = check
        self.many = many
        self.required = required
        self.group = group


class _Model:
    """One model class's elements by JSON name, and its choice groups."""

    def __init__(self, model: type) -> None:
        self.elements: dict[str, _Element] = {}
        self.groups: dict[str, bool] = {}  # choice group -> required
        self.required: list[str] = []
        self.is_resource = _is_resource(model)
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if not extra.get("element_property"):
                continue  # fhir_comments and the `_x` primitive extensions: doubted when present
            key = info.alias or name
            many, check = _element_check(info.annotation)
            group = extra.get("one_of_many")
            required = bool(info.is_required() or extra.get("element_required"))
            self.elements[key] = _Element(check, many, required, group)
            if group:
                self.groups[group] = self.groups.get(group, False) or bool(extra.get("one_of_many_required"))
            if required:
                self.required.append(key)

    def valid(self, data: dict) -> bool:
        chosen: set[str] = set()
        for key, value in data.items():
            element = self.elements.get(key)
            if element is None:
                if key == "resourceType" and self.is_resource:
                    continue
                return False
            if value is None:
                return False
            if element.many:
                if type(value) is not list or any(item is None or not element.check(item) for item in value):
                    return False
            elif not element.check(value):
                return False
            if element.group:
                if element.group in chosen:
                    return False
                chosen.add(element.group)
        if any(key not in data for key in self.required):
            return False
        return all(group in chosen for group, required in self.groups.items() if required)


def _is_resource(model: type) -> bool:
    return any(base.__name__ == "Resource" for base in model.__mro__)


_MODELS: dict[type, _Model] = {}


def _model(model: type) -> _Model:
    found = _MODELS.get(model)
    if found is None:
        found = _MODELS[model] = _Model(model)
    return found


def _complex(model_type: type) -> Check:
    """A datatype or backbone element, read lazily: the element tables are recursive."""
    table: list[_Model] = []

    def check(value: object) -> bool:
        if type(value) is not dict:
            return False
        if not table:
            table.append(_model(model_type.get_model_klass()))  # type: ignore[attr-defined]
        return table[0].valid(value)

    return check


def _element_check(annotation: object) -> tuple[bool, Check]:
    """(repeats, check) of one element's annotation; a type not handled here is always doubted."""
    many = False
    kind = annotation
    while True:
        origin = typing.get_origin(kind)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            if len(args) != 1:
                return many, _no_doubt
            kind = args[0]
        elif origin is list:
            many, kind = True, typing.get_args(kind)[0]
        elif origin is typing.Annotated:
            for marker in typing.get_args(kind)[1:]:
                check = PRIMITIVES.get(marker if isinstance(marker, type) else type(marker))
                if check is not None:
                    return many, check
            return many, _no_doubt
        else:
            break
    if kind is bool:
        return many, _boolean
    if isinstance(kind, type) and getattr(kind, "__name__", "") == "ResourceType":
        return many, _contained
    if isinstance(kind, type) and hasattr(kind, "get_model_klass"):
        return many, _complex(kind)
    return many, _no_doubt


def _contained(value: object) -> bool:
    return type(value) is dict and surely_valid(value)


def surely_valid(resource: dict) -> bool:
    """True only when the R4B model of the resource's type would accept it; False: not sure."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return False
    return _model(model).valid(resource)
