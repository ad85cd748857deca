"""End to end: `nphies-facade serve` as a real process on loopback, driven by the fhirpy client."""

import httpx
import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

pytestmark = pytest.mark.integration


async def test_fhirpy_create_read_update_delete(server_url):
    client = AsyncFHIRClient(server_url, extra_headers={"Accept": "application/fhir+json"})
    patient = client.resource("Patient", name=[{"family": "Alqahtani", "given": ["Noura"]}], gender="female")
    await patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"

    fetched = await client.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["family"] == "Alqahtani"

    fetched["gender"] = "other"
    await fetched.save()
    assert fetched["meta"]["versionId"] == "2"

    await fetched.delete()
    with pytest.raises(ResourceNotFound):
        await client.reference("Patient", patient.id).to_resource()


async def test_server_answers_metadata_and_errors_over_http(server_url):
    async with httpx.AsyncClient(base_url=server_url) as http:
        metadata = await http.get("/metadata")
        assert metadata.json()["fhirVersion"] == "4.0.1"
        bad = await http.post("/Patient", content=b"{", headers={"Content-Type": "application/fhir+json"})
        assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
