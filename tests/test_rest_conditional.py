"""Conditional create, update, delete and patch, including the race on If-None-Exist."""

import asyncio

from .test_rest_crud import PATIENT

NID = "http://nphies.sa/identifier/nationalid"


def patient(national_id: str) -> dict:
    return {**PATIENT, "identifier": [{"system": NID, "value": national_id}]}


async def test_conditional_create_returns_existing_match(client):
    headers = {"If-None-Exist": f"identifier={NID}|2000000001"}
    first = await client.post("/Patient", json=patient("2000000001"), headers=headers)
    second = await client.post("/Patient", json=patient("2000000001"), headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


async def test_conditional_create_with_many_matches_is_412(client):
    for _ in range(2):
        await client.post("/Patient", json=patient("2000000002"))
    response = await client.post(
        "/Patient", json=patient("2000000002"), headers={"If-None-Exist": "identifier=2000000002"}
    )
    assert response.status_code == 412


async def test_conditional_create_is_race_free(client):
    headers = {"If-None-Exist": f"identifier={NID}|2000000003"}
    responses = await asyncio.gather(
        *[client.post("/Patient", json=patient("2000000003"), headers=headers) for _ in range(10)]
    )
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]


async def test_conditional_create_with_unsupported_criteria_is_400(client):
    response = await client.post("/Patient", json=PATIENT, headers={"If-None-Exist": "nonsense=1"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["nonsense"]


async def test_conditional_update_creates_then_updates(client):
    url = f"/Patient?identifier={NID}|2000000004"
    created = await client.put(url, json=patient("2000000004"))
    assert created.status_code == 201
    updated = await client.put(url, json={**patient("2000000004"), "gender": "male"})
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"


async def test_conditional_update_with_conflicting_id_is_400(client):
    url = f"/Patient?identifier={NID}|2000000005"
    await client.put(url, json=patient("2000000005"))
    response = await client.put(url, json={**patient("2000000005"), "id": "other"})
    assert response.status_code == 400


async def test_conditional_update_by_id(client):
    created = (await client.post("/Patient", json=PATIENT)).json()
    response = await client.put(f"/Patient?_id={created['id']}", json={**PATIENT, "gender": "male"})
    assert response.status_code == 200 and response.json()["id"] == created["id"]


async def test_conditional_delete(client):
    await client.post("/Patient", json=patient("2000000006"))
    assert (await client.delete(f"/Patient?identifier={NID}|2000000006")).status_code == 204
    again = await client.post(
        "/Patient", json=patient("2000000006"), headers={"If-None-Exist": f"identifier={NID}|2000000006"}
    )
    assert again.status_code == 201
    assert (await client.delete("/Patient?identifier=none-such")).status_code == 204
    await client.post("/Patient", json=patient("2000000006"))
    assert (await client.delete(f"/Patient?identifier={NID}|2000000006")).status_code == 412


async def test_conditional_patch(client):
    await client.post("/Patient", json=patient("2000000007"))
    response = await client.patch(
        f"/Patient?identifier={NID}|2000000007",
        json=[{"op": "replace", "path": "/gender", "value": "unknown"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200 and response.json()["gender"] == "unknown"


async def test_updated_identifier_is_reindexed(client):
    created = (await client.post("/Patient", json=patient("2000000008"))).json()
    await client.put(
        f"/Patient/{created['id']}", json={**created, "identifier": [{"system": NID, "value": "2000000009"}]}
    )
    old = await client.post(
        "/Patient", json=patient("2000000008"), headers={"If-None-Exist": f"identifier={NID}|2000000008"}
    )
    assert old.status_code == 201
    new = await client.post(
        "/Patient", json=patient("2000000009"), headers={"If-None-Exist": f"identifier={NID}|2000000009"}
    )
    assert new.status_code == 200 and new.json()["id"] == created["id"]
