"""Compile the FHIRPath of R4 invariants into Python closures over resource dicts.

The invariants are boolean expressions over a context element: member paths, existence and counting,
comparisons, string tests, `where`/`all`/`select`, `implies`/`xor`. This compiler reads them with the
project's FHIRPath parser (search/expressions.py) and resolves choice elements with the same R4 type
tables as the search compiler (search/model.py). Unlike search extraction it keeps FHIRPath's view of a
primitive that has only an extension (`_system`): the element exists, it has no value.

What it does not translate raises NotCompilable (the caller evaluates with fhirpathpy); a value it cannot
decide at run time (dates of different precisions or time zones) raises Undecided, likewise.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from numbers import Number

import orjson

from .search import model
from .search.expressions import (
    Binary,
    Call,
    FhirPathSyntaxError,
    Index,
    Literal,
    Member,
    TypeOperation,
    Variable,
    parse,
)


class NotCompilable(Exception):
    """The expression uses something this compiler does not translate."""


class Undecided(Exception):
    """This input needs FHIRPath semantics the compiled code does not have (fhirpathpy decides)."""


@dataclass(frozen=True, slots=True)
class Env:
    resource: dict  # %resource
    root: dict  # %rootResource
    context: object  # %context


Step = Callable[[list, Env], list]
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})
_UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True, slots=True)
class _Compiled:
    step: Step
    path: str | None  # static type of the items: a type path, a primitive type name, or None if unknown


def compile_condition(expression: str, type_path: str) -> Callable[[object, Env], list]:
    """The expression as a function of the context node; the result is a FHIRPath collection."""
    try:
        node = parse(expression)
    except FhirPathSyntaxError as error:
        raise NotCompilable(str(error)) from error
    step = _compile(node, type_path, type_path).step
    return lambda node, env: step([node], env)


def _compile(node: object, path: str | None, context_path: str) -> _Compiled:
    if isinstance(node, Literal):
        value = node.value
        return _Compiled(lambda items, env: [value], _literal_type(value))
    if isinstance(node, Variable):
        return _variable(node.name, context_path)
    if isinstance(node, Member):
        return _member(node, path, context_path)
    if isinstance(node, Call):
        return _call(node, path, context_path)
    if isinstance(node, Binary):
        return _binary(node, path, context_path)
    if isinstance(node, TypeOperation):
        return _type_operation(node, path, context_path)
    if isinstance(node, Index) and isinstance(node.index, Literal) and type(node.index.value) is int:
        target = _compile(node.target, path, context_path)
        position = node.index.value
        return _Compiled(_chain(target.step, lambda items, env: items[position : position + 1]), target.path)
    raise NotCompilable(type(node).__name__)


def _literal_type(value: object) -> str:
    if type(value) is bool:
        return "boolean"
    return "string" if type(value) is str else "decimal"


def _variable(name: str, context_path: str) -> _Compiled:
    if name == "ucum":
        return _Compiled(lambda items, env: [_UCUM], "string")
    if name == "resource":
        return _Compiled(lambda items, env: [env.resource], None)
    if name == "rootResource":
        return _Compiled(lambda items, env: [env.root], None)
    if name == "context":
        return _Compiled(lambda items, env: [env.context], context_path)
    raise NotCompilable(f"%{name}")


def _chain(first: Step, second: Step) -> Step:
    return lambda items, env: second(first(items, env), env)


def _identity(items: list, env: Env) -> list:
    return items


# members


def _member(node: Member, path: str | None, context_path: str) -> _Compiled:
    if node.target is None:
        source = _Compiled(_identity, path)
        if node.name[0].isupper():
            name = node.name

            def of_type(items: list, env: Env) -> list:
                return [i for i in items if type(i) is dict and i.get("resourceType") == name]

            return _Compiled(of_type, name)
    else:
        source = _compile(node.target, path, context_path)
    if source.path is None:
        return _Compiled(_chain(source.step, _dynamic_member_step(node.name)), None)
    child = model.child(source.path, node.name)
    if child.variants:
        keys = tuple(v.key for v in child.variants)
        types = {v.key: v.type_name for v in child.variants}
        kept = {types[k] for k in keys}
        return _Compiled(_chain(source.step, _choice_step(keys)), kept.pop() if len(kept) == 1 else None)
    return _Compiled(_chain(source.step, _member_step(node.name)), child.path)


def _member_step(name: str) -> Step:
    extension_key = "_" + name

    def member(items: list, env: Env) -> list:
        out: list = []
        for item in items:
            if type(item) is not dict:
                continue
            value = item.get(name)
            extensions = item.get(extension_key)
            if value is None:
                if extensions is None:
                    continue
                value = extensions  # a primitive with only an extension: present, without a value
            elif extensions is not None and type(value) is list and type(extensions) is list:
                value = [v if v is not None else e for v, e in zip(value, extensions, strict=False)]
            if type(value) is list:
                out.extend(v for v in value if v is not None)
            else:
                out.append(value)
        return out

    return member


_CHOICE_NAMES = frozenset(path.rsplit(".", 1)[-1] for path in model.r4_model()["choiceTypePaths"])


@cache
def _child_of(resource_type: str, name: str) -> Step:
    child = model.child(resource_type, name)
    return _choice_step(tuple(v.key for v in child.variants)) if child.variants else _member_step(name)


def _dynamic_member_step(name: str) -> Step:
    """A member of items whose type is known only at run time: a resource (by its resourceType), or an
    element that must not be a choice (`value` of an unknown type is Undecided)."""
    plain = _member_step(name)
    stem = len(name)

    def member(items: list, env: Env) -> list:
        out: list = []
        for item in items:
            if type(item) is not dict:
                continue
            resource_type = item.get("resourceType")
            if type(resource_type) is str:
                out.extend(_child_of(resource_type, name)([item], env))
                continue
            if (
                name in _CHOICE_NAMES
                and name not in item
                and any(k.startswith(name) and k[stem : stem + 1].isupper() for k in item)
            ):
                raise Undecided(f"{name} of an element of unknown type")
            out.extend(plain([item], env))
        return out

    return member


def _choice_step(keys: tuple[str, ...]) -> Step:
    steps = [_member_step(key) for key in keys]

    def choice(items: list, env: Env) -> list:
        out: list = []
        for step in steps:
            out.extend(step(items, env))
        return out

    return choice


# functions


def _call(node: Call, path: str | None, context_path: str) -> _Compiled:
    name, args = node.name, node.args
    if node.target is None and name == "iif":
        return _iif(args, path, context_path)
    source = _Compiled(_identity, path) if node.target is None else _compile(node.target, path, context_path)
    if name in _NO_ARGUMENT and not args:
        function, result_type = _NO_ARGUMENT[name]
        return _Compiled(_chain(source.step, function), source.path if result_type == "same" else result_type)
    if name in ("where", "exists", "all", "select") and len(args) == 1:
        criteria = _compile(args[0], source.path, context_path)
        step = _LAMBDA[name](criteria.step)
        return _Compiled(
            _chain(source.step, step),
            source.path if name == "where" else criteria.path if name == "select" else "boolean",
        )
    if name == "trace" and args:
        return source
    if name in _STRING_FUNCTIONS and len(args) == 1 and isinstance(args[0], Literal):
        return _Compiled(_chain(source.step, _STRING_FUNCTIONS[name](args[0].value)), "boolean")
    if name == "substring" and len(args) == 1 and isinstance(args[0], Literal) and type(args[0].value) is int:
        start = args[0].value
        return _Compiled(
            _chain(source.step, _singleton_string(lambda s: [s[start:]] if start < len(s) else [])), "string"
        )
    if name == "descendants" and not args:
        return _Compiled(_chain(source.step, _descendants), None)
    if name == "as" and len(args) == 1 and isinstance(args[0], Member) and args[0].target is None:
        if source.path is None and args[0].name in _STRING_TYPES:
            # Items of unknown type (descendants()): every string stands for a uri/url/canonical; this
            # can only find more references than there are, never fewer.
            return _Compiled(_chain(source.step, _strings), args[0].name)
    if name in ("intersect", "combine") and len(args) == 1 and _absolute(args[0]):
        other = _compile(args[0], path, context_path).step
        combine = _intersect if name == "intersect" else _combine
        return _Compiled(lambda items, env: combine(source.step(items, env), other(items, env)), source.path)
    if name == "is" and len(args) == 1 and isinstance(args[0], Member) and args[0].target is None:
        return _Compiled(_chain(source.step, _is_step(args[0].name, source.path)), "boolean")
    raise NotCompilable(f"{name}()")


_STRING_TYPES = frozenset({"canonical", "uri", "url"})


def _descendants(items: list, env: Env) -> list:
    out: list = []
    pending = list(items)
    while pending:
        item = pending.pop()
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        for child in children:
            if type(child) is list:
                out.extend(child)
                pending.extend(child)
            else:
                out.append(child)
                pending.append(child)
    return out


def _strings(items: list, env: Env) -> list:
    return [item for item in items if type(item) is str]


def _absolute(node: object) -> bool:
    """Whether an expression starts from a variable or a literal (so it does not depend on the focus)."""
    while isinstance(node, (Member, Call, Index)) and node.target is not None:
        node = node.target
    return isinstance(node, (Variable, Literal))


def _intersect(left: list, right: list) -> list:
    out: list = []
    for item in left:
        if item in right and item not in out:
            out.append(item)
    return out


def _combine(left: list, right: list) -> list:
    return left + right


def _to_string(items: list, env: Env) -> list:
    if len(items) != 1:
        return []
    value = items[0]
    if type(value) is bool:
        return ["true" if value else "false"]
    if type(value) in (dict, list):
        return []
    return [value if type(value) is str else str(value)]


def _truth(collection: list) -> bool | None:
    if not collection:
        return None
    if len(collection) > 1:
        raise Undecided("a boolean of several items")
    first = collection[0]
    return first if type(first) is bool else True


def _not(items: list, env: Env) -> list:
    value = _truth(items)
    return [] if value is None else [not value]


def _has_value(items: list, env: Env) -> list:
    return [len(items) == 1 and (type(items[0]) in (str, bool) or isinstance(items[0], Number))]


def _distinct(items: list, env: Env) -> list:
    keys = [
        orjson.dumps(i, option=orjson.OPT_SORT_KEYS) if type(i) in (dict, list) else (type(i), i)
        for i in items
    ]
    return [len(set(keys)) == len(keys)]


def _to_integer(items: list, env: Env) -> list:
    if len(items) != 1:
        return []
    value = items[0]
    if type(value) is int:
        return [value]
    if type(value) is str and re.fullmatch(r"[+-]?\d+", value):
        return [int(value)]
    return []


_NO_ARGUMENT: dict[str, tuple[Step, str]] = {
    "exists": (lambda items, env: [len(items) > 0], "boolean"),
    "empty": (lambda items, env: [len(items) == 0], "boolean"),
    "count": (lambda items, env: [len(items)], "integer"),
    "not": (_not, "boolean"),
    "hasValue": (_has_value, "boolean"),
    "first": (lambda items, env: items[:1], "same"),
    "tail": (lambda items, env: items[1:], "same"),
    "isDistinct": (_distinct, "boolean"),
    "toInteger": (_to_integer, "integer"),
    "toString": (_to_string, "string"),
}


def _where(criteria: Step) -> Step:
    return lambda items, env: [i for i in items if _truth(criteria([i], env)) is True]


def _exists(criteria: Step) -> Step:
    return lambda items, env: [any(_truth(criteria([i], env)) is True for i in items)]


def _all(criteria: Step) -> Step:
    return lambda items, env: [all(_truth(criteria([i], env)) is True for i in items)]


def _select(projection: Step) -> Step:
    return lambda items, env: [out for i in items for out in projection([i], env)]


_LAMBDA = {"where": _where, "exists": _exists, "all": _all, "select": _select}


def _singleton_string(function: Callable[[str], list]) -> Step:
    def step(items: list, env: Env) -> list:
        if not items:
            return []
        if len(items) > 1 or type(items[0]) is not str:
            raise Undecided("a string function on something else than one string")
        return function(items[0])

    return step


_STRING_FUNCTIONS: dict[str, Callable[[object], Step]] = {
    "startsWith": lambda prefix: _singleton_string(lambda s: [s.startswith(prefix)]),
    "contains": lambda part: _singleton_string(lambda s: [part in s]),
    "matches": lambda pattern: _singleton_string(
        lambda s, p=re.compile(pattern, re.DOTALL): [p.search(s) is not None]
    ),
}


def _iif(args: tuple, path: str | None, context_path: str) -> _Compiled:
    if len(args) not in (2, 3):
        raise NotCompilable("iif() arity")
    parts = [_compile(arg, path, context_path).step for arg in args]

    def iif(items: list, env: Env) -> list:
        if _truth(parts[0](items, env)) is True:
            return parts[1](items, env)
        return parts[2](items, env) if len(parts) == 3 else []

    return _Compiled(iif, None)


def _type_operation(node: TypeOperation, path: str | None, context_path: str) -> _Compiled:
    """`x is T` / `x as T`: on a choice element, by the variant present; on a resource, by resourceType."""
    target = node.target
    wanted = node.type_name.removeprefix("FHIR.").removeprefix("System.")
    if isinstance(target, Member) and not target.name[0].isupper():
        source = (
            _Compiled(_identity, path)
            if target.target is None
            else _compile(target.target, path, context_path)
        )
        if source.path is not None:
            variants = model.child(source.path, target.name).variants
            if variants:
                keys = tuple(v.key for v in variants if v.type_name.lower() == wanted.lower())
                present = _choice_step(tuple(v.key for v in variants))
                matching = _choice_step(keys)
                type_name = next((v.type_name for v in variants if v.key in keys), None)
                if node.op == "as":
                    return _Compiled(_chain(source.step, matching), type_name)

                def is_variant(items: list, env: Env) -> list:
                    if not present(items, env):
                        return []
                    return [bool(matching(items, env))]

                return _Compiled(_chain(source.step, is_variant), "boolean")
    if node.op != "is":
        raise NotCompilable("as on something else than a choice element")
    compiled = _compile(target, path, context_path)
    return _Compiled(_chain(compiled.step, _is_step(node.type_name, compiled.path)), "boolean")


def _is_step(type_name: str, static_type: str | None) -> Step:
    wanted = type_name.removeprefix("FHIR.")

    def is_type(items: list, env: Env) -> list:
        if len(items) != 1:
            if not items:
                return []
            raise Undecided("is on several items")
        item = items[0]
        if type(item) is dict and "resourceType" in item:
            return [item["resourceType"] == wanted]
        raise Undecided("is on an element")

    return is_type


# operators


def _binary(node: Binary, path: str | None, context_path: str) -> _Compiled:
    left = _compile(node.left, path, context_path)
    right = _compile(node.right, path, context_path)
    op = node.op
    if op in _LOGIC:
        combine = _LOGIC[op]
        lstep, rstep = left.step, right.step
        return _Compiled(
            lambda items, env: combine(_truth(lstep(items, env)), lambda: _truth(rstep(items, env))),
            "boolean",
        )
    if op == "|":
        lstep, rstep = left.step, right.step
        return _Compiled(
            lambda items, env: _union(lstep(items, env), rstep(items, env)),
            left.path if left.path == right.path else None,
        )
    if op in ("=", "!="):
        return _Compiled(_equality(left, right, op == "!="), "boolean")
    if op in ("<", "<=", ">", ">="):
        return _Compiled(_comparison(left, right, op), "boolean")
    if op in ("in", "contains"):
        element, collection = (left, right) if op == "in" else (right, left)
        return _Compiled(_membership(element, collection), "boolean")
    if op in ("+", "&"):
        return _Compiled(_concatenation(left, right, op), "string" if op == "&" else left.path)
    raise NotCompilable(f"operator {op}")


def _and(a: bool | None, b: Callable[[], bool | None]) -> list:
    if a is False:
        return [False]
    second = b()
    if second is False:
        return [False]
    return [True] if a is True and second is True else []


def _or(a: bool | None, b: Callable[[], bool | None]) -> list:
    if a is True:
        return [True]
    second = b()
    if second is True:
        return [True]
    return [False] if a is False and second is False else []


def _xor(a: bool | None, b: Callable[[], bool | None]) -> list:
    second = b()
    return [] if a is None or second is None else [a != second]


def _implies(a: bool | None, b: Callable[[], bool | None]) -> list:
    if a is False:
        return [True]
    second = b()
    if a is True:
        return [] if second is None else [second]
    return [True] if second is True else []


_LOGIC = {"and": _and, "or": _or, "xor": _xor, "implies": _implies}


def _union(left: list, right: list) -> list:
    out: list = []
    for item in left + right:
        if item not in out:
            out.append(item)
    return out


def _scalar(value: object, static_type: str | None) -> object:
    """A value as FHIRPath compares it; dates become (precision, instant) or Undecided."""
    if type(value) is bool or isinstance(value, Number):
        return value
    if type(value) is dict and static_type in _QUANTITY_TYPES:
        return _quantity(value)
    if type(value) is str:
        if static_type in _DATE_TYPES:
            return _date(value)
        return value
    raise Undecided("a comparison of a complex value")


_QUANTITY_TYPES = frozenset({"Quantity", "SimpleQuantity", "Age", "Duration", "Distance", "Count", "Money"})


def _quantity(value: dict) -> "_Amount":
    amount = value.get("value")
    if not isinstance(amount, Number) or type(amount) is bool:
        raise Undecided("a quantity without a value")
    return _Amount(
        amount, (value.get("system"), value.get("code") or value.get("unit"), value.get("currency"))
    )


@dataclass(frozen=True, slots=True)
class _Amount:
    """A quantity as compared: its value, within one unit (other units are Undecided)."""

    value: object
    unit: tuple

    def _same_unit(self, other: "_Amount") -> None:
        if self.unit != other.unit:
            raise Undecided("quantities in different units")

    def __lt__(self, other: "_Amount") -> bool:
        self._same_unit(other)
        return self.value < other.value

    def __le__(self, other: "_Amount") -> bool:
        self._same_unit(other)
        return self.value <= other.value

    def __gt__(self, other: "_Amount") -> bool:
        self._same_unit(other)
        return self.value > other.value

    def __ge__(self, other: "_Amount") -> bool:
        self._same_unit(other)
        return self.value >= other.value


_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _date(text: str) -> tuple[int, tuple]:
    match = _DATE.fullmatch(text)
    if match is None:
        raise Undecided("not a date")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is None:
        parts = tuple(int(p) for p in (year, month, day) if p is not None)
        return len(parts), parts
    if zone is None or second is None:
        raise Undecided("a time without zone or seconds")
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Undecided("a date that does not exist") from None
    return 6, (instant.timestamp(),)


def _pair(left: _Compiled, right: _Compiled, items: list, env: Env) -> tuple[object, object] | None:
    a, b = left.step(items, env), right.step(items, env)
    if not a or not b:
        return None
    if len(a) > 1 or len(b) > 1:
        raise Undecided("a comparison of several items")
    return _scalar(a[0], left.path), _scalar(b[0], right.path)


def _dates_comparable(x: object, y: object) -> bool:
    if type(x) is tuple or type(y) is tuple:
        if not (type(x) is tuple and type(y) is tuple) or x[0] != y[0]:
            raise Undecided("dates of different precisions")
    return True


def _equality(left: _Compiled, right: _Compiled, negate: bool) -> Step:
    def equality(items: list, env: Env) -> list:
        a, b = left.step(items, env), right.step(items, env)
        if not a or not b:
            return []
        if len(a) != len(b):
            return [negate]
        if len(a) > 1:
            raise Undecided("equality of collections")
        x, y = _scalar(a[0], left.path), _scalar(b[0], right.path)
        _dates_comparable(x, y)
        return [(x == y) != negate]

    return equality


_ORDER = {
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


def _comparison(left: _Compiled, right: _Compiled, op: str) -> Step:
    compare = _ORDER[op]

    def comparison(items: list, env: Env) -> list:
        pair = _pair(left, right, items, env)
        if pair is None:
            return []
        x, y = pair
        _dates_comparable(x, y)
        if type(x) is not type(y) and not (isinstance(x, Number) and isinstance(y, Number)):
            raise Undecided("a comparison of different types")
        if type(x) is bool:
            raise Undecided("a comparison of booleans")
        return [compare(x, y)]

    return comparison


def _membership(element: _Compiled, collection: _Compiled) -> Step:
    def membership(items: list, env: Env) -> list:
        a = element.step(items, env)
        if not a:
            return []
        if len(a) > 1:
            raise Undecided("in with several items")
        if type(a[0]) in (dict, list):
            raise Undecided("in with a complex value")
        return [a[0] in collection.step(items, env)]

    return membership


def _concatenation(left: _Compiled, right: _Compiled, op: str) -> Step:
    def concatenation(items: list, env: Env) -> list:
        a, b = left.step(items, env), right.step(items, env)
        if len(a) > 1 or len(b) > 1:
            raise Undecided("concatenation of several items")
        if op == "&":
            x, y = (a[0] if a else ""), (b[0] if b else "")
        elif not a or not b:
            return []
        else:
            x, y = a[0], b[0]
        if type(x) is str and type(y) is str:
            return [x + y]
        if op == "+" and type(x) is int and type(y) is int:
            return [x + y]
        raise Undecided("+ on something else than strings or integers")

    return concatenation
