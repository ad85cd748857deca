"""Every kind of search criterion, rendered to a MongoDB filter, selects what the SQLite backend selects.

The documents are the ones the MongoDB backend writes (through its own write path) for the official R4
examples and generated resources; the filters are evaluated by mongomock's query engine, an evaluator of
MongoDB query semantics independent of this code, and compared with the SQLite backend's answer for the
same plan over the same resources.
"""

from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.mongo.search_exec import MongoSearch
from nphies_facade.resources.mongo.store import MongoStore
from nphies_facade.resources.search.plan import (
    ChainFilter,
    CompositeAtom,
    HasFilter,
    IdFilter,
    Planner,
    PresenceFilter,
    ValueFilter,
)
from nphies_facade.resources.search.query import QueryParser
from nphies_facade.resources.sqlite.store import SqliteStore
from nphies_facade.resources.store import StoredVersion

from .corpus import EXAMPLES, HANDWRITTEN, corpus, derived_queries
from .fake_client import FakeMongoClient

NOW_MS = 1_735_689_600_000.0  # 2025-01-01, the anchor of `ap` on dates
pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/fhir-examples is not present")


async def _load(store, resources: list[dict], extractor) -> None:
    for resource in resources:
        body = orjson.dumps(resource)
        version = StoredVersion(
            resource["resourceType"], resource["id"], 1, "2024-01-01T00:00:00Z", "PUT", body
        )
        async with store.transaction() as tx:
            await tx.write(version, extractor.extract(resource), "corpus")


@pytest.fixture(scope="module")
async def stores(tmp_path_factory: pytest.TempPathFactory, extractor):
    resources = corpus()
    sqlite = SqliteStore(Path(tmp_path_factory.mktemp("translation")) / "corpus.sqlite3")
    mongo = MongoStore(client=FakeMongoClient())
    for store in (sqlite, mongo):
        await store.open()
        await _load(store, resources, extractor)
    yield sqlite, mongo, resources
    await sqlite.close()
    await mongo.close()


def _kinds(filters) -> set[str]:
    kinds = set()
    for f in filters:
        if isinstance(f, ValueFilter):
            kinds.add("composite" if any(isinstance(a, CompositeAtom) for a in f.atoms) else f.param.kind)
            kinds.add("not") if f.negate else None
        elif isinstance(f, PresenceFilter):
            kinds.add("missing")
        elif isinstance(f, IdFilter):
            kinds.add("_id")
        elif isinstance(f, ChainFilter):
            kinds |= {"chain", *_kinds(f.inner)}
        elif isinstance(f, HasFilter):
            kinds |= {"_has", *_kinds(f.inner)}
    return kinds


async def _compare(stores, registry, resource_type: str, params: list[tuple[str, str]]):
    """(kinds the query exercised, mismatch or None); None when the parser refuses the query."""
    sqlite, mongo, _ = stores
    try:
        query = QueryParser(registry).parse((resource_type,), params, strict=True)
    except FhirError:
        return None
    plan = replace(Planner(registry, NOW_MS).plan(query), limit=5000, sort=(), includes=())
    expected = {f.version.id for f in (await sqlite.search(plan)).matches}
    where = await MongoSearch(mongo.collections).where(plan.types, plan.filters)
    found = {doc["id"] async for doc in mongo.collections.resources.find(where, {"id": True})}
    mismatch = None if found == expected else (resource_type, params, sorted(expected), sorted(found), where)
    return _kinds(plan.filters), mismatch


async def test_every_criterion_kind_selects_what_sqlite_selects(stores, registry, extractor):
    queries = derived_queries(stores[2], extractor) + HANDWRITTEN
    exercised: Counter = Counter()
    mismatches = []
    for resource_type, params in queries:
        outcome = await _compare(stores, registry, resource_type, params)
        if outcome is None:
            continue
        kinds, mismatch = outcome
        exercised.update(kinds)
        if mismatch is not None:
            mismatches.append(mismatch)
    assert mismatches == []
    expected_kinds = {
        "string",
        "token",
        "reference",
        "date",
        "number",
        "quantity",
        "uri",
        "composite",
        "missing",
        "_id",
    }
    assert expected_kinds | {"not", "chain", "_has"} <= set(exercised), exercised


async def test_matches_are_not_empty_for_most_derived_queries(stores, registry, extractor):
    """The comparison means something only if queries select resources: most of them must."""
    sqlite = stores[0]
    selecting = total = 0
    for resource_type, params in derived_queries(stores[2], extractor):
        if params[0][0].endswith((":missing", ":not")) or params[0][1].startswith(
            ("ne", "gt", "lt", "sa", "eb")
        ):
            continue
        try:
            query = QueryParser(registry).parse((resource_type,), params, strict=True)
        except FhirError:
            continue
        plan = replace(Planner(registry, NOW_MS).plan(query), limit=5000, sort=(), includes=())
        total += 1
        selecting += bool((await sqlite.search(plan)).matches)
    assert total > 200 and selecting / total > 0.9, (selecting, total)
