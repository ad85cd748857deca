"""Deferred transactions (`Store.deferred_transaction`) and the writes FhirService runs in them.

On SQLite the units of concurrent writers are committed together (group commit); a unit that fails is
rolled back alone, and a unit whose read went stale meanwhile raises TransientConflict.
"""

import asyncio

import orjson
import pytest

from nphies_facade.resources.audit import verify_chain
from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.store import HistoryQuery, TransientConflict, VersionConflict

from .writing import patient, version_of, write, write_deferred

CTX = RequestContext.system()


async def test_a_failing_unit_leaves_the_units_committed_with_it_alone(store, extractor):
    await write(store, extractor, patient("p0", "1000000000"))
    outcomes = await asyncio.gather(
        *(write_deferred(store, extractor, patient(f"p{i}", f"100000000{i}")) for i in range(1, 5)),
        write_deferred(store, extractor, patient("p0", "1000000009")),  # version 1 again: a conflict
        return_exceptions=True,
    )
    assert outcomes[:4] == [None] * 4
    assert isinstance(outcomes[4], VersionConflict)
    for i in range(1, 5):
        assert (await store.read("Patient", f"p{i}")).version == 1
        assert await store.find_ids("Patient", [("identifier", f"100000000{i}")]) == [f"p{i}"]
    assert await store.find_ids("Patient", [("identifier", "1000000009")]) == []
    assert sorted(e.id for e in await store.outbox_after(0)) == ["p0", "p1", "p2", "p3", "p4"]
    assert len(await store.history(HistoryQuery())) == 5


async def test_an_exception_in_a_deferred_transaction_writes_nothing(store, extractor):
    with pytest.raises(RuntimeError):
        async with store.deferred_transaction() as tx:
            await tx.write(version_of(patient("p1"), 1, "2024-01-02T00:00:00Z"), {}, "t")
            raise RuntimeError("the unit of work failed")
    assert await store.read("Patient", "p1") is None
    assert await store.outbox_after(0) == []


async def test_a_deferred_transaction_sees_its_own_writes_when_it_reads_them(store, extractor):
    async with store.deferred_transaction() as tx:
        assert await tx.current("Patient", "p1") is None
        await tx.write(version_of(patient("p1", "1000000001"), 1, "2024-01-02T00:00:00Z"), {}, "t")
        assert (await tx.current("Patient", "p1")).version == 1
    assert (await store.read("Patient", "p1")).version == 1


@pytest.fixture
def sqlite_only(store):
    if type(store).__name__ != "SqliteStore":
        pytest.skip("deferring writes to the commit is the SQLite store's")


async def test_a_read_gone_stale_before_the_commit_is_a_transient_conflict(store, extractor, sqlite_only):
    await write(store, extractor, patient("p1"))
    with pytest.raises(TransientConflict):
        async with store.deferred_transaction() as tx:
            current = await tx.current("Patient", "p1")
            await write(store, extractor, patient("p1", gender="male"), 2)  # another writer wins
            await tx.write(version_of(patient("p1", gender="female"), current.version + 1, "2024-01-03T00:00:00Z"),
                           {}, "t")  # fmt: skip
    assert orjson.loads((await store.read("Patient", "p1")).body)["gender"] == "male"
    assert len(await store.outbox_after(0)) == 2


async def test_reading_back_its_own_write_keeps_a_unit_deferred(store, extractor, sqlite_only):
    await write(store, extractor, patient("p1"))
    async with store.deferred_transaction() as tx:
        await tx.write(version_of(patient("p1", gender="male"), 2, "2024-01-02T00:00:00Z"), {}, "t")
        assert (await tx.current("Patient", "p1")).version == 2  # the version queued
        await tx.write(version_of(patient("p1", gender="female"), 3, "2024-01-03T00:00:00Z"), {}, "t")
        assert tx._tx is None  # still deferred: the lock is taken only to commit
    assert orjson.loads((await store.read("Patient", "p1")).body)["gender"] == "female"
    assert [e.version for e in await store.outbox_after(0)] == [1, 2, 3]


async def test_after_a_write_a_read_of_another_resource_stays_deferred_and_checked(
    store, extractor, sqlite_only
):
    """The unit reads Patient/p2 after writing p1 without taking the lock; p2 changing before the commit
    is still caught, and nothing of the unit is written."""
    await write(store, extractor, patient("p2"))
    with pytest.raises(TransientConflict):
        async with store.deferred_transaction() as tx:
            await tx.write(version_of(patient("p1"), 1, "2024-01-02T00:00:00Z"), {}, "t")
            assert (await tx.current("Patient", "p2")).version == 1
            assert tx._tx is None  # still deferred: the lock is taken only to commit
            await write(store, extractor, patient("p2", gender="male"), 2)  # another writer wins
    assert await store.read("Patient", "p1") is None
    assert (await store.read("Patient", "p2")).version == 2


async def test_two_stores_on_one_file_commit_their_batches_in_turn(store, extractor, sqlite_only, tmp_path):
    other = type(store)(store.path)
    await other.open()
    try:
        await asyncio.gather(
            *(write_deferred(s, extractor, patient(f"{name}{i}")) for i in range(20) for name, s in (("a", store), ("b", other)))
        )  # fmt: skip
    finally:
        await other.close()
    assert len(await store.outbox_after(0, 100)) == 40
    assert [e.seq for e in await store.outbox_after(0, 100)] == list(range(1, 41))


async def test_concurrent_updates_of_one_resource_all_apply_in_turn(service):
    created = await service.create(CTX, patient("x", "1000000001"))
    resource_id = created.version.id

    async def update(n: int) -> None:
        await service.update(CTX, "Patient", resource_id, patient(resource_id, "1000000001", birthDate=f"190{n}"))

    await asyncio.gather(*(update(n) for n in range(8)))
    assert (await service.store.read("Patient", resource_id)).version == 9
    versions = await service.store.history(HistoryQuery("Patient", resource_id))
    assert sorted(v.version for v in versions) == list(range(1, 10))
    report = await verify_chain(service.store.security())
    assert report.ok and report.records >= 9


async def test_a_conflicting_if_match_in_a_group_fails_alone(service):
    first = (await service.create(CTX, patient("x", "1000000001"))).version.id
    second = (await service.create(CTX, patient("x", "1000000002"))).version.id
    results = await asyncio.gather(
        service.update(CTX, "Patient", first, patient(first, "1000000001", gender="male"), if_match='W/"1"'),
        service.update(CTX, "Patient", second, patient(second, "1000000002"), if_match='W/"7"'),
        return_exceptions=True,
    )
    assert results[0].version.version == 2
    assert isinstance(results[1], FhirError) and results[1].status == 412
    assert (await service.store.read("Patient", second)).version == 1
    assert (await verify_chain(service.store.security())).ok


async def test_creations_and_updates_in_one_unit_are_written_in_the_order_they_were_made(store, extractor):
    await write(store, extractor, patient("u1", "1000000001"))
    writes = [
        version_of(patient("c1", "2000000001"), 1, "2024-01-02T00:00:00Z", "POST"),
        version_of(patient("c2", "2000000002"), 1, "2024-01-02T00:00:00Z", "POST"),
        version_of(patient("u1", "1000000009"), 2, "2024-01-02T00:00:00Z"),
        version_of(patient("c3", "2000000003"), 1, "2024-01-02T00:00:00Z", "PUT"),
    ]
    async with store.deferred_transaction() as tx:
        for stored in writes:
            await tx.write(stored, extractor.extract(orjson.loads(stored.body)), "t")
    bodies = {v.id: v.body for v in writes}
    events = (await store.outbox_after(0))[1:]
    assert [(e.id, e.version, e.action) for e in events] == [
        ("c1", 1, "create"), ("c2", 1, "create"), ("u1", 2, "update"), ("c3", 1, "create")
    ]  # fmt: skip
    history = await store.history(HistoryQuery("Patient"))
    assert sorted((v.id, v.version, v.method) for v in history) == [
        ("c1", 1, "POST"), ("c2", 1, "POST"), ("c3", 1, "PUT"), ("u1", 1, "POST"), ("u1", 2, "PUT")
    ]  # fmt: skip
    for resource_id, national_id in (("c1", "2000000001"), ("c2", "2000000002"), ("c3", "2000000003")):
        assert (await store.read("Patient", resource_id)).body == bodies[resource_id]
        assert await store.find_ids("Patient", [("identifier", national_id)]) == [resource_id]
    assert await store.find_ids("Patient", [("identifier", "1000000009")]) == ["u1"]
    assert await store.find_ids("Patient", [("identifier", "1000000001")]) == []


async def test_a_unit_creating_a_resource_that_exists_writes_none_of_its_creations(store, extractor):
    await write(store, extractor, patient("p2", "1000000002"))
    with pytest.raises(VersionConflict, match="Patient/p2"):
        async with store.deferred_transaction() as tx:
            for name in ("p1", "p2", "p3"):
                stored = version_of(patient(name, f"300000000{name[1]}"), 1, "2024-01-02T00:00:00Z", "POST")
                await tx.write(stored, extractor.extract(orjson.loads(stored.body)), "t")
    assert await store.read("Patient", "p1") is None and await store.read("Patient", "p3") is None
    assert await store.find_ids("Patient", [("identifier", "3000000001")]) == []
    assert [e.id for e in await store.outbox_after(0)] == ["p2"]
