"""Referential integrity through the store port (Store.live, Store.referrers) on every backend: dangling
references refused, deletions of what is still referred to refused, both atomic with the write."""

import asyncio

import pytest

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.errors import FhirError

SYSTEM = RequestContext.system()


def observation(subject: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": subject},
    }


async def test_a_reference_to_a_missing_or_deleted_resource_is_refused(service):
    with pytest.raises(FhirError) as missing:
        await service.create(SYSTEM, observation("Patient/nobody"))
    assert missing.value.status == 400
    assert missing.value.issues[0].expression == "Observation.subject.reference"
    patient = (await service.create(SYSTEM, {"resourceType": "Patient"})).version.id
    await service.delete(SYSTEM, "Patient", patient)
    with pytest.raises(FhirError) as deleted:
        await service.create(SYSTEM, observation(f"Patient/{patient}"))
    assert deleted.value.status == 400


async def test_deleting_a_referenced_resource_is_a_409_until_the_referrer_goes(service):
    patient = (await service.create(SYSTEM, {"resourceType": "Patient"})).version.id
    referrer = (await service.create(SYSTEM, observation(f"Patient/{patient}"))).version.id
    with pytest.raises(FhirError) as refused:
        await service.delete(SYSTEM, "Patient", patient)
    assert refused.value.status == 409
    assert f"Observation/{referrer}" in refused.value.issues[0].diagnostics
    assert not (await service.store.read("Patient", patient)).deleted
    async with service.transaction(retried=True) as tx:
        await service.delete(SYSTEM, "Patient", patient, tx=tx)
        await service.delete(SYSTEM, "Observation", referrer, tx=tx)
    assert (await service.store.read("Patient", patient)).deleted


async def test_a_concurrent_delete_and_reference_do_not_both_commit(service):
    """Either the referrer lands and the delete is refused, or the delete lands and the referrer is."""
    for _ in range(5):
        patient = (await service.create(SYSTEM, {"resourceType": "Patient"})).version.id
        created, deleted = await asyncio.gather(
            service.create(SYSTEM, observation(f"Patient/{patient}")),
            service.delete(SYSTEM, "Patient", patient),
            return_exceptions=True,
        )
        assert isinstance(created, FhirError) != isinstance(deleted, FhirError), (created, deleted)
