"""The CapabilityStatement reflects what is implemented; health and readiness answer."""

from nphies_facade.resources.types import supported_types


async def test_capability_statement_lists_every_supported_type_and_interaction(client):
    response = await client.get("/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    types = {r["type"] for r in rest["resource"]}
    assert types == set(supported_types())
    assert {"Patient", "Claim", "Task", "Coverage", "Encounter"} <= types
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "create",
        "history-instance",
        "history-type",
    } <= codes
    assert patient["conditionalCreate"] is True and patient["conditionalDelete"] == "single"
    assert {"code": "history-system"} in rest["interaction"]


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_trace_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32
