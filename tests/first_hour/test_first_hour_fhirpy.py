"""fhirpy, the Python FHIR client, works in full against a real server on loopback: create, search,
count, patch (a merge patch), get_or_create (conditional create from the query), update, delete."""

import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

pytestmark = pytest.mark.integration

SYSTEM = "urn:oid:1.2.3.4.5"


async def test_fhirpy_create_search_count_patch_get_or_create_update_delete(loopback_url):
    client = AsyncFHIRClient(loopback_url, extra_headers={"Accept": "application/fhir+json"})
    patient = client.resource(
        "Patient",
        identifier=[{"system": SYSTEM, "value": "fp-1"}],
        name=[{"family": "Alshehri", "given": ["Huda"]}],
        gender="female",
        birthDate="1988-04-02",
    )
    await patient.create()
    assert patient.id and patient["meta"]["versionId"] == "1"

    search = client.resources("Patient").search(family="Alshehri")
    assert [p.id for p in await search.fetch()] == [patient.id]
    assert await search.count() == 1
    assert await client.resources("Patient").search(family="Nobody").count() == 0
    assert await client.resources("Patient").search(family="Nobody").fetch() == []

    await patient.patch(gender="other", birthDate=None)
    assert patient["gender"] == "other" and "birthDate" not in patient
    assert patient["meta"]["versionId"] == "2"
    stored = await client.reference("Patient", patient.id).to_resource()
    assert stored["gender"] == "other" and "birthDate" not in stored

    by_identifier = client.resources("Patient").search(identifier=f"{SYSTEM}|fp-2")
    twin = client.resource("Patient", identifier=[{"system": SYSTEM, "value": "fp-2"}], gender="male")
    first, created_first = await by_identifier.get_or_create(twin)
    again, created_again = await by_identifier.get_or_create(twin)
    assert created_first is True and created_again is False
    assert again.id == first.id
    assert await by_identifier.count() == 1

    stored["active"] = True
    await stored.update()
    assert stored["meta"]["versionId"] == "3"
    assert (await client.reference("Patient", patient.id).to_resource())["active"] is True

    await stored.delete()
    with pytest.raises(ResourceNotFound):
        await client.reference("Patient", patient.id).to_resource()
    assert await client.resources("Patient").search(family="Alshehri").count() == 0
