"""Reads, writes, versions and transactions through the store port, on every backend."""

import pytest

from nphies_facade.resources.store import HistoryQuery, StoredVersion, VersionConflict

from .writing import delete, patient, version_of, write


async def test_a_written_version_reads_back_byte_exact(store, extractor):
    written, _ = await write(store, extractor, patient("p1", "1000000001", gender="female"))
    read = await store.read("Patient", "p1")
    assert read is not None
    assert read.body == written.body
    assert (read.version, read.last_updated, read.deleted) == (1, "2024-01-01T00:00:00Z", False)


async def test_an_unknown_resource_reads_as_none(store):
    assert await store.read("Patient", "nobody") is None
    assert await store.vread("Patient", "nobody", 1) is None


async def test_an_update_makes_the_next_version_and_keeps_the_old_one(store, extractor):
    first, _ = await write(store, extractor, patient("p1", gender="female"))
    second, _ = await write(store, extractor, patient("p1", gender="male"), 2, "2024-01-02T00:00:00Z")
    assert (await store.read("Patient", "p1")).body == second.body
    assert (await store.vread("Patient", "p1", 1)).body == first.body
    assert (await store.vread("Patient", "p1", 2)).body == second.body
    assert await store.vread("Patient", "p1", 3) is None


@pytest.mark.parametrize("version", [1, 3])
async def test_a_write_not_based_on_the_current_version_conflicts(store, extractor, version):
    await write(store, extractor, patient("p1"))
    with pytest.raises(VersionConflict):
        await write(store, extractor, patient("p1"), version)
    assert (await store.read("Patient", "p1")).version == 1


async def test_a_later_version_of_an_unknown_resource_conflicts(store, extractor):
    with pytest.raises(VersionConflict):
        await write(store, extractor, patient("p9"), 2)
    assert await store.read("Patient", "p9") is None


async def test_a_deletion_is_a_version_without_a_body(store, extractor):
    written, _ = await write(store, extractor, patient("p1"))
    event = await delete(store, "Patient", "p1", 2, "2024-01-02T00:00:00Z")
    read = await store.read("Patient", "p1")
    assert read.deleted and read.body is None and read.version == 2
    assert (await store.vread("Patient", "p1", 2)).deleted
    assert (await store.vread("Patient", "p1", 1)).body == written.body
    assert event.action == "delete"


async def test_a_deleted_resource_can_be_written_again(store, extractor):
    await write(store, extractor, patient("p1"))
    await delete(store, "Patient", "p1", 2, "2024-01-02T00:00:00Z")
    again, event = await write(store, extractor, patient("p1", gender="other"), 3, "2024-01-03T00:00:00Z")
    assert (await store.read("Patient", "p1")).body == again.body
    assert event.action == "update"


async def test_current_in_a_transaction_sees_its_own_writes_and_the_history_row(store, extractor):
    stored = version_of(patient("p1"), 1, "2024-01-01T00:00:00Z", "POST")
    async with store.transaction() as tx:
        assert await tx.current("Patient", "p1") is None
        await tx.write(stored, {}, "trace")
        current = await tx.current("Patient", "p1")
        assert (current.body, current.method, current.version) == (stored.body, "POST", 1)
        assert current.position > 0
        assert await store.read("Patient", "p1") is None  # not visible to others before commit
    assert (await store.read("Patient", "p1")).body == stored.body


async def test_an_exception_in_a_transaction_leaves_no_resource_history_index_or_event(store, extractor):
    await write(store, extractor, patient("p0", "1000000000"))
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            resource = patient("p1", "1000000001")
            await tx.write(version_of(resource, 1, "2024-01-02T00:00:00Z"), extractor.extract(resource), "t")
            await tx.write(version_of(patient("p0"), 2, "2024-01-02T00:00:00Z"), {}, "t")
            raise RuntimeError("the unit of work failed")
    assert await store.read("Patient", "p1") is None
    assert (await store.read("Patient", "p0")).version == 1
    assert await store.vread("Patient", "p1", 1) is None
    assert [(v.id, v.version) for v in await store.history(HistoryQuery())] == [("p0", 1)]
    assert await store.find_ids("Patient", [("identifier", "1000000001")]) == []
    assert await store.find_ids("Patient", [("identifier", "1000000000")]) == ["p0"]
    assert [e.id for e in await store.outbox_after(0)] == ["p0"]


async def test_a_version_conflict_inside_a_transaction_rolls_back_what_it_wrote(store, extractor):
    await write(store, extractor, patient("p0"))
    with pytest.raises(VersionConflict):
        async with store.transaction() as tx:
            await tx.write(version_of(patient("p1"), 1, "2024-01-02T00:00:00Z"), {}, "t")
            await tx.write(version_of(patient("p0"), 1, "2024-01-02T00:00:00Z"), {}, "t")
    assert await store.read("Patient", "p1") is None
    assert len(await store.outbox_after(0)) == 1


async def test_the_store_answers_ping(store):
    assert await store.ping()


def test_stored_version_knows_a_deletion():
    assert StoredVersion("Patient", "1", 2, "2024-01-01T00:00:00Z", "DELETE", None).deleted
