"""History through the store port: newest first, by instance, type or system, paged, since a time."""

from dataclasses import replace

from nphies_facade.resources.store import HistoryQuery

from .writing import delete, patient, write


async def _three_resources(store, extractor) -> None:
    await write(store, extractor, patient("a"), 1, "2024-01-01T00:00:00Z")
    await write(store, extractor, {"resourceType": "Organization", "id": "o"}, 1, "2024-01-02T00:00:00Z")
    await write(store, extractor, patient("a", gender="male"), 2, "2024-01-03T00:00:00Z")
    await write(store, extractor, patient("b"), 1, "2024-01-04T00:00:00Z")
    await delete(store, "Patient", "a", 3, "2024-01-05T00:00:00Z")


def _keys(versions) -> list[tuple[str, str, int]]:
    return [(v.resource_type, v.id, v.version) for v in versions]


async def test_history_comes_newest_first_with_decreasing_positions(store, extractor):
    await _three_resources(store, extractor)
    versions = await store.history(HistoryQuery())
    assert _keys(versions) == [
        ("Patient", "a", 3),
        ("Patient", "b", 1),
        ("Patient", "a", 2),
        ("Organization", "o", 1),
        ("Patient", "a", 1),
    ]
    positions = [v.position for v in versions]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == 5
    assert versions[0].deleted and versions[0].method == "DELETE"
    assert versions[-1].method == "POST"


async def test_history_of_an_instance_and_of_a_type(store, extractor):
    await _three_resources(store, extractor)
    assert _keys(await store.history(HistoryQuery("Patient", "a"))) == [
        ("Patient", "a", 3),
        ("Patient", "a", 2),
        ("Patient", "a", 1),
    ]
    assert [v.id for v in await store.history(HistoryQuery("Patient"))] == ["a", "b", "a", "a"]
    assert await store.history(HistoryQuery("Patient", "nobody")) == []


async def test_history_pages_by_position(store, extractor):
    await _three_resources(store, extractor)
    query = HistoryQuery("Patient", count=2)
    first = await store.history(query)
    second = await store.history(replace(query, before_position=first[-1].position))
    third = await store.history(replace(query, before_position=second[-1].position))
    assert _keys(first + second + third) == _keys(await store.history(HistoryQuery("Patient")))
    assert (len(first), len(second), len(third)) == (2, 2, 0)


async def test_history_since_keeps_versions_written_at_or_after_the_time(store, extractor):
    await _three_resources(store, extractor)
    since = await store.history(HistoryQuery(since="2024-01-03T00:00:00Z"))
    assert _keys(since) == [("Patient", "a", 3), ("Patient", "b", 1), ("Patient", "a", 2)]


async def test_vread_gives_the_position_of_the_version(store, extractor):
    await _three_resources(store, extractor)
    by_history = {v.version: v.position for v in await store.history(HistoryQuery("Patient", "a"))}
    assert {n: (await store.vread("Patient", "a", n)).position for n in (1, 2, 3)} == by_history
