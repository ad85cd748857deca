"""What reindexing and SearchParameter tracking use: latest positions, scans, replaced index values."""

from nphies_facade.resources.search.plan import SearchPlan
from nphies_facade.resources.search.values import TokenValue
from nphies_facade.resources.store import HistoryQuery

from .writing import delete, patient, version_of, write


async def test_latest_position_is_the_last_history_position_of_the_type(store, extractor):
    assert await store.latest_position("Patient") == 0
    await write(store, extractor, patient("a"))
    await write(store, extractor, {"resourceType": "Organization", "id": "o"})
    newest = (await store.history(HistoryQuery("Patient")))[0].position
    assert await store.latest_position("Patient") == newest
    async with store.transaction() as tx:
        await tx.write(version_of(patient("b"), 1, "2024-01-02T00:00:00Z"), {}, "t")
        assert await tx.latest_position("Patient") > newest
        assert await tx.latest_position("Observation") == 0


async def test_scan_walks_live_current_versions_in_row_order(store, extractor):
    for name in ("a", "b", "c", "d"):
        await write(store, extractor, patient(name))
    await write(store, extractor, patient("a", gender="male"), 2, "2024-01-02T00:00:00Z")
    await delete(store, "Patient", "c", 2, "2024-01-03T00:00:00Z")
    async with store.transaction() as tx:
        first = await tx.scan("Patient", 0, 2)
        rest = await tx.scan("Patient", first[-1].position, 10)
    assert [(v.id, v.version) for v in first + rest] == [("a", 2), ("b", 1), ("d", 1)]
    assert first[0].body == (await store.read("Patient", "a")).body


async def test_replaced_index_values_are_what_search_then_finds(store, extractor):
    await write(store, extractor, patient("a", "1000000001"))
    async with store.transaction() as tx:
        [version] = await tx.scan("Patient", 0, 10)
        await tx.replace_index([(version, {"identifier": [TokenValue("urn:new", "X-1")]})])
    assert await store.find_ids("Patient", [("identifier", "urn:new|X-1")]) == ["a"]
    assert await store.find_ids("Patient", [("identifier", "1000000001")]) == []
    assert (await store.read("Patient", "a")).version == 1
    page = await store.search(SearchPlan(("Patient",), ()))
    assert [f.version.id for f in page.matches] == ["a"] and page.total is None and not page.more
