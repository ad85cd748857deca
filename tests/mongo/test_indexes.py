"""The MongoDB index definitions: their shape, idempotent creation, and that they serve the filters."""

from dataclasses import replace

import pytest

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.mongo.indexes import INDEXES, collections, ensure_indexes
from nphies_facade.resources.mongo.search_filters import presence_filter, value_filter
from nphies_facade.resources.search.plan import Planner, PresenceFilter, ValueFilter
from nphies_facade.resources.search.query import QueryParser

from .corpus import EXAMPLES, HANDWRITTEN, corpus, derived_queries
from .fake_client import FakeMongoClient

LEADING_COLUMNS = ("s1", "n1", "n2")


def test_index_names_are_unique_and_only_identity_keys_are_unique():
    names = [(spec.collection, spec.name) for spec in INDEXES]
    assert len(names) == len(set(names))
    assert {spec.name for spec in INDEXES if spec.unique} == {"history_version", "sub_events_number"}


def test_every_index_value_column_has_a_multikey_index_behind_type_and_code():
    keys = {spec.keys for spec in INDEXES if spec.collection == "resources"}
    for column in LEADING_COLUMNS:
        assert any(k[:3] == ("type", "idx.p", f"idx.{column}") for k in keys), column
    assert ("type", "rid") in keys  # the default search order and conditional ids
    assert ("type", "last_updated", "rid") in keys  # _sort=_lastUpdated pages


def test_index_models_carry_name_keys_and_uniqueness():
    spec = next(s for s in INDEXES if s.name == "history_version")
    document = spec.model().document
    assert document["name"] == "history_version" and document["unique"] is True
    assert list(document["key"].items()) == [("type", 1), ("id", 1), ("version", 1)]
    assert spec.describe() == "history.history_version (type, id, version) unique"


async def test_creating_the_indexes_twice_is_harmless():
    db = FakeMongoClient()["nphies_facade"]
    await ensure_indexes(db)
    await ensure_indexes(db)
    assert set(collections()) <= set(await db.list_collection_names())
    for name in {spec.collection for spec in INDEXES}:
        existing = await db[name].index_information()
        assert {spec.name for spec in INDEXES if spec.collection == name} <= set(existing)


def _constrained(entry: dict) -> set[str]:
    """Columns an `$elemMatch` entry query bounds by equality or range (what an index can seek on)."""
    columns: set[str] = set()
    for field, condition in entry.items():
        if field in ("$and", "$or"):
            branches = [_constrained(branch) for branch in condition]
            columns |= set.intersection(*branches) if field == "$or" and branches else set().union(*branches)
        elif not isinstance(condition, dict) or condition.keys() & {"$in", "$gte", "$gt", "$lt", "$lte"}:
            if condition is not None and not (isinstance(condition, dict) and condition.get("$in") == []):
                columns.add(field)
    return columns


def _entry_queries(query: dict) -> list[dict]:
    if "$nor" in query:
        return [q for inner in query["$nor"] for q in _entry_queries(inner)]
    return [query["idx"]["$elemMatch"]] if "idx" in query else []


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/fhir-examples is not present")
def test_every_value_filter_the_planner_emits_seeks_on_an_index_prefix(registry, extractor):
    keys = {spec.keys for spec in INDEXES if spec.collection == "resources"}
    checked = 0
    for resource_type, params in derived_queries(corpus(), extractor) + HANDWRITTEN:
        try:
            query = QueryParser(registry).parse((resource_type,), params, strict=True)
        except FhirError:
            continue
        plan = replace(Planner(registry, 0).plan(query), sort=())
        for f in plan.filters:
            if not isinstance(f, ValueFilter | PresenceFilter):
                continue
            rendered = value_filter(f) if isinstance(f, ValueFilter) else presence_filter(f)
            for entry in _entry_queries(rendered):
                assert "p" in entry and "type" in (rendered.get("$nor") or [rendered])[0]
                leading = [c for c in LEADING_COLUMNS if c in _constrained(entry)]
                wanted = ("type", "idx.p", f"idx.{leading[0]}") if leading else ("type", "idx.p")
                assert any(k[: len(wanted)] == wanted for k in keys), (params, entry)
                checked += 1
    assert checked > 1000
