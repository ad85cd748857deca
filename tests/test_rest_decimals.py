"""Decimals keep the exact text the client sent, through every way a resource is written and read back,
on the SQLite store and on the MongoDB store (in-process stand-in)."""

import base64
import json

import pytest

from .json_text import numbers, numbers_in, parsed

SENT = ["105.00", "0.50", "1e2", "-0.0", "3.14159265358979323846264338327950288", "1.0E-7"]


def observation(resource_id: str, values: list[str] = SENT) -> bytes:
    first, *others = values
    components = ",".join(
        f'{{"code":{{"text":"c{i}"}},"valueQuantity":{{"value":{value},"unit":"kg"}}}}'
        for i, value in enumerate(others)
    )
    return (
        f'{{"resourceType":"Observation","id":"{resource_id}","status":"final","code":{{"text":"weight"}},'
        f'"subject":{{"reference":"Patient/p1"}},'
        f'"valueQuantity":{{"value":{first},"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}},'
        f'"component":[{components}]}}'
    ).encode()


@pytest.fixture
async def client(client_on_each_store):
    patient = await client_on_each_store.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert patient.status_code == 201, patient.text
    return client_on_each_store


async def _put(client, resource_id: str, values: list[str] = SENT) -> None:
    response = await client.put(f"/Observation/{resource_id}", content=observation(resource_id, values))
    assert response.status_code in (200, 201), response.text
    assert numbers(response.content) == values


def _entry_numbers(bundle: bytes | dict) -> list[list[str]]:
    """The numbers of each Observation entry of a Bundle, read from the Bundle's own text."""
    document = parsed(bundle) if isinstance(bundle, bytes) else bundle
    return [
        numbers_in(e["resource"])
        for e in document.get("entry", [])
        if e.get("resource", {}).get("resourceType") == "Observation"
    ]


async def test_create_read_and_vread_answer_the_numbers_as_sent(client):
    created = await client.post("/Observation", content=observation("ignored"))
    assert created.status_code == 201, created.text
    assert numbers(created.content) == SENT
    url = created.headers["location"].split("/_history")[0].removeprefix("http://fhir.test")
    assert numbers((await client.get(url)).content) == SENT
    assert numbers((await client.get(f"{url}/_history/1")).content) == SENT


async def test_an_update_keeps_each_version_s_numbers(client):
    await _put(client, "o1")
    await _put(client, "o1", ["105.10", "0.500", "1E2", "-0", "2.50", "7.000"])
    assert numbers((await client.get("/Observation/o1/_history/1")).content) == SENT
    assert numbers((await client.get("/Observation/o1")).content) == [
        "105.10",
        "0.500",
        "1E2",
        "-0",
        "2.50",
        "7.000",
    ]
    history = await client.get("/Observation/o1/_history")
    assert _entry_numbers(history.content) == [["105.10", "0.500", "1E2", "-0", "2.50", "7.000"], SENT]


async def test_a_json_patch_keeps_the_numbers_it_does_not_touch_and_the_ones_it_adds(client):
    await _put(client, "o1")
    patch = b'[{"op":"replace","path":"/status","value":"amended"},{"op":"add","path":"/valueQuantity/value","value":80.00}]'
    response = await client.patch(
        "/Observation/o1", content=patch, headers={"Content-Type": "application/json-patch+json"}
    )
    assert response.status_code == 200, response.text
    assert numbers(response.content) == ["80.00", *SENT[1:]]
    assert numbers((await client.get("/Observation/o1")).content) == ["80.00", *SENT[1:]]


async def test_search_results_and_includes_answer_the_numbers_as_sent(client):
    await _put(client, "o1")
    await client.put(
        "/DiagnosticReport/r1",
        json={
            "resourceType": "DiagnosticReport",
            "id": "r1",
            "status": "final",
            "code": {"text": "panel"},
            "result": [{"reference": "Observation/o1"}],
        },
    )
    found = await client.get("/Observation", params={"_id": "o1"})
    assert _entry_numbers(found.content) == [SENT]
    included = await client.get(
        "/DiagnosticReport", params={"_id": "r1", "_include": "DiagnosticReport:result"}
    )
    assert _entry_numbers(included.content) == [SENT]
    revincluded = await client.get("/Patient", params={"_id": "p1", "_revinclude": "Observation:subject"})
    assert _entry_numbers(revincluded.content) == [SENT]
    posted = await client.post(
        "/Observation/_search",
        content=b"_id=o1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert _entry_numbers(posted.content) == [SENT]


@pytest.mark.parametrize("params", [{"_summary": "data"}, {"_elements": "valueQuantity,component"}])
async def test_subsetted_search_results_keep_the_numbers_they_show(client, params):
    await _put(client, "o1")
    found = await client.get("/Observation", params={"_id": "o1", **params})
    assert _entry_numbers(found.content) == [SENT]


async def test_a_transaction_stores_and_answers_the_numbers_as_sent(client):
    bundle = (
        b'{"resourceType":"Bundle","type":"transaction","entry":['
        b'{"fullUrl":"urn:uuid:5b0f1c1e-8e2a-4a52-9d7e-2f1f3a8f0c01","resource":'
        + observation("x").replace(b'"id":"x",', b"")
        + b',"request":{"method":"POST","url":"Observation"}},'
        b'{"resource":'
        + observation("t2", ["12500.00", "0.40"])
        + b',"request":{"method":"PUT","url":"Observation/t2"}}'
        b"]}"
    )
    response = await client.post("/", content=bundle, headers={"Prefer": "return=representation"})
    assert response.status_code == 200, response.text
    assert _entry_numbers(response.content) == [SENT, ["12500.00", "0.40"]]
    created = json.loads(response.content)["entry"][0]["response"]["location"].split("/_history")[0]
    assert numbers((await client.get(created.removeprefix("http://fhir.test"))).content) == SENT
    assert numbers((await client.get("/Observation/t2")).content) == ["12500.00", "0.40"]


async def test_a_batch_read_answers_the_numbers_as_sent(client):
    await _put(client, "o1")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation/o1"}},
            {"request": {"method": "GET", "url": "Observation/o1/_history/1"}},
            {"request": {"method": "GET", "url": "Observation?_id=o1"}},
        ],
    }
    response = await client.post("/", json=batch)
    read, vread, search = (entry["resource"] for entry in parsed(response.content)["entry"])
    assert numbers_in(read) == SENT and numbers_in(vread) == SENT
    assert _entry_numbers(search) == [SENT]


async def test_a_transaction_patch_entry_keeps_the_numbers(client):
    await _put(client, "o1")
    patch = base64.b64encode(b'[{"op":"add","path":"/valueQuantity/value","value":0.10}]').decode()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/json-patch+json",
                    "data": patch,
                },
                "request": {"method": "PATCH", "url": "Observation/o1"},
            }
        ],
    }
    assert (await client.post("/", json=bundle)).status_code == 200
    assert numbers((await client.get("/Observation/o1")).content) == ["0.10", *SENT[1:]]


@pytest.mark.parametrize(
    ("query", "found"),
    [("105.00", True), ("105", True), ("105.0", True), ("105.01", False), ("105.001", False), ("1e2", True)],
)
async def test_quantity_search_keeps_the_precision_of_the_searched_value(client, query, found):
    await _put(client, "o1")
    result = await client.get("/Observation", params={"value-quantity": query, "_total": "accurate"})
    assert result.status_code == 200, result.text
    assert (result.json()["total"] == 1) is found


async def test_an_invalid_resource_with_kept_decimals_is_a_400_naming_the_problem(client):
    body = observation("bad").replace(b'"status":"final"', b'"status":5')
    response = await client.put("/Observation/bad", content=body)
    assert response.status_code == 400, response.text
    assert any("status" in str(issue.get("expression")) for issue in response.json()["issue"])
    assert (await client.get("/Observation/bad")).status_code == 404
