"""The instance-level REST interactions: create, read, vread, update, patch, delete and their headers."""

import asyncio

import pytest

PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Alharbi", "given": ["Sara"]}],
    "gender": "female",
    "identifier": [{"system": "http://nphies.sa/identifier/nationalid", "value": "1000000001"}],
}


async def create_patient(client, body=None, **headers):
    response = await client.post("/Patient", json=body or PATIENT, headers=headers)
    assert response.status_code == 201, response.text
    return response


async def test_create_assigns_id_version_and_headers(client):
    response = await create_patient(client)
    body = response.json()
    assert body["id"] and body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"]
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == f"http://fhir.test/Patient/{body['id']}/_history/1"
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")


async def test_create_ignores_client_id_and_meta_version(client):
    body = {**PATIENT, "id": "mine", "meta": {"versionId": "7", "tag": [{"code": "keep"}]}}
    created = (await create_patient(client, body)).json()
    assert created["id"] != "mine"
    assert created["meta"]["versionId"] == "1"
    assert created["meta"]["tag"] == [{"code": "keep"}]


async def test_read_returns_what_was_created(client):
    created = (await create_patient(client)).json()
    response = await client.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'


async def test_read_with_matching_if_none_match_is_304(client):
    created = (await create_patient(client)).json()
    response = await client.get(f"/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304
    response = await client.get(f"/Patient/{created['id']}", headers={"If-None-Match": 'W/"0"'})
    assert response.status_code == 200


async def test_update_makes_new_version_and_vread_keeps_old(client):
    created = (await create_patient(client)).json()
    changed = {**created, "gender": "male"}
    response = await client.put(f"/Patient/{created['id']}", json=changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    old = await client.get(f"/Patient/{created['id']}/_history/1")
    assert old.status_code == 200 and old.json()["gender"] == "female"
    assert (await client.get(f"/Patient/{created['id']}/_history/2")).json()["gender"] == "male"
    assert (await client.get(f"/Patient/{created['id']}/_history/3")).status_code == 404


async def test_update_as_create_with_client_id(client):
    response = await client.put("/Patient/client-chosen-1", json={**PATIENT, "id": "client-chosen-1"})
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "1"
    assert (await client.get("/Patient/client-chosen-1")).status_code == 200


async def test_if_match_guards_updates(client):
    created = (await create_patient(client)).json()
    url = f"/Patient/{created['id']}"
    stale = await client.put(url, json=created, headers={"If-Match": 'W/"5"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    ok = await client.put(url, json=created, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    again = await client.put(url, json=created, headers={"If-Match": 'W/"1"'})
    assert again.status_code == 412


async def test_concurrent_updates_with_the_same_if_match_let_exactly_one_win(client):
    created = (await create_patient(client)).json()
    url = f"/Patient/{created['id']}"
    responses = await asyncio.gather(
        *[client.put(url, json=created, headers={"If-Match": 'W/"1"'}) for _ in range(8)]
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * 7


@pytest.mark.parametrize(
    "prefer, expect_body",
    [
        ("return=minimal", None),
        ("return=representation", "Patient"),
        ("return=OperationOutcome", "OperationOutcome"),
    ],
)
async def test_prefer_return(client, prefer, expect_body):
    response = await client.post("/Patient", json=PATIENT, headers={"Prefer": prefer})
    assert response.status_code == 201
    assert response.headers["location"]
    if expect_body is None:
        assert response.content == b""
    else:
        assert response.json()["resourceType"] == expect_body


async def test_delete_then_read_is_gone_and_history_keeps_it(client):
    created = (await create_patient(client)).json()
    url = f"/Patient/{created['id']}"
    assert (await client.delete(url)).status_code == 204
    gone = await client.get(url)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert (await client.delete(url)).status_code == 204
    history = (await client.get(f"{url}/_history")).json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    assert (await client.get(f"{url}/_history/2")).status_code == 410
    revived = await client.put(url, json=created)
    assert revived.status_code == 201 and revived.json()["meta"]["versionId"] == "3"


async def test_delete_unknown_is_404(client):
    assert (await client.delete("/Patient/nope")).status_code == 404


async def test_json_patch(client):
    created = (await create_patient(client)).json()
    url = f"/Patient/{created['id']}"
    ops = [
        {"op": "replace", "path": "/gender", "value": "other"},
        {"op": "add", "path": "/active", "value": True},
    ]
    response = await client.patch(url, json=ops, headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200, response.text
    assert response.json()["gender"] == "other" and response.json()["active"] is True
    assert response.json()["meta"]["versionId"] == "2"


async def test_json_patch_failures(client):
    created = (await create_patient(client)).json()
    url = f"/Patient/{created['id']}"
    headers = {"Content-Type": "application/json-patch+json"}
    failed_test = await client.patch(
        url, json=[{"op": "test", "path": "/gender", "value": "male"}], headers=headers
    )
    assert failed_test.status_code == 422
    invalid_result = await client.patch(
        url, json=[{"op": "replace", "path": "/gender", "value": 5}], headers=headers
    )
    assert invalid_result.status_code == 400
    change_id = await client.patch(
        url, json=[{"op": "replace", "path": "/id", "value": "x"}], headers=headers
    )
    assert change_id.status_code == 400
    not_a_patch = await client.patch(url, json={"op": "replace"}, headers=headers)
    assert not_a_patch.status_code == 400
    wrong_type = await client.patch(url, content=b"[]", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert (await client.get(url)).json()["meta"]["versionId"] == "1"
