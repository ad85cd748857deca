"""The error-severity invariants of the R4 StructureDefinitions, compiled once at start-up and evaluated on
the contexts a walk found (rules.py).

Each invariant's FHIRPath is read (search/expressions.py) for the context members it depends on: when a
context has none of them, the result is the one computed once at start-up on an empty context, so most
invariants of a typical resource cost a set lookup. Otherwise the expression runs, compiled to Python
(invariant_compiler.py) where it can be, else with fhirpathpy. Expressions fhirpathpy cannot evaluate are
listed in UNEVALUABLE with the reason and skipped.
"""

from collections.abc import Callable
from dataclasses import dataclass

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode

from .errors import Issue
from .invariant_compiler import Env, NotCompilable, Undecided, compile_condition
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

# key@context -> why it is not evaluated (tests/validation/test_invariants.py checks that every other
# invariant is evaluated on the official examples without an error)
UNEVALUABLE: dict[str, str] = {
    "ctm-1@CareTeam.participant": "resolve(): the referenced resource is not at hand when a resource is "
    "validated (fhirpathpy raises 'Not implemented: resolve')",
}

# Functions whose argument is evaluated once per input item: the items are reached through the target.
_PER_ITEM = frozenset({"where", "select", "all", "exists", "repeat", "any", "trace"})
_CONTEXT_FREE = frozenset({"today", "now"})
_MODEL_TYPES = {
    "SimpleQuantity": "Quantity",
    "MoneyQuantity": "Quantity",
}  # profiles fhirpathpy does not know


class _Unguarded(Exception):
    """The expression reads the context other than through named members."""


@dataclass(frozen=True, slots=True)
class Invariant:
    key: str
    human: str
    expression: str
    context: str
    keys: frozenset[str] | None  # context keys the result depends on; None when it depends on more
    when_absent: bool | None  # the result on a context without any of `keys`
    holds: Callable[[object, str, dict, dict], bool]  # (node, type path, %resource, %rootResource)


def _names(node: object) -> tuple[set[str], bool]:
    """The context members an expression reads, and whether it denotes the context itself."""
    if isinstance(node, Literal):
        return set(), False
    if isinstance(node, Variable):
        if node.name == "ucum":
            return set(), False
        raise _Unguarded(node.name)
    if isinstance(node, Member):
        if node.target is None:
            if node.name[0].isupper():
                return set(), True  # `Appointment` at the start: the context itself
            if node.name == "$this":
                raise _Unguarded("$this")
            return {node.name}, False
        names, itself = _names(node.target)
        return (names | {node.name}) if itself else names, False
    if isinstance(node, Call):
        if node.target is None:
            if node.name in _CONTEXT_FREE:
                return set(), False
            if node.name == "iif":
                return _arg_names(node.args), False
            raise _Unguarded(f"{node.name}() on the context")
        names, itself = _names(node.target)
        if itself:
            raise _Unguarded(f"{node.name}() on the context")
        if node.name in _PER_ITEM:
            return names, False  # the arguments only see the target's items
        return names | _arg_names(node.args), False
    if isinstance(node, Binary):
        left, _ = _names(node.left)
        right, _ = _names(node.right)
        return left | right, False
    if isinstance(node, TypeOperation):
        names, itself = _names(node.target)
        if itself:
            raise _Unguarded("a type test of the context")
        return names, False
    if isinstance(node, Index):
        target, _ = _names(node.target)
        index, _ = _names(node.index)
        return target | index, False
    raise _Unguarded(type(node).__name__)


def _arg_names(args: tuple) -> set[str]:
    names: set[str] = set()
    for arg in args:
        found, itself = _names(arg)
        if itself:
            raise _Unguarded("the context as an argument")
        names |= found
    return names


def _keys(names: set[str], type_path: str) -> frozenset[str]:
    """The JSON keys those members are written under: `name`, `_name`, and each `value[x]` variant."""
    keys: set[str] = set()
    for name in names:
        keys |= {name, "_" + name}
        try:
            variants = model.child(type_path, name).variants
        except Exception:  # noqa: BLE001 - a name the model does not know has no variants
            variants = ()
        for variant in variants:
            keys |= {variant.key, "_" + variant.key}
    return frozenset(keys)


def _no_trace(*_args: object) -> None:
    """trace() in an expression (dom-3, ref-1) would print to stdout."""


def _fhirpathpy(expression: str) -> Callable[[object, str, dict, dict], bool]:
    evaluate = fhirpathpy.compile(expression, model=model.r4_model(), options={"traceFn": _no_trace})

    def holds(node: object, type_path: str, resource: dict, root: dict) -> bool:
        typed = ResourceNode.create_node(node, _MODEL_TYPES.get(type_path, type_path))
        return evaluate(typed, {"resource": resource, "rootResource": root}) != [False]

    return holds


def _compiled(
    expression: str, type_path: str, fallback: Callable
) -> Callable[[object, str, dict, dict], bool]:
    condition = compile_condition(expression, _MODEL_TYPES.get(type_path, type_path))

    def holds(node: object, type_path: str, resource: dict, root: dict) -> bool:
        try:
            return condition(node, Env(resource, root, node)) != [False]
        except Undecided:
            return fallback(node, type_path, resource, root)

    return holds


def compile_invariant(key: str, human: str, expression: str, context: str, type_path: str) -> Invariant:
    holds = _fhirpathpy(expression)
    try:
        holds = _compiled(expression, type_path, holds)
    except NotCompilable:
        pass
    try:
        names, _ = _names(parse(expression))
        keys: frozenset[str] | None = _keys(names, type_path)
    except (_Unguarded, FhirPathSyntaxError):
        keys = None
    when_absent = None
    if keys is not None:
        empty: dict = {"resourceType": type_path} if type_path[0].isupper() and "." not in type_path else {}
        try:
            when_absent = holds(empty, type_path, empty, empty)
        except Exception:  # noqa: BLE001 - evaluated on real contexts instead
            keys = None
    return Invariant(key, human, expression, context, keys, when_absent, holds)


def evaluate(invariant: Invariant, node: object, type_path: str, resource: dict, root: dict) -> bool:
    if invariant.keys is not None and type(node) is dict and invariant.keys.isdisjoint(node):
        return bool(invariant.when_absent)
    try:
        return invariant.holds(node, type_path, resource, root)
    except Exception:  # noqa: BLE001 - fhirpathpy failing on some data is not the client's error
        return True


def invariant_issue(invariant: Invariant, location: str) -> Issue:
    return Issue(
        "invariant",
        f"Invariant {invariant.key} of {invariant.context} is not met: {invariant.human} ({invariant.expression})",
        expression=location,
    )
