"""Conditional create, update, delete and patch take any search criteria (strings, dates, chains, _has),
evaluated by the search path inside the write transaction."""

import asyncio

PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Qahtani", "given": ["Reem"]}],
    "birthDate": "1985-07-04",
}
PATCH = {"Content-Type": "application/json-patch+json"}


async def test_conditional_create_with_string_and_date_criteria_is_race_free(client):
    headers = {"If-None-Exist": "family:exact=Qahtani&birthdate=1985-07"}
    responses = await asyncio.gather(
        *[client.post("/Patient", json=PATIENT, headers=headers) for _ in range(8)]
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_conditional_update_and_patch_by_chained_criteria(client):
    patient = (await client.post("/Patient", json=PATIENT)).json()
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{patient['id']}"},
    }
    created = (await client.post("/Task", json=task)).json()
    updated = await client.put(
        "/Task?patient.family=qahtani&status=requested", json={**task, "status": "ready"}
    )
    assert updated.status_code == 200 and updated.json()["id"] == created["id"]
    patched = await client.patch(
        "/Task?patient.birthdate=1985&status:not=requested",
        json=[{"op": "replace", "path": "/status", "value": "in-progress"}],
        headers=PATCH,
    )
    assert patched.status_code == 200 and patched.json()["status"] == "in-progress"


async def test_conditional_delete_by_reverse_chain_and_many_matches(client):
    patient = (await client.post("/Patient", json=PATIENT)).json()
    task = (
        await client.post(
            "/Task",
            json={
                "resourceType": "Task",
                "status": "cancelled",
                "intent": "order",
                "for": {"reference": f"Patient/{patient['id']}"},
            },
        )
    ).json()
    # the reverse chain selects the Patient; the Task that selects it still refers to it, so the delete
    # is refused with 409 naming the referrer (docs/api.md, referential integrity) and nothing is deleted
    refused = await client.delete("/Patient?_has:Task:patient:status=cancelled")
    assert refused.status_code == 409, refused.text
    assert f"Task/{task['id']}" in refused.text
    assert (await client.get(f"/Patient/{patient['id']}")).status_code == 200
    # no Task matches this chain: nothing is selected, so nothing is deleted (204)
    assert (await client.delete("/Patient?_has:Task:patient:status=requested")).status_code == 204
    assert (await client.get(f"/Patient/{patient['id']}")).status_code == 200
    for _ in range(2):
        await client.post("/Patient", json=PATIENT)
    assert (await client.delete("/Patient?birthdate=1985")).status_code == 412


async def test_conditional_criteria_are_strict(client):
    response = await client.post("/Patient", json=PATIENT, headers={"If-None-Exist": "nonsense=1"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["nonsense"]
    empty = await client.post("/Patient", json=PATIENT, headers={"If-None-Exist": "family="})
    assert empty.status_code == 400
    bad_date = await client.put("/Patient?birthdate=someday", json=PATIENT)
    assert bad_date.status_code == 400 and bad_date.json()["issue"][0]["expression"] == ["birthdate"]


async def test_conditional_references_in_a_transaction_take_any_criteria(client):
    patient = (await client.post("/Patient", json=PATIENT)).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "for": {"reference": "Patient?family=qahtani&birthdate=1985-07-04&given:exact=Reem"},
                },
                "request": {"method": "POST", "url": "Task"},
            },
            {
                "resource": PATIENT,
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "family=qahtani&birthdate=ge1985",
                },
            },
        ],
    }
    response = await client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[1]["response"]["status"].startswith("200")
    assert entries[0]["resource"]["for"]["reference"] == f"Patient/{patient['id']}"
