"""POST / with other Bundles and bad envelopes: limits, message/document/collection, wrong types."""

from .conftest import example, requires_shared
from .test_bundles_transaction import bundle, module_app_fixtures, patient, post, request

app, client = module_app_fixtures(max_bundle_entries=5, max_body_bytes=4096)


async def test_too_many_entries_is_413(client):
    response = await client.post("/", json=bundle("batch", *[request("GET", "Patient/x")] * 6))
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert (
        await client.post("/", json=bundle("batch", *[request("GET", "Patient/x")] * 5))
    ).status_code == 200


async def test_body_over_max_body_bytes_is_413(client):
    big = patient(text={"status": "generated", "div": f"<div>{'x' * 5000}</div>"})
    assert (await client.post("/", json=bundle("transaction", post(None, big)))).status_code == 413


@requires_shared()
async def test_message_bundle_is_refused_with_a_pointer_to_process_message(client):
    response = await client.post("/", json=example("Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json"))
    assert response.status_code in (400, 413)
    small = {"resourceType": "Bundle", "type": "message", "entry": []}
    response = await client.post("/", json=small)
    assert response.status_code == 400
    assert "$process-message" in response.json()["issue"][0]["diagnostics"]


COMPOSITION = {
    "resourceType": "Composition",
    "status": "final",
    "type": {"text": "summary"},
    "date": "2024-05-01",
    "author": [{"display": "Dr A"}],
    "title": "Summary",
}


async def test_document_and_collection_bundles_are_stored(client):
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": patient()}],
    }
    # A document has an identifier and a timestamp, and starts with its Composition (bdl-9, 10, 11).
    document = {
        "resourceType": "Bundle",
        "type": "document",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
        },
        "timestamp": "2024-05-01T10:00:00Z",
        "entry": [
            {"fullUrl": "urn:uuid:2", "resource": COMPOSITION},
            {"fullUrl": "urn:uuid:1", "resource": patient()},
        ],
    }
    for body, first in ((collection, "Patient"), (document, "Composition")):
        response = await client.post("/", json=body)
        assert response.status_code == 201, response.text
        assert response.headers["location"].startswith("http://fhir.test/Bundle/")
        stored = (await client.get(f"/Bundle/{response.json()['id']}")).json()
        assert stored["type"] == body["type"] and stored["entry"][0]["resource"]["resourceType"] == first


async def test_a_document_bundle_without_its_identifier_is_refused(client):
    body = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": patient()}],
    }
    response = await client.post("/", json=body)
    assert response.status_code == 400, response.text
    keys = {
        issue["diagnostics"].split()[1] for issue in response.json()["issue"] if issue["code"] == "invariant"
    }
    assert {"bdl-9", "bdl-10"} <= keys
    not_first = {
        **body,
        "identifier": {"system": "urn:x", "value": "d1"},
        "timestamp": "2024-05-01T10:00:00Z",
    }
    response = await client.post("/", json=not_first)
    assert response.status_code == 400, response.text
    assert "Invariant bdl-11 " in response.json()["issue"][0]["diagnostics"]


async def test_wrong_bundle_type_or_not_a_bundle_is_400(client):
    for body in (
        {"resourceType": "Bundle", "type": "nonsense"},
        {"resourceType": "Bundle"},
        {"resourceType": "Bundle", "type": "batch", "entry": {}},
        patient(),
        [1, 2],
    ):
        response = await client.post("/", json=body)
        assert response.status_code == 400, body
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_bundle_envelope_is_validated(client):
    response = await client.post("/", json={**bundle("batch"), "timestamp": "yesterday"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.timestamp"]


async def test_empty_batch_and_transaction_answer_empty_bundles(client):
    for kind in ("batch", "transaction"):
        response = await client.post("/", json=bundle(kind))
        assert response.status_code == 200 and "entry" not in response.json()
        assert response.json()["type"] == f"{kind}-response"


async def test_capability_statement_lists_transaction_and_batch(client):
    interactions = (await client.get("/metadata")).json()["rest"][0]["interaction"]
    assert {"code": "transaction"} in interactions and {"code": "batch"} in interactions


async def test_non_json_content_type_is_415(client):
    response = await client.post("/", content=b"<Bundle/>", headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 415
