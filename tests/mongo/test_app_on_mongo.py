"""The server on the MongoDB store (NPHIES_FACADE_MONGODB_URL set), over the in-process stand-in."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nphies_facade.resources.mongo import store as mongo_store
from nphies_facade.resources.mongo.store import MongoStore
from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

from .fake_client import FakeMongoClient

FHIR_JSON = "application/fhir+json"
NID = "http://nphies.sa/identifier/nationalid"


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    server = FakeMongoClient()
    monkeypatch.setattr(mongo_store, "connect", lambda url: server)
    settings = Settings(
        data_dir=tmp_path / "data",
        base_url="http://fhir.test",
        auth="off",
        mongodb_url="mongodb://db.test/?replicaSet=rs0",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.store, MongoStore)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        async with httpx.AsyncClient(transport=transport, base_url="http://fhir.test", headers=headers) as c:
            yield c


def _patient(national_id: str) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NID, "value": national_id}],
        "gender": "female",
    }


async def test_crud_history_and_search_work_on_mongodb(client):
    created = await client.post("/Patient", json=_patient("1000000001"))
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    read = await client.get(f"/Patient/{pid}")
    assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
    updated = await client.put(
        f"/Patient/{pid}", json={**_patient("1000000001"), "id": pid, "gender": "male"}
    )
    assert updated.status_code == 200
    history = await client.get(f"/Patient/{pid}/_history")
    assert [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]] == ["2", "1"]
    found = await client.get("/Patient", params={"gender": "male", "_total": "accurate"})
    assert found.json()["total"] == 1
    again = await client.post(
        "/Patient", json=_patient("1000000001"), headers={"If-None-Exist": f"identifier={NID}|1000000001"}
    )
    assert again.status_code == 200 and again.json()["id"] == pid
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    assert (await client.get(f"/Patient/{pid}")).status_code == 410


async def test_readiness_reports_the_mongodb_store(client):
    assert (await client.get("/readyz")).status_code == 200


async def test_a_transaction_bundle_commits_all_or_nothing_on_mongodb(client):
    entry = {"resource": _patient("1000000002"), "request": {"method": "POST", "url": "Patient"}}
    bad = {
        "resource": {"resourceType": "Patient", "id": "x1"},
        "request": {"method": "PUT", "url": "Patient/x1", "ifMatch": 'W/"9"'},
    }
    refused = await client.post(
        "/", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry, bad]}
    )
    assert refused.status_code == 412
    assert (await client.get("/Patient", params={"identifier": "1000000002"})).json().get("entry", []) == []
    done = await client.post("/", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert done.status_code == 200, done.text
    assert len((await client.get("/Patient", params={"identifier": "1000000002"})).json()["entry"]) == 1
