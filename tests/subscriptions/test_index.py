"""The Subscription index narrows a change to the Subscriptions that can match it, and never drops one
that does: candidates-then-match gives what matching every Subscription on the type gives."""

import itertools

import pytest

from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.subscriptions.criteria import CriteriaParser
from nphies_facade.subscriptions.index import SubscriptionIndex

CRITERIA = [
    "Task?status=requested",
    "Task?status=requested,accepted",
    "Task?status=http://hl7.org/fhir/task-status|completed",
    "Task?owner=Organization/o1",
    "Task?owner=Organization/o2&status=requested",
    "Task?owner:Organization=o1",
    "Task?status:not=requested",
    "Task?code:text=elig",
    "Task",
    "Task?authored-on=ge2024-01-01",
    "Task?owner:missing=true",
]


def task(status: str, owner: str | None, code: str, authored: str) -> dict:
    resource = {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "code": {"text": code},
        "authoredOn": authored,
    }
    if owner:
        resource["owner"] = {"reference": f"Organization/{owner}"}
    return resource


@pytest.fixture(scope="module")
def parts():
    registry = SearchRegistry()
    return CriteriaParser(registry), Extractor(registry)


def test_candidates_never_miss_a_match(parts):
    parser, extractor = parts
    index = SubscriptionIndex()
    for n, criteria in enumerate(CRITERIA):
        subscription = {
            "id": f"s{n}",
            "status": "active",
            "criteria": criteria,
            "channel": {"type": "websocket"},
        }
        index.put(parser.parse(subscription, 1))
    resources = [
        task(status, owner, code, authored)
        for status, owner, code, authored in itertools.product(
            ["requested", "accepted", "completed"],
            [None, "o1", "o2"],
            ["eligibility", "claim"],
            ["2023-05-01", "2024-05-01"],
        )
    ]
    narrowed = 0
    for resource in resources:
        values = extractor.extract(resource)
        everyone = {s.id for s in index.for_type("Task") if s.matches(values, 0)}
        candidates = list(index.candidates("Task", values))
        assert {s.id for s in candidates if s.matches(values, 0)} == everyone
        narrowed += len(index.for_type("Task")) - len(candidates)
    assert narrowed > 0


def test_removing_a_subscription_removes_it_from_every_key(parts):
    parser, extractor = parts
    index = SubscriptionIndex()
    spec = parser.parse(
        {
            "id": "a",
            "status": "active",
            "criteria": "Task?status=requested,accepted",
            "channel": {"type": "websocket"},
        },
        1,
    )
    index.put(spec)
    index.remove("a")
    values = extractor.extract(task("requested", None, "x", "2024-01-01"))
    assert list(index.candidates("Task", values)) == [] and not index.has_type("Task")
