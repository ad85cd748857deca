"""Compile path-shaped FHIRPath expressions into plain Python accessors over resource dicts.

An accessor maps a resource to the list of elements the expression selects, as fhirpathpy would (same
choice-type variants, same flattening), but with dict lookups instead of an interpreter. What it reads:
member paths, `|` unions, `[n]`, `ofType(T)` / `as T` (choice types become their `value[x]` key),
`where(...)` with `=`/`!=` against a literal, `matches('re')`, `and`/`or`, `exists()`, `empty()`,
`first()`, `extension('url')` and `%resource`. Anything else raises `NotCompilable`, and the caller
falls back to fhirpathpy.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from nphies_facade.resources.search import model
from nphies_facade.resources.search.expressions import (
    Binary,
    Call,
    FhirPathSyntaxError,
    Index,
    Literal,
    Member,
    Node,
    TypeOperation,
    Variable,
    parse,
)

Step = Callable[[list, dict], list]  # (input collection, root resource) -> output collection
Accessor = Callable[[dict], list]  # resource -> selected elements
RelativeAccessor = Callable[[object, dict], list]  # (item, root resource) -> selected elements


class NotCompilable(Exception):
    """The expression uses something the compiler does not translate; evaluate it with fhirpathpy."""


@dataclass(frozen=True, slots=True)
class _Scope:
    path: str | None  # static type path of the input items
    resource_type: str
    at_root: bool  # the input is [the resource itself]


@dataclass(frozen=True, slots=True)
class _Compiled:
    step: Step
    path: str | None  # static type path of the output items; None when it depends on the data


def compile_accessor(expression: str, resource_type: str) -> Accessor:
    step = _compile_text(expression, _Scope(resource_type, resource_type, True)).step
    return lambda resource: step([resource], resource)


def compile_branches(expression: str, resource_type: str) -> list[tuple[Accessor, str]]:
    """One accessor per top-level union branch, with the static type path of what it selects."""
    node = _parse(expression)
    branches = _union_branches(node)
    out: list[tuple[Accessor, str]] = []
    for branch in branches:
        compiled = _compile(branch, _Scope(resource_type, resource_type, True))
        if compiled.path is None:
            raise NotCompilable(f"type of {expression!r} depends on the data")
        out.append((_bind_root(compiled.step), compiled.path))
    return out


def compile_relative(expression: str, resource_type: str, path: str) -> RelativeAccessor:
    """An accessor for an expression evaluated on an element of static type `path` (composite parts)."""
    step = _compile_text(expression, _Scope(path, resource_type, False)).step
    return lambda item, root: step([item], root)


def _bind_root(step: Step) -> Accessor:
    return lambda resource: step([resource], resource)


def _parse(expression: str) -> Node:
    try:
        return parse(expression)
    except FhirPathSyntaxError as error:
        raise NotCompilable(str(error)) from error


def _compile_text(expression: str, scope: _Scope) -> _Compiled:
    return _compile(_parse(expression), scope)


def _union_branches(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "|":
        return _union_branches(node.left) + _union_branches(node.right)
    return [node]


def _compile(node: Node, scope: _Scope) -> _Compiled:
    if isinstance(node, Member):
        return _compile_member(node, scope)
    if isinstance(node, Call):
        return _compile_call(node, scope)
    if isinstance(node, Binary):
        return _compile_binary(node, scope)
    if isinstance(node, TypeOperation) and node.op == "as":
        return _compile_of_type(node.target, node.type_name, scope)
    if isinstance(node, Index):
        return _compile_index(node, scope)
    if isinstance(node, Variable) and node.name in ("resource", "rootResource"):
        return _Compiled(lambda items, root: [root], scope.resource_type)
    if isinstance(node, Literal):
        value = node.value
        return _Compiled(lambda items, root: [value], None)
    raise NotCompilable(f"{type(node).__name__} is not compiled")


def _input(target: Node | None, scope: _Scope) -> _Compiled:
    """The collection a member or function applies to: the target's result, or the scope's input."""
    if target is None:
        return _Compiled(_identity, scope.path)
    return _compile(target, scope)


def _chain(first: Step, second: Step) -> Step:
    if first is _identity:
        return second
    return lambda items, root: second(first(items, root), root)


def _identity(items: list, root: dict) -> list:
    return items


# members


def _compile_member(node: Member, scope: _Scope) -> _Compiled:
    if node.target is None and node.name[0].isupper():
        return _compile_type_root(node.name, scope)
    source = _input(node.target, scope)
    if source.path is None:
        raise NotCompilable(f"type before .{node.name} depends on the data")
    child = model.child(source.path, node.name)
    if child.variants:
        return _Compiled(_chain(source.step, _choice_step(child.variants, None)), None)
    return _Compiled(_chain(source.step, _member_step(node.name)), child.path)


def _compile_type_root(type_name: str, scope: _Scope) -> _Compiled:
    """`Patient` at the start of a path: the resource itself when it is of that type."""
    if scope.at_root and type_name == scope.resource_type:
        return _Compiled(_identity, type_name)

    def of_resource_type(items: list, root: dict) -> list:
        return [item for item in items if type(item) is dict and item.get("resourceType") == type_name]

    return _Compiled(of_resource_type, type_name)


def _member_step(name: str) -> Step:
    def member(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            if type(item) is dict:
                value = item.get(name)
                if value is not None:
                    if type(value) is list:
                        out.extend(value)
                    else:
                        out.append(value)
        return out

    return member


def _choice_step(variants: tuple[model.ChoiceVariant, ...], wanted_type: str | None) -> Step:
    """`value` of a choice element: the first variant present (as fhirpathpy picks), if of the wanted type."""
    order: dict[str, tuple[int, str, bool]] = {}
    for rank, variant in enumerate(variants):
        keep = wanted_type is None or model.is_type(variant.type_name, wanted_type)
        order[variant.key] = order["_" + variant.key] = (rank, variant.key, keep)

    def choice(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            if type(item) is not dict:
                continue
            present = [order[key] for key in item if key in order]
            if not present:
                continue
            _, key, keep = min(present)
            value = item.get(key)
            if keep and value is not None:
                if type(value) is list:
                    out.extend(value)
                else:
                    out.append(value)
        return out

    return choice


# functions


def _compile_call(node: Call, scope: _Scope) -> _Compiled:
    name, args = node.name, node.args
    if name in ("ofType", "as") and len(args) == 1:
        return _compile_of_type(node.target, _type_name(args[0]), scope)
    source = _input(node.target, scope)
    if name == "where" and len(args) == 1:
        return _Compiled(_chain(source.step, _where_step(args[0], source.path, scope)), source.path)
    if name == "extension" and len(args) == 1:
        return _Compiled(_chain(source.step, _extension_step(_string_arg(args[0]))), "Extension")
    if name == "matches" and len(args) == 1:
        return _Compiled(_chain(source.step, _matches_step(_string_arg(args[0]))), None)
    if not args and name in _COLLECTION_FUNCTIONS:
        return _Compiled(_chain(source.step, _COLLECTION_FUNCTIONS[name]), _function_path(name, source))
    raise NotCompilable(f"{name}() is not compiled")


def _function_path(name: str, source: _Compiled) -> str | None:
    return source.path if name == "first" else "boolean"


_COLLECTION_FUNCTIONS: dict[str, Step] = {
    "exists": lambda items, root: [len(items) > 0],
    "empty": lambda items, root: [len(items) == 0],
    "first": lambda items, root: items[:1],
}


def _type_name(node: Node) -> str:
    if isinstance(node, Member) and node.target is None:
        return node.name
    if isinstance(node, Member) and isinstance(node.target, Member) and node.target.target is None:
        return f"{node.target.name}.{node.name}"
    raise NotCompilable("type specifier expected")


def _string_arg(node: Node) -> str:
    if isinstance(node, Literal) and type(node.value) is str:
        return node.value
    raise NotCompilable("string literal argument expected")


def _compile_of_type(target: Node | None, type_name: str, scope: _Scope) -> _Compiled:
    """ofType(T): on a choice element, its `nameT` variant(s); elsewhere decided from the static type."""
    if isinstance(target, Member) and not (target.target is None and target.name[0].isupper()):
        source = _input(target.target, scope)
        if source.path is not None:
            child = model.child(source.path, target.name)
            if child.variants:
                step = _chain(source.step, _choice_step(child.variants, type_name))
                kept = {v.type_name for v in child.variants if model.is_type(v.type_name, type_name)}
                return _Compiled(step, kept.pop() if len(kept) == 1 else None)
    source = _input(target, scope)
    if source.path is None or source.path.startswith("System."):
        raise NotCompilable(f"ofType({type_name}) on a value of unknown type")
    static_type = "BackboneElement" if model.is_backbone_path(source.path) else source.path
    if model.is_type(static_type, type_name):
        return source
    return _Compiled(lambda items, root: [], None)


def _extension_step(url: str) -> Step:
    """All extensions with that url (fhirpathpy returns only the first per element)."""

    def extension(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            if type(item) is dict:
                for ext in item.get("extension") or ():
                    if type(ext) is dict and ext.get("url") == url:
                        out.append(ext)
        return out

    return extension


def _matches_step(pattern_text: str) -> Step:
    pattern = re.compile(pattern_text, re.DOTALL)

    def matches(items: list, root: dict) -> list:
        if len(items) != 1 or type(items[0]) is not str:
            return []
        return [pattern.search(items[0]) is not None]

    return matches


def _compile_index(node: Index, scope: _Scope) -> _Compiled:
    if not (isinstance(node.index, Literal) and type(node.index.value) is int):
        raise NotCompilable("only literal integer indexes are compiled")
    position = node.index.value
    source = _compile(node.target, scope)
    return _Compiled(_chain(source.step, lambda items, root: items[position : position + 1]), source.path)


# where() criteria


def _where_step(criteria: Node, path: str | None, scope: _Scope) -> Step:
    if path is None:
        raise NotCompilable("where() on a value of unknown type")
    item_scope = _Scope(path, scope.resource_type, False)
    fast = _field_equals_step(criteria, path) or _field_matches_step(criteria, path)
    if fast is not None:
        return fast
    condition = _compile(criteria, item_scope).step

    def where(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            result = condition([item], root)
            if result and result[0]:
                out.append(item)
        return out

    return where


def _plain_field(node: object, path: str) -> str | None:
    """The name of `node` when it is a single non-choice member of the item, e.g. `system`."""
    if isinstance(node, Member) and node.target is None and not node.name[0].isupper():
        if not model.child(path, node.name).variants:
            return node.name
    return None


def _field_equals_step(criteria: Node, path: str) -> Step | None:
    """where(field = 'literal'), the common case, without the generic per-item evaluation."""
    if not (isinstance(criteria, Binary) and criteria.op == "=" and isinstance(criteria.right, Literal)):
        return None
    field = _plain_field(criteria.left, path)
    if field is None:
        return None
    wanted = criteria.right.value

    def where_equals(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            if type(item) is dict:
                value = item.get(field)
                if type(value) is list:
                    value = value[0] if len(value) == 1 else None
                if value is not None and value == wanted:
                    out.append(item)
        return out

    return where_equals


def _field_matches_step(criteria: Node, path: str) -> Step | None:
    """where(field.matches('re')): e.g. the rewritten `resolve() is Patient`."""
    if not (isinstance(criteria, Call) and criteria.name == "matches" and len(criteria.args) == 1):
        return None
    field = _plain_field(criteria.target, path)
    if field is None:
        return None
    pattern = re.compile(_string_arg(criteria.args[0]), re.DOTALL)

    def where_matches(items: list, root: dict) -> list:
        out: list = []
        for item in items:
            if type(item) is dict:
                value = item.get(field)
                if type(value) is str and pattern.search(value) is not None:
                    out.append(item)
        return out

    return where_matches


# operators


def _compile_binary(node: Binary, scope: _Scope) -> _Compiled:
    if node.op == "|":
        left, right = _compile(node.left, scope), _compile(node.right, scope)
        left_step, right_step = left.step, right.step
        return _Compiled(
            lambda items, root: left_step(items, root) + right_step(items, root),
            left.path if left.path == right.path else None,
        )
    if node.op in ("=", "!=") and isinstance(node.right, Literal):
        return _Compiled(
            _equality_step(_compile(node.left, scope).step, node.right.value, node.op), "boolean"
        )
    if node.op in ("and", "or"):
        left, right = _compile(node.left, scope).step, _compile(node.right, scope).step
        combine = _and if node.op == "and" else _or
        return _Compiled(lambda items, root: combine(left(items, root), right(items, root)), "boolean")
    raise NotCompilable(f"operator {node.op!r} is not compiled")


def _equality_step(left: Step, literal: object, op: str) -> Step:
    negate = op == "!="

    def equality(items: list, root: dict) -> list:
        values = left(items, root)
        if not values:
            return []
        if len(values) != 1:
            return [negate]
        return [(values[0] == literal) != negate]

    return equality


def _truth(collection: list) -> bool | None:
    """A collection as a three-valued boolean: empty is unknown, a single non-boolean item is true."""
    if not collection:
        return None
    first = collection[0]
    return first if type(first) is bool else True


def _and(left: list, right: list) -> list:
    a, b = _truth(left), _truth(right)
    if a is False or b is False:
        return [False]
    return [True] if a is True and b is True else []


def _or(left: list, right: list) -> list:
    a, b = _truth(left), _truth(right)
    if a is True or b is True:
        return [True]
    return [False] if a is False and b is False else []
