"""The REST interactions on `[type]` and `[type]/[id]` go straight to their handlers
(server/fast_routes.py), with the answers the route table gives; routes that name a type keep their
requests."""

import pytest
from fastapi import APIRouter

from nphies_facade.server.fast_routes import claimed_segments

NID = "http://nphies.sa/identifier/nationalid"


@pytest.fixture
def routed(app) -> list[str]:
    """The paths of the requests that reached FastAPI's route table."""
    seen: list[str] = []
    inner = app.router.middleware_stack

    async def counting(scope, receive, send):
        seen.append(scope["path"])
        await inner(scope, receive, send)

    app.router.middleware_stack = counting
    yield seen
    app.router.middleware_stack = inner


async def _patient(client) -> str:
    resource = {"resourceType": "Patient", "identifier": [{"system": NID, "value": "1234567890"}]}
    response = await client.post("/Patient", json=resource)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_search_and_read_are_answered_without_the_route_table(client, routed):
    pid = await _patient(client)
    found = await client.get("/Patient", params={"identifier": f"{NID}|1234567890"})
    read = await client.get(f"/Patient/{pid}")
    assert routed == []
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]
    assert found.headers["content-type"].startswith("application/fhir+json")
    assert read.status_code == 200 and read.json()["id"] == pid
    assert read.headers["etag"] == 'W/"1"'
    assert read.headers["x-content-type-options"] == "nosniff"  # the outer middleware still runs
    unchanged = await client.get(f"/Patient/{pid}", headers={"If-None-Match": 'W/"1"'})
    assert unchanged.status_code == 304


async def test_errors_on_the_fast_path_are_operation_outcomes(client, routed):
    pid = await _patient(client)
    missing = await client.get("/Patient/not-there")
    strict = await client.get("/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=strict"})
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    gone = await client.get(f"/Patient/{pid}")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert strict.status_code == 400 and strict.json()["issue"][0]["code"] == "not-supported"
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"
    assert routed == []


async def test_writes_are_answered_without_the_route_table(client, routed):
    pid = await _patient(client)
    updated = await client.put(
        f"/Patient/{pid}",
        json={"resourceType": "Patient", "id": pid, "active": True},
        headers={"If-Match": 'W/"1"', "Prefer": "return=minimal"},
    )
    stale = await client.put(
        f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers={"If-Match": 'W/"1"'}
    )
    patched = await client.patch(
        f"/Patient/{pid}",
        content=b'[{"op": "replace", "path": "/active", "value": false}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    wrong_type = await client.post("/Patient", content=b"<Patient/>", headers={"Content-Type": "text/xml"})
    deleted = await client.delete(f"/Patient/{pid}")
    assert routed == []
    assert updated.status_code == 200 and updated.content == b""
    assert updated.headers["etag"] == 'W/"2"'
    assert updated.headers["location"].endswith(f"/Patient/{pid}/_history/2")
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert wrong_type.status_code == 415 and wrong_type.json()["resourceType"] == "OperationOutcome"
    assert deleted.status_code == 204


async def test_an_unexpected_error_on_the_fast_path_is_a_500_outcome(app, client, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.state.service, "search", broken)
    response = await client.get("/Patient")
    assert response.status_code == 500
    assert response.json()["issue"][0]["code"] == "exception"
    assert "boom" not in response.text


async def test_other_shapes_and_types_named_by_routes_take_the_route_table(client, routed):
    assert (await client.get("/NoSuchType")).status_code == 404
    assert (await client.get("/Patient/_history")).status_code == 200
    assert (await client.get("/AuditEvent")).status_code == 200
    assert (await client.get("/metadata")).status_code == 200
    assert (await client.post("/Patient/_search")).status_code == 200
    assert (await client.post("/Patient/123")).status_code == 405
    assert routed == [
        "/NoSuchType",
        "/Patient/_history",
        "/AuditEvent",
        "/metadata",
        "/Patient/_search",
        "/Patient/123",
    ]


def test_types_with_routes_of_their_own_are_left_to_the_route_table(app):
    claimed = claimed_segments(app.routes)
    assert {"AuditEvent", "metadata", "_history", "_simulator"} <= claimed
    assert not {"Patient", "Claim", "Task", "Subscription"} & claimed  # their own routes are longer
    assert {"_search", "auth", "$reindex"} <= claimed_segments(app.routes, "POST")
    assert "AuditEvent" not in claimed_segments(app.routes, "POST")  # POST /AuditEvent is the create route


def test_a_generic_route_of_another_handler_turns_the_fast_path_off(app):
    router = APIRouter()

    @router.get("/{anything}")
    async def other() -> None:
        return None

    assert claimed_segments([*app.routes, *router.routes]) is None
    assert claimed_segments([*app.routes, *router.routes], "PUT") is not None


def test_a_generic_write_route_of_another_handler_turns_the_fast_path_off_for_its_method(app):
    router = APIRouter()

    @router.put("/{a}/{b}")
    async def other() -> None:
        return None

    assert claimed_segments([*app.routes, *router.routes], "PUT") is None
    assert claimed_segments([*app.routes, *router.routes], "POST") is not None


def test_a_route_whose_second_segment_could_be_an_id_turns_the_fast_path_off(app):
    router = APIRouter()

    @router.post("/{resource_type}/validate")
    async def other() -> None:
        return None

    assert claimed_segments([*app.routes, *router.routes], "POST") is None
