"""Conditional interactions through the store port: find_ids, and FhirService's conditional writes."""

import asyncio

import pytest

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.store import TransientConflict

from .writing import NID, delete, patient, version_of, write

SYSTEM = RequestContext.system()


@pytest.fixture
async def patients(store, extractor):
    await write(store, extractor, patient("a", "1000000001"))
    await write(store, extractor, patient("b", "1000000002", gender="male"))
    await write(
        store, extractor, {"resourceType": "Patient", "id": "c", "identifier": [{"value": "1000000001"}]}
    )
    await write(store, extractor, patient("d", "1000000004"))
    await delete(store, "Patient", "d", 2, "2024-01-02T00:00:00Z")


@pytest.mark.parametrize(
    ("criteria", "ids"),
    [
        ([("identifier", "1000000001")], ["a", "c"]),
        ([("identifier", f"{NID}|1000000001")], ["a"]),
        ([("identifier", "|1000000001")], ["c"]),
        ([("identifier", "other|1000000001")], []),
        ([("_id", "b")], ["b"]),
        ([("_id", "a"), ("identifier", "1000000002")], []),
        ([("gender", "male"), ("identifier", "1000000002")], ["b"]),
        ([("identifier", "1000000004")], []),
        ([("_id", "d")], []),
        ([("no-such-parameter", "x")], []),
    ],
)
async def test_find_ids_matches_live_resources_on_every_criterion(store, patients, criteria, ids):
    assert await store.find_ids("Patient", criteria) == ids
    async with store.transaction() as tx:
        assert await tx.find_ids("Patient", criteria) == ids


async def test_find_ids_in_a_transaction_sees_its_own_writes(store, extractor):
    resource = patient("x", "1000000009")
    async with store.transaction() as tx:
        await tx.write(version_of(resource, 1, "2024-01-01T00:00:00Z"), extractor.extract(resource), "t")
        assert await tx.find_ids("Patient", [("identifier", "1000000009")]) == ["x"]
        assert await store.find_ids("Patient", [("identifier", "1000000009")]) == []


async def _create_unless_found(store, extractor, n: int) -> tuple[str, bool]:
    """A conditional create at the port: look, give the others time to look too, then write."""
    for _ in range(50):
        try:
            async with store.transaction() as tx:
                found = await tx.find_ids("Patient", [("identifier", "3000000001")])
                await asyncio.sleep(0.005)
                if found:
                    return found[0], False
                resource = patient(f"r{n}", "3000000001")
                await tx.write(
                    version_of(resource, 1, "2024-01-01T00:00:00Z"), extractor.extract(resource), "t"
                )
                return resource["id"], True
        except TransientConflict:
            continue
    raise AssertionError("kept conflicting")


async def test_conditional_lookups_with_the_same_criteria_are_serialised(store, extractor):
    results = await asyncio.gather(*[_create_unless_found(store, extractor, n) for n in range(6)])
    assert sum(created for _, created in results) == 1
    assert len({resource_id for resource_id, _ in results}) == 1
    assert len(await store.find_ids("Patient", [("identifier", "3000000001")])) == 1


async def test_conditional_create_is_race_free(service, store):
    headers = f"identifier={NID}|2000000003"
    results = await asyncio.gather(
        *[service.create(SYSTEM, patient("ignored", "2000000003"), if_none_exist=headers) for _ in range(8)]
    )
    assert sorted(r.status for r in results) == [200] * 7 + [201]
    assert len({r.version.id for r in results}) == 1
    assert len(await store.find_ids("Patient", [("identifier", "2000000003")])) == 1


async def test_conditional_update_and_delete_act_on_the_single_match(service, store):
    created = await service.create(SYSTEM, patient("ignored", "2000000005"))
    query = f"identifier={NID}|2000000005"
    updated = await service.conditional_update(
        SYSTEM, "Patient", query, patient(created.version.id, "2000000005", gender="male")
    )
    assert (updated.status, updated.version.version) == (200, 2)
    deleted = await service.conditional_delete(SYSTEM, "Patient", query)
    assert deleted.status == 204
    assert (await store.read("Patient", created.version.id)).deleted
    assert await store.find_ids("Patient", [("identifier", "2000000005")]) == []


async def test_conditional_update_without_a_match_creates(service, store):
    result = await service.conditional_update(
        SYSTEM, "Patient", f"identifier={NID}|2000000006", patient("n1", "2000000006")
    )
    assert result.status == 201
    assert await store.find_ids("Patient", [("identifier", "2000000006")]) == [result.version.id]


async def test_a_conditional_write_matching_several_is_refused(service):
    for _ in range(2):
        await service.create(SYSTEM, patient("ignored", "2000000007"))
    with pytest.raises(FhirError) as refused:
        await service.create(SYSTEM, patient("ignored", "2000000007"), if_none_exist="identifier=2000000007")
    assert refused.value.status == 412
