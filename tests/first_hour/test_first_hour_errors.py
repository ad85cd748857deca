"""Every route error answers a FHIR OperationOutcome (never Starlette's plain text), and empty Bundles carry
no empty `entry` array."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

FHIR_JSON = "application/fhir+json"


def assert_outcome(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"]
    if code is not None:
        assert outcome["issue"][0]["code"] == code
    return outcome["issue"][0]


async def test_an_unknown_route_is_a_404_outcome_naming_the_path(client):
    issue = assert_outcome(await client.get("/nothing/here/at/all?name=secret"), 404, "not-found")
    assert "/nothing/here/at/all" in issue["diagnostics"] and "secret" not in issue["diagnostics"]


async def test_an_unknown_resource_type_is_a_404_outcome(client):
    issue = assert_outcome(await client.get("/Spaceship/1"), 404, "not-found")
    assert "Spaceship" in issue["diagnostics"]


async def test_a_wrong_method_is_a_405_outcome_with_every_allowed_method(client):
    response = await client.put("/", json={"resourceType": "Bundle", "type": "batch"})
    issue = assert_outcome(response, 405, "not-supported")
    assert response.headers["allow"] == "GET, POST"
    assert issue["diagnostics"] == "PUT is not allowed on /; it takes GET, POST"


async def test_a_wrong_method_on_an_operation_is_a_405_outcome(client):
    response = await client.get("/Coverage/c1/$eligibility")
    assert_outcome(response, 405, "not-supported")
    assert response.headers["allow"] == "POST"


async def test_an_unknown_operation_is_a_404_outcome_naming_it(client):
    issue = assert_outcome(await client.post("/Patient/p1/$teleport", json={}), 404, "not-supported")
    assert "$teleport" in issue["diagnostics"]


async def test_an_unsupported_media_type_is_a_415_outcome(client):
    response = await client.post(
        "/Patient", content=b"<Patient/>", headers={"Content-Type": "application/xml"}
    )
    assert_outcome(response, 415, "not-supported")
    bundle = await client.post("/", content=b"x", headers={"Content-Type": "text/plain"})
    assert_outcome(bundle, 415, "not-supported")


async def test_an_unacceptable_format_is_a_406_outcome(client):
    assert_outcome(await client.get("/Patient", headers={"Accept": "application/fhir+xml"}), 406)
    assert_outcome(await client.get("/Patient?_format=xml"), 406)


async def test_too_deep_json_is_a_400_outcome(client):
    deep = b'{"resourceType":"Patient","extension":' + b"[" * 200 + b"]" * 200 + b"}"
    assert_outcome(await client.post("/Patient", content=deep), 400, "structure")


@asynccontextmanager
async def client_of(tmp_path, **settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with `settings` besides the usual test ones."""
    app = create_app(Settings(data_dir=tmp_path, base_url="http://fhir.test", **{"auth": "off", **settings}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://fhir.test") as c:
            yield c


@pytest.fixture
async def small_body_client(tmp_path):
    async with client_of(tmp_path, max_body_bytes=2048) as c:
        yield c


async def test_a_too_large_body_is_a_413_outcome_whatever_its_type(small_body_client):
    big = b'{"resourceType":"Patient","gender":"' + b"x" * 4096 + b'"}'
    json_body = await small_body_client.post("/Patient", content=big, headers={"Content-Type": FHIR_JSON})
    assert_outcome(json_body, 413, "too-costly")
    form = await small_body_client.post(
        "/Patient/_search",
        content=b"name=" + b"x" * 4096,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_outcome(form, 413, "too-costly")


async def test_the_embedded_simulator_answers_unknown_paths_with_an_outcome(client):
    assert_outcome(await client.get("/_simulator/nphies/no-such-thing"), 404, "not-found")
    assert_outcome(await client.get("/_simulator/nphies/$process-message"), 405, "not-supported")


@pytest.fixture
async def cors_client(tmp_path):
    async with client_of(tmp_path, cors_origins="https://portal.example") as c:
        yield c


async def test_a_refused_cors_preflight_is_an_outcome(cors_client):
    preflight = {"Access-Control-Request-Method": "GET"}
    refused = await cors_client.options("/Patient", headers={**preflight, "Origin": "https://evil.example"})
    issue = assert_outcome(refused, 400, "security")
    assert "origin" in issue["diagnostics"]
    allowed = await cors_client.options("/Patient", headers={**preflight, "Origin": "https://portal.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example"


async def test_without_a_token_an_unknown_route_is_a_401_outcome(tmp_path):
    async with client_of(tmp_path, auth="on") as c:
        assert_outcome(await c.get("/nothing/here"), 401, "login")


async def test_an_unexpected_failure_is_a_500_outcome_with_the_trace_id(app, client, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom with a secret")

    monkeypatch.setattr(app.state.service, "history", broken)
    issue = assert_outcome(
        await client.get("/_history", headers={"X-Request-Id": "trace-1"}), 500, "exception"
    )
    assert "trace-1" in issue["diagnostics"] and "secret" not in issue["diagnostics"]


async def test_an_empty_searchset_and_history_carry_no_entry_array(client):
    searchset = (await client.get("/Patient?family=Nobody")).json()
    assert searchset["type"] == "searchset" and "entry" not in searchset
    assert searchset["total"] == 0
    history = (await client.get("/Patient/_history")).json()
    assert history["type"] == "history" and "entry" not in history
    created = await client.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "Some"}]})
    assert created.status_code == 201
    assert len((await client.get("/Patient?family=Some")).json()["entry"]) == 1
