"""The R4 rules a JSON schema cannot state: required bindings on Coding and CodeableConcept elements (and
on the code elements the schema lists no codes for), and the error-severity invariants.

One walk over the resource, guided by the vendored element-type table (`data/r4-rules.json`, written by
vendor_rules.py), checks each bound element it passes and collects the invariant contexts present; the
invariants (invariants.py) are then evaluated on those contexts only.
"""

from dataclasses import dataclass
from pathlib import Path

import orjson

from .errors import Issue
from .invariants import UNEVALUABLE, Invariant, compile_invariant, evaluate, invariant_issue

DATA_FILE = Path(__file__).with_name("data") / "r4-rules.json"
RESOURCE = "Resource"  # a child typed Resource (contained, Bundle.entry.resource) takes its resourceType
MAX_ISSUES = 50


@dataclass(frozen=True, slots=True)
class Binding:
    element: str  # element path, e.g. Condition.clinicalStatus
    kind: str  # code, Coding or CodeableConcept
    value_set: str
    codes: dict[str, frozenset[str]]  # system -> codes
    any_code: frozenset[str]  # every code of every system (for code elements, which carry no system)


@dataclass(frozen=True, slots=True)
class Context:
    """An element an invariant applies to, found by the walk."""

    path: str  # the type or element path its invariants are keyed by
    type_path: str  # the node's type (a datatype, a resource type or a backbone path)
    node: object
    resource: dict  # %resource: the resource holding the node (a contained one for its own elements)
    root: dict  # %rootResource: the resource that contains it
    location: "Location"


def _load() -> tuple[dict, dict, dict, frozenset, dict]:
    data = orjson.loads(DATA_FILE.read_bytes())
    value_sets = {
        url: {system: frozenset(codes) for system, codes in systems.items()}
        for url, systems in data["valueSets"].items()
    }
    bindings: dict[str, Binding] = {}
    for element, (kind, url) in data["bindings"].items():
        if url in value_sets:
            codes = value_sets[url]
            bindings[element] = Binding(element, kind, url, codes, frozenset().union(*codes.values()))
    children = {
        parent: {key: (type_path, element) for key, (type_path, element) in kids.items()}
        for parent, kids in data["children"].items()
    }
    return children, bindings, data["invariants"], frozenset(data["domainResources"]), data


CHILDREN, BINDINGS, INVARIANT_TEXT, DOMAIN_RESOURCES, _DATA = _load()
UNEXPANDABLE: dict[str, str] = _DATA["unexpandable"]


def _compile_invariants() -> dict[str, tuple[Invariant, ...]]:
    element_types = {element: type_path for kids in CHILDREN.values() for type_path, element in kids.values()}
    compiled = {}
    for path, rules in INVARIANT_TEXT.items():
        type_path = element_types.get(path, path)
        compiled[path] = tuple(
            compile_invariant(key, human, text, path, type_path)
            for key, human, text in rules
            if f"{key}@{path}" not in UNEVALUABLE
        )
    return compiled


INVARIANTS = _compile_invariants()
INVARIANT_PATHS = frozenset(INVARIANTS)


def walk(resource: dict) -> tuple[list[Issue], list[Context]]:
    """Binding issues, and the invariant contexts present, of a resource and what it contains."""
    issues: list[Issue] = []
    contexts: list[Context] = []
    resource_type = resource["resourceType"]
    _resource(resource, resource_type, resource, resource_type, issues, contexts)
    return issues, contexts


# A location is built only when an issue needs it: a string at a resource, else (parent, key, index).
Location = str | tuple


def render(location: Location) -> str:
    parts = []
    while type(location) is tuple:
        location, key, index = location
        parts.append(f".{key}" if index is None else f".{key}[{index}]")
    return location + "".join(reversed(parts))


def _resource(node: dict, resource_type: str, root: dict, location: Location, issues, contexts) -> None:
    if resource_type in DOMAIN_RESOURCES:
        contexts.append(Context("DomainResource", resource_type, node, node, root, location))
    _node(node, resource_type, node, root, location, issues, contexts)


def _node(
    node: dict, type_path: str, resource: dict, root: dict, location: Location, issues, contexts
) -> None:
    if type_path in INVARIANT_PATHS:
        contexts.append(Context(type_path, type_path, node, resource, root, location))
    kids = CHILDREN.get(type_path)
    if kids is None:
        return
    for key, value in node.items():
        entry = kids.get(key)
        if entry is None:
            continue
        child_type, element = entry
        if type(value) is list:
            for index, item in enumerate(value):
                _child(
                    key, item, child_type, element, resource, root, (location, key, index), issues, contexts
                )
        else:
            _child(key, value, child_type, element, resource, root, (location, key, None), issues, contexts)


def _child(key: str, value, child_type: str, element, resource, root, location, issues, contexts) -> None:
    if element is not None:
        binding = BINDINGS.get(element)
        if binding is not None:
            _check_binding(binding, value, location, issues)
        if element in INVARIANT_PATHS:
            contexts.append(Context(element, child_type, value, resource, root, location))
    if type(value) is not dict:
        return
    if child_type != RESOURCE:
        _node(value, child_type, resource, root, location, issues, contexts)
        return
    inner_type = value.get("resourceType")
    if type(inner_type) is str:
        # A contained resource's %rootResource is its container; a bundled one is its own root.
        _resource(value, inner_type, root if key == "contained" else value, location, issues, contexts)


# bindings


def _check_binding(binding: Binding, value: object, where: "Location", issues: list[Issue]) -> None:
    location = render(where)
    if binding.kind == "code":
        if type(value) is str and value not in binding.any_code:
            issues.append(_binding_issue(binding, f"The code '{value}'", location))
    elif binding.kind == "Coding":
        if type(value) is dict and not _coding_in(binding, value):
            issues.append(_binding_issue(binding, f"The Coding {_describe(value)}", location))
    elif type(value) is dict:
        _check_codeable_concept(binding, value, location, issues)


def _check_codeable_concept(binding: Binding, concept: dict, location: str, issues: list[Issue]) -> None:
    """A required CodeableConcept needs a coding from the value set (text alone will not do), and a coding
    in one of the value set's systems must have one of its codes."""
    codings = concept.get("coding")
    codings = codings if type(codings) is list else []
    found = False
    for index, coding in enumerate(codings):
        if type(coding) is not dict:
            continue
        if _coding_in(binding, coding):
            found = True
        elif type(coding.get("system")) is str and coding["system"] in binding.codes:
            issues.append(
                _binding_issue(binding, f"The Coding {_describe(coding)}", f"{location}.coding[{index}]")
            )
            found = True  # reported at the coding; no second issue for the concept
    if not found:
        issues.append(
            Issue(
                "code-invalid",
                f"{binding.element} has a required binding to {binding.value_set}: it needs a coding from "
                f"that value set (system {_systems(binding)})",
                expression=location,
            )
        )


def _coding_in(binding: Binding, coding: dict) -> bool:
    system, code = coding.get("system"), coding.get("code")
    if type(system) is not str or type(code) is not str:
        return False
    codes = binding.codes.get(system)
    return codes is not None and code in codes


def _describe(coding: dict) -> str:
    return f"{coding.get('system')}|{coding.get('code')}"


def _systems(binding: Binding) -> str:
    return " or ".join(sorted(binding.codes))


def _binding_issue(binding: Binding, what: str, location: str) -> Issue:
    return Issue(
        "code-invalid",
        f"{what} is not in the value set {binding.value_set}, to which {binding.element} has a required binding",
        expression=location,
    )


def rule_issues(resource: dict) -> list[Issue]:
    """One issue per broken required binding or error invariant of a structurally valid resource."""
    issues, contexts = walk(resource)
    for context in contexts:
        for invariant in INVARIANTS[context.path]:
            if not evaluate(invariant, context.node, context.type_path, context.resource, context.root):
                issues.append(invariant_issue(invariant, render(context.location)))
    return issues[:MAX_ISSUES]
