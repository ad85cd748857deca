"""Property tests: an official R4 example made invalid by one mutation (a wrong JSON type, a code outside
its value set, an empty value, an unknown element) is refused, with an issue at the mutated element."""

import copy
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.r4_schema import DEFINITIONS
from nphies_facade.resources.validation import validate_resource

from .examples import invalid_examples, refused_by_rules

SAMPLE = 400


@pytest.fixture(scope="module")
def valid_examples(r4_resources) -> list[dict]:
    refused = invalid_examples().keys() | refused_by_rules().keys()
    names = sorted(n for n in r4_resources if n not in refused and len(str(r4_resources[n])) < 50_000)
    return [r4_resources[n] for n in random.Random(15).sample(names, SAMPLE)]


def _nodes(value: object, path: tuple = ()) -> list[tuple]:
    """Paths to every value below `value` but resourceType names."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            if key != "resourceType":
                found.append((*path, key))
            found += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*path, index))
            found += _nodes(child, (*path, index))
    return found


def _location(resource: dict, path: tuple) -> str:
    return resource["resourceType"] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _parent(resource: dict, path: tuple) -> object:
    node: object = resource
    for step in path[:-1]:
        node = node[step]  # type: ignore[index]
    return node


def _wrong_type(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 5
    if isinstance(value, list):
        return value[0]
    return [value]


def _empty(value: object) -> object:
    return {str: "", list: [], dict: {}}.get(type(value), "")


def refused_at(resource: dict) -> set[str]:
    try:
        validate_resource(resource)
    except FhirError as exc:
        assert exc.status == 400
        return {i.expression or "" for i in exc.issues}
    return set()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_mutated_official_example_is_refused_where_it_was_mutated(valid_examples, data):
    resource = copy.deepcopy(data.draw(st.sampled_from(valid_examples)))
    path = data.draw(st.sampled_from(_nodes(resource)))
    parent = _parent(resource, path)
    old = parent[path[-1]]
    mutation = data.draw(st.sampled_from(["type", "empty", "unknown"]))
    if mutation == "type" and not (isinstance(old, list) and (len(old) != 1 or isinstance(old[0], list))):
        parent[path[-1]] = _wrong_type(old)
        expected = _location(resource, path)
    elif mutation == "unknown" and isinstance(old, dict):
        old["notAnR4Element"] = True
        expected = _location(resource, (*path, "notAnR4Element"))
    else:
        parent[path[-1]] = _empty(old)
        expected = _location(resource, path)
    located = refused_at(resource)
    assert located, (mutation, expected)
    assert expected in located, (expected, located)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), code=st.text(min_size=1, max_size=12).filter(lambda c: c.strip() == c))
def test_a_status_outside_its_code_list_is_refused(valid_examples, data, code):
    with_status = [
        r for r in valid_examples if "enum" in DEFINITIONS[r["resourceType"]]["properties"].get("status", {})
    ]
    resource = copy.deepcopy(data.draw(st.sampled_from(with_status)))
    codes = DEFINITIONS[resource["resourceType"]]["properties"]["status"]["enum"]
    if code in codes:
        return
    resource["status"] = code
    assert f"{resource['resourceType']}.status" in refused_at(resource)
