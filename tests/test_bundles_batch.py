"""Batch Bundles at POST /: every entry on its own, answered in a batch-response, never a 500."""

import base64

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import example, requires_shared
from .test_bundles_transaction import (
    bundle,
    encounter,
    location_reference,
    module_app_fixtures,
    outbox_size,
    patient,
    post,
    put,
    request,
    statuses,
)

app, client = module_app_fixtures()


@requires_shared()
async def test_official_meds_allergies_batch_answers_the_read_and_the_searches(client):
    """Bundle-bundle-request-medsallergies.json as published: a read of Patient/example and four searches,
    each answered with a searchset Bundle."""
    await client.put("/Patient/example", json=patient(id="example"))
    response = await client.post("/", json=example("Bundle-bundle-request-medsallergies.json"))
    assert statuses(response) == ["200 OK"] * 5
    entries = response.json()["entry"]
    assert entries[0]["resource"]["id"] == "example" and entries[0]["response"]["etag"] == 'W/"1"'
    for entry in entries[1:]:
        assert entry["resource"]["resourceType"] == "Bundle" and entry["resource"]["type"] == "searchset"


async def test_batch_entries_fail_and_succeed_independently(client, app):
    before = await outbox_size(app)
    response = await client.post(
        "/",
        json=bundle(
            "batch",
            post("urn:uuid:a", patient("4000000001")),
            post("urn:uuid:b", {"resourceType": "Patient", "gender": 5}),
            request("GET", "Patient/none-such"),
            put("Patient/b1", patient(id="b1")),
            request("DELETE", "Patient/b1"),
        ),
    )
    assert response.json()["type"] == "batch-response"
    assert statuses(response) == [
        "201 Created",
        "400 Bad Request",
        "404 Not Found",
        "201 Created",
        "204 No Content",
    ]
    bad = response.json()["entry"][1]["response"]["outcome"]["issue"]
    assert bad[0]["expression"] == ["Bundle.entry[1].resource.gender"]
    assert await outbox_size(app) == before + 3


async def test_batch_entries_cannot_refer_to_each_other(client):
    response = await client.post(
        "/", json=bundle("batch", post("urn:uuid:p", patient()), post("urn:uuid:e", encounter("urn:uuid:p")))
    )
    assert statuses(response) == ["201 Created", "400 Bad Request"]
    diagnostics = response.json()["entry"][1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert "batch" in diagnostics


async def test_batch_reads_history_and_versions_and_honours_if_none_match(client):
    await client.put("/Patient/h1", json=patient(id="h1"))
    await client.put("/Patient/h1", json=patient(id="h1", gender="male"))
    response = await client.post(
        "/",
        json=bundle(
            "batch",
            request("GET", "Patient/h1/_history?_count=1"),
            request("GET", "/Patient/h1/_history/1"),
            request("GET", "http://fhir.test/Patient/h1", ifNoneMatch='W/"2"'),
            request("GET", "Patient/h1", ifModifiedSince="2000-01-01T00:00:00Z"),
            request("HEAD", "Patient/h1"),
        ),
    )
    assert statuses(response) == ["200 OK", "200 OK", "304 Not Modified", "200 OK", "200 OK"]
    history, vread, not_modified, modified, head = response.json()["entry"]
    assert history["resource"]["type"] == "history" and len(history["resource"]["entry"]) == 1
    assert vread["resource"]["meta"]["versionId"] == "1"
    assert "resource" not in not_modified and not_modified["response"]["etag"] == 'W/"2"'
    assert modified["resource"]["gender"] == "male"
    assert "resource" not in head


async def test_batch_prefer_operation_outcome(client):
    response = await client.post(
        "/", json=bundle("batch", post(None, patient())), headers={"Prefer": "return=OperationOutcome"}
    )
    entry = response.json()["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["outcome"]["issue"][0]["severity"] == "information"


def _patch_binary(operations: object) -> dict:
    return {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(operations)).decode(),
    }


VALID_ENTRIES = st.sampled_from(
    [
        post(None, patient("4100000001")),
        post(None, encounter("Patient/v1")),
        put("Patient/v1", patient(id="v1", gender="female")),
        request("GET", "Patient/v1"),
        request("GET", "Patient/v1/_history"),
        {
            "resource": _patch_binary([{"op": "add", "path": "/gender", "value": "male"}]),
            "request": {"method": "PATCH", "url": "Patient/v1"},
        },
    ]
)
INVALID_ENTRIES = st.sampled_from(
    [
        post(None, {"resourceType": "Patient", "gender": 5}),
        post(None, {"resourceType": "Spaceship"}),
        post(None, encounter("urn:uuid:nowhere")),
        post(None, encounter("Patient?identifier=none-such")),
        put("Patient/v1", patient(id="other")),
        put("Patient/v1", patient(id="v1"), ifMatch='W/"999"'),
        request("GET", "Patient/never"),
        request("GET", "Spaceship/1"),
        request("GET", "Patient?birthdate=not-a-date"),
        request("DELETE", "Patient"),
        request("PATCH", "Patient/v1"),
        {"resource": _patch_binary({"op": "nonsense"}), "request": {"method": "PATCH", "url": "Patient/v1"}},
        {"resource": patient(), "request": {"method": "POST", "url": "ValueSet/$lookup"}},
        {"resource": patient()},
        {"request": {"method": "FETCH", "url": "Patient"}},
        {"request": {"method": "GET"}},
        {"request": {"method": "GET", "url": "Patient/v1", "ifMatch": 'W/"1"'}},
        {"request": {"method": "GET", "url": "Patient/v1", "ifModifiedSince": "yesterday"}},
        "not an entry",
    ]
)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
JUNK_ENTRIES = st.dictionaries(st.sampled_from(["request", "resource", "search", "response"]), JSON_VALUES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(
        st.tuples(st.booleans(), VALID_ENTRIES, INVALID_ENTRIES | JUNK_ENTRIES), min_size=1, max_size=6
    )
)
async def test_valid_entries_always_succeed_and_invalid_ones_get_4xx_outcomes(client, entries):
    await client.put("/Patient/v1", json=patient(id="v1"))
    chosen = [valid if use_valid else invalid for use_valid, valid, invalid in entries]
    response = await client.post("/", json=bundle("batch", *chosen))
    assert response.status_code == 200, response.text
    for (use_valid, _, _), answer in zip(entries, response.json()["entry"], strict=True):
        status = int(answer["response"]["status"].split()[0])
        if use_valid:
            assert status < 300, answer
        else:
            assert 400 <= status < 500, answer
            assert answer["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_batch_reference_to_a_created_entry_in_a_later_batch_reads_back(client):
    first = await client.post("/", json=bundle("batch", post(None, patient())))
    reference = location_reference(first.json()["entry"][0])
    second = await client.post("/", json=bundle("batch", post(None, encounter(reference))))
    assert statuses(second) == ["201 Created"]
