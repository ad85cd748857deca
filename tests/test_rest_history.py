"""Instance, type and system history with _count, _since and cursor paging."""

from datetime import UTC, datetime, timedelta

from .test_rest_crud import PATIENT


async def _make_versions(client, n: int) -> str:
    created = (await client.post("/Patient", json=PATIENT)).json()
    for i in range(n - 1):
        await client.put(f"/Patient/{created['id']}", json={**created, "birthDate": f"19{50 + i}"})
    return created["id"]


async def test_instance_history_newest_first_with_paging(client):
    pid = await _make_versions(client, 5)
    page = (await client.get(f"/Patient/{pid}/_history?_count=2")).json()
    assert page["type"] == "history"
    versions = [e["resource"]["meta"]["versionId"] for e in page["entry"]]
    assert versions == ["5", "4"]
    seen = list(versions)
    while nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        page = (await client.get(nxt.removeprefix("http://fhir.test"))).json()
        seen += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
    assert seen == ["5", "4", "3", "2", "1"]
    assert page["entry"][-1]["request"] == {"method": "POST", "url": "Patient"}
    assert page["entry"][-1]["response"]["status"] == "201 Created"


async def test_type_and_system_history(client):
    await _make_versions(client, 2)
    await client.post("/Organization", json={"resourceType": "Organization", "name": "Payer"})
    patient_history = (await client.get("/Patient/_history")).json()
    assert {e["resource"]["resourceType"] for e in patient_history["entry"]} == {"Patient"}
    assert len(patient_history["entry"]) == 2
    system = (await client.get("/_history")).json()
    assert [e["resource"]["resourceType"] for e in system["entry"]] == ["Organization", "Patient", "Patient"]


async def test_history_since(client):
    await _make_versions(client, 1)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert "entry" not in (await client.get("/_history", params={"_since": future})).json()
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len((await client.get("/_history", params={"_since": past})).json()["entry"]) == 1


async def test_history_bad_parameters_are_400(client):
    assert (await client.get("/_history?_since=yesterday")).status_code == 400
    assert (await client.get("/_history?_count=many")).status_code == 400
    assert (await client.get("/_history?_cursor=!!!")).status_code == 400
    assert (await client.get("/Patient/unknown/_history")).status_code == 404
