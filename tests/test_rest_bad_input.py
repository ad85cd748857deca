"""Bad input always gets an OperationOutcome with the right status, and never a partial write."""

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_rest_crud import PATIENT


def assert_outcome(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"]
    if code:
        assert outcome["issue"][0]["code"] == code
    return outcome


async def system_history_size(client) -> int:
    return len((await client.get("/_history?_count=1000")).json().get("entry", []))


async def test_malformed_json_is_400(client):
    assert_outcome(await client.post("/Patient", content=b'{"resourceType": "Patient",'), 400, "structure")


async def test_empty_body_is_400(client):
    assert_outcome(await client.post("/Patient", content=b""), 400)


async def test_not_a_resource_is_400(client):
    assert_outcome(await client.post("/Patient", content=b"[1, 2]"), 400, "structure")
    assert_outcome(await client.post("/Patient", json={"name": "x"}), 400, "structure")


async def test_wrong_resource_type_is_400(client):
    outcome = assert_outcome(await client.post("/Patient", json={"resourceType": "Organization"}), 400)
    assert outcome["issue"][0]["expression"] == ["resourceType"]


async def test_unsupported_resource_type_in_body_is_400(client):
    assert_outcome(await client.put("/Patient/x", json={"resourceType": "Spaceship", "id": "x"}), 400)


async def test_unknown_resource_type_in_url_is_404(client):
    assert_outcome(await client.get("/Spaceship/1"), 404, "not-found")
    assert_outcome(await client.post("/Spaceship", json={"resourceType": "Spaceship"}), 404)


async def test_validation_errors_list_every_issue_with_location(client):
    body = {"resourceType": "Patient", "gender": 5, "name": [{"family": ["x"]}], "unknownElement": 1}
    outcome = assert_outcome(await client.post("/Patient", json=body), 400)
    locations = {issue["expression"][0] for issue in outcome["issue"]}
    assert {"Patient.gender", "Patient.name[0].family", "Patient.unknownElement"} <= locations


async def test_id_mismatch_is_400(client):
    outcome = assert_outcome(await client.put("/Patient/a", json={**PATIENT, "id": "b"}), 400)
    assert outcome["issue"][0]["expression"] == ["Patient.id"]
    assert_outcome(await client.put("/Patient/a", json=PATIENT), 400)


async def test_invalid_id_is_400(client):
    assert_outcome(await client.put("/Patient/" + "x" * 65, json={**PATIENT, "id": "x" * 65}), 400)


async def test_wrong_content_type_is_415(client):
    response = await client.post(
        "/Patient", content=orjson.dumps(PATIENT), headers={"Content-Type": "text/plain"}
    )
    assert_outcome(response, 415)
    response = await client.post(
        "/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert_outcome(response, 415)


async def test_xml_accept_is_406(client):
    assert_outcome(await client.get("/metadata", headers={"Accept": "application/fhir+xml"}), 406)
    assert_outcome(await client.get("/metadata?_format=xml"), 406)
    assert (await client.get("/metadata?_format=json")).status_code == 200


async def test_body_over_limit_is_413(client, app):
    limit = app.state.settings.max_body_bytes
    big = {**PATIENT, "text": {"status": "generated", "div": "<div>" + "x" * limit + "</div>"}}
    assert_outcome(await client.post("/Patient", json=big), 413, "too-costly")


async def test_deep_nesting_is_400_not_500(client):
    deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_outcome(await client.post("/Patient", content=deep), 400)
    nested = {"resourceType": "Patient", "contained": []}
    inner = nested
    for _ in range(300):
        child = {"resourceType": "Patient", "contained": []}
        inner["contained"].append(child)
        inner = child
    response = await client.post("/Patient", json=nested)
    assert response.status_code in (400, 201)


async def test_failed_writes_leave_nothing(client):
    before = await system_history_size(client)
    await client.post("/Patient", json={"resourceType": "Patient", "gender": 5})
    await client.post("/Patient", content=b"{")
    await client.put("/Patient/a", json={**PATIENT, "id": "b"})
    assert await system_history_size(client) == before


async def test_unknown_route_and_method_are_outcomes(client):
    assert_outcome(await client.get("/Patient/1/2/3/4"), 404)
    assert_outcome(await client.post("/Patient/1"), 405)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
resource_like = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Patient", "Claim", "Task", "Coverage", "Nope", ""])},
    optional={
        "id": json_values,
        "meta": json_values,
        "name": json_values,
        "status": json_values,
        "identifier": json_values,
        "birthDate": json_values,
        "subject": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, resource_like))
async def test_random_json_bodies_never_500(client, body):
    for response in (
        await client.post("/Patient", content=json.dumps(body)),
        await client.put("/Patient/p1", content=json.dumps(body)),
        await client.patch(
            "/Patient/p1", content=json.dumps(body), headers={"Content-Type": "application/json-patch+json"}
        ),
    ):
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.json()["resourceType"] == "OperationOutcome"
