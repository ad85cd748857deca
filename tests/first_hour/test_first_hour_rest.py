"""What FHIR clients such as fhirpy rely on: `total` when it is cheap or asked, JSON Merge Patch (RFC 7386)
on PATCH with ETags, and conditional create from `If-None-Exist` or from the query of the POST."""

SYSTEM = "urn:oid:1.2.3"
MERGE = {"Content-Type": "application/merge-patch+json"}


def patient(value: str, family: str = "Alharbi") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": family, "given": ["Sara"]}],
        "gender": "female",
        "birthDate": "1990-01-01",
    }


async def _created(client, value: str, family: str = "Alharbi") -> dict:
    response = await client.post("/Patient", json=patient(value, family))
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_first_page_holding_every_match_carries_the_total(client):
    for n in range(3):
        await _created(client, f"t{n}", "Total")
    assert (await client.get("/Patient?family=Total")).json()["total"] == 3
    partial = (await client.get("/Patient?family=Total&_count=2")).json()
    assert "total" not in partial and len(partial["entry"]) == 2
    assert (await client.get("/Patient?family=Total&_count=2&_total=accurate")).json()["total"] == 3
    assert "total" not in (await client.get("/Patient?family=Total&_total=none")).json()


async def test_count_zero_answers_the_total_without_entries(client):
    for n in range(2):
        await _created(client, f"z{n}", "Zero")
    counted = (await client.get("/Patient?family=Zero&_count=0")).json()
    assert counted["total"] == 2 and "entry" not in counted


async def test_a_merge_patch_changes_removes_and_merges_members(client):
    created = await _created(client, "m1")
    url = f"/Patient/{created['id']}"
    body = {"gender": "male", "birthDate": None, "active": True, "meta": {"tag": [{"code": "vip"}]}}
    response = await client.patch(url, json=body, headers=MERGE)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"2"'
    patched = response.json()
    assert patched["gender"] == "male" and patched["active"] is True and "birthDate" not in patched
    assert patched["name"] == created["name"] and patched["meta"]["tag"] == [{"code": "vip"}]
    assert patched["meta"]["versionId"] == "2"
    assert (await client.get(url)).json() == patched


async def test_plain_json_object_on_patch_is_a_merge_patch_and_an_array_a_json_patch(client):
    created = await _created(client, "m2")
    url = f"/Patient/{created['id']}"
    merged = await client.patch(url, json={"gender": "other"}, headers={"Content-Type": "application/json"})
    assert merged.status_code == 200 and merged.json()["gender"] == "other"
    ops = [{"op": "replace", "path": "/gender", "value": "unknown"}]
    patched = await client.patch(url, json=ops, headers={"Content-Type": "application/json"})
    assert patched.status_code == 200 and patched.json()["gender"] == "unknown"


async def test_a_merge_patch_honours_if_match(client):
    created = await _created(client, "m3")
    url = f"/Patient/{created['id']}"
    stale = await client.patch(url, json={"gender": "male"}, headers={**MERGE, "If-Match": 'W/"7"'})
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    current = await client.patch(url, json={"gender": "male"}, headers={**MERGE, "If-Match": 'W/"1"'})
    assert current.status_code == 200 and current.headers["etag"] == 'W/"2"'


async def test_a_bad_merge_patch_is_refused_and_stores_nothing(client):
    created = await _created(client, "m4")
    url = f"/Patient/{created['id']}"
    invalid = await client.patch(url, json={"gender": 5}, headers=MERGE)
    assert invalid.status_code == 400 and invalid.json()["resourceType"] == "OperationOutcome"
    other_id = await client.patch(url, json={"id": "someone-else"}, headers=MERGE)
    assert other_id.status_code == 400
    not_an_object = await client.patch(url, json=["gender"], headers=MERGE)
    assert not_an_object.status_code == 400
    fhirpath = await client.patch(
        url,
        json={"resourceType": "Parameters", "parameter": []},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert fhirpath.status_code == 415 and "FHIRPath Patch" in fhirpath.json()["issue"][0]["diagnostics"]
    missing = await client.patch("/Patient/nobody", json={"gender": "male"}, headers=MERGE)
    assert missing.status_code == 404
    assert (await client.get(url)).json()["meta"]["versionId"] == "1"


async def test_a_conditional_merge_patch_selects_by_criteria(client):
    await _created(client, "m5")
    response = await client.patch(f"/Patient?identifier={SYSTEM}|m5", json={"gender": "male"}, headers=MERGE)
    assert response.status_code == 200 and response.json()["gender"] == "male"


async def test_conditional_create_from_the_query_creates_once(client):
    url = f"/Patient?identifier={SYSTEM}|q1"
    first = await client.post(url, json=patient("q1"))
    second = await client.post(url, json=patient("q1"))
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    found = (await client.get(url)).json()
    assert found["total"] == 1


async def test_conditional_create_from_the_header_creates_once(client):
    headers = {"If-None-Exist": f"identifier={SYSTEM}|h1"}
    first = await client.post("/Patient", json=patient("h1"), headers=headers)
    second = await client.post("/Patient", json=patient("h1"), headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]


async def test_conditional_create_matching_several_is_412_and_creates_nothing(client):
    await _created(client, "d1", "Twin")
    await _created(client, "d2", "Twin")
    response = await client.post("/Patient?family=Twin", json=patient("d3", "Twin"))
    assert response.status_code == 412 and response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get("/Patient?family=Twin")).json()["total"] == 2


async def test_conditional_create_criteria_given_twice_or_unknown_are_400(client):
    both = await client.post(
        f"/Patient?identifier={SYSTEM}|x", json=patient("x"), headers={"If-None-Exist": "family=X"}
    )
    assert both.status_code == 400
    unknown = await client.post("/Patient?no-such-param=1", json=patient("y"))
    assert unknown.status_code == 400 and "no-such-param" in unknown.text
    assert "entry" not in (await client.get(f"/Patient?identifier={SYSTEM}|x,{SYSTEM}|y")).json()


async def test_format_parameters_on_a_post_are_no_criteria(client):
    first = await client.post("/Patient?_format=json", json=patient("f1"))
    second = await client.post("/Patient?_format=json", json=patient("f1"))
    assert (first.status_code, second.status_code) == (201, 201)


async def test_the_capability_statement_lists_both_patch_formats(client):
    statement = (await client.get("/metadata")).json()
    assert statement["patchFormat"] == ["application/json-patch+json", "application/merge-patch+json"]
    assert statement["rest"][0]["resource"][0]["conditionalCreate"] is True
