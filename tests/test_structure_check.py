"""The fast structure check never accepts what the R4B models refuse: over the official HL7 and NPHIES
examples, and over random mutations of them. It must also accept most of them, or the fast path is lost."""

import copy
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.structure_check import surely_valid
from nphies_facade.resources.validation import validate_resource

from .conftest import SHARED

CORPORA = (SHARED / "fhir-examples", SHARED / "nphies" / "examples")
ODD_VALUES = [
    None, "", " ", "\t", "x y", "a\tb", " lead", 0, -1, 1, 2**31, 2**40, 1.5, float("nan"), True, "true",
    "2020", "2020-13", "2020-02-30", "2020-01-01T10:00:00", "2020-01-01T10:00:60Z",
    "2020-01-01T10:00:00.1234567Z", "2020-01-01T24:00:00Z", "abc", "YWJj", "-", "\u00a0", "\u200b",
    [], [None], {}, {"unknown": 1}, {"resourceType": "Patient"}, ["x"], [{}],
]  # fmt: skip


def _resources(document: object):
    if isinstance(document, dict):
        if isinstance(document.get("resourceType"), str):
            yield document
        for value in document.values():
            yield from _resources(value)
    elif isinstance(document, list):
        for value in document:
            yield from _resources(value)


def _corpus() -> list[dict]:
    found = []
    for folder in CORPORA:
        for path in sorted(Path(folder).rglob("*.json")):
            try:
                found += list(_resources(json.loads(path.read_text())))
            except (ValueError, UnicodeDecodeError):
                continue
    return found


CORPUS = _corpus() if all(Path(f).is_dir() for f in CORPORA) else []
needs_corpus = pytest.mark.skipif(not CORPUS, reason="../shared examples are not present")


def models_accept(resource: dict) -> bool:
    try:
        validate_resource(resource)
    except FhirError:
        return False
    return True


@needs_corpus
def test_the_examples_the_check_accepts_are_accepted_by_the_models_and_most_are_accepted() -> None:
    accepted = [r for r in CORPUS if surely_valid(r)]
    assert [r.get("id") for r in accepted if not models_accept(r)] == []
    assert len(accepted) > 0.8 * len(CORPUS)


def _nodes(value: object, path: tuple = ()) -> list[tuple]:
    """Paths to every dict entry and list item below `value`."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*path, key))
            found += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*path, index))
            found += _nodes(child, (*path, index))
    return found


def _mutate(resource: dict, rng: random.Random) -> None:
    path = rng.choice(_nodes(resource))
    parent = resource
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = rng.randrange(5)
    if action == 0 and isinstance(parent, dict) and last != "resourceType":
        del parent[last]
    elif action == 1 and isinstance(parent, dict):
        parent[rng.choice(["unknownElement", "_" + str(last), "resourceType", "fhir_comments"])] = "x"
    elif action == 2:
        parent[last] = [parent[last]] if not isinstance(parent[last], list) else parent[last][:1][0:1] or None
    else:
        parent[last] = copy.deepcopy(rng.choice(ODD_VALUES))


@needs_corpus
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=3))
def test_a_mutated_example_the_check_accepts_is_accepted_by_the_models(
    rng: random.Random, mutations: int
) -> None:
    resource = copy.deepcopy(rng.choice(CORPUS))
    for _ in range(mutations):
        if _nodes(resource):
            _mutate(resource, rng)
    if surely_valid(resource):
        assert models_accept(resource), json.dumps(resource)[:2000]


def test_what_the_check_doubts_falls_back_to_the_models() -> None:
    assert surely_valid({"resourceType": "Patient", "gender": "female", "birthDate": "1990-02-28"})
    assert not surely_valid({"resourceType": "Patient", "birthDate": "1990-02-30"})
    assert not surely_valid({"resourceType": "Patient", "_gender": {"id": "x"}})  # the models accept it
    assert not surely_valid({"resourceType": "Patient", "active": "true"})  # the models coerce it
    assert not surely_valid({"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020"})
    assert not surely_valid({"resourceType": "Patient", "communication": [{}]})  # language is required
    assert not surely_valid({"resourceType": "NotAType"})
