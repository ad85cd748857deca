"""Transaction Bundles at POST /: all or nothing, FHIR's processing order, references rewritten."""

import asyncio
import base64
import json
from pathlib import Path

import httpx
import orjson
import pytest

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

from .conftest import FHIR_JSON, example, requires_shared

FIXTURES = Path(__file__).parent / "fixtures"
NID = "http://nphies.sa/identifier/nationalid"


def module_app_fixtures(**settings) -> tuple:
    """`app` and `client` shared by a module's tests (one app start-up per module keeps these tests fast);
    the tests use their own ids and compare counts before and after, so they do not disturb each other."""

    @pytest.fixture(scope="module", name="app")
    async def module_app(tmp_path_factory):
        options = {"base_url": "http://fhir.test", **settings}
        application = create_app(Settings(data_dir=tmp_path_factory.mktemp("bundles"), **options))
        async with application.router.lifespan_context(application):
            yield application

    @pytest.fixture(scope="module", name="client")
    async def module_client(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        async with httpx.AsyncClient(transport=transport, base_url="http://fhir.test", headers=headers) as c:
            yield c

    return module_app, module_client


app, client = module_app_fixtures()


def patient(national_id: str | None = None, **extra) -> dict:
    body: dict = {"resourceType": "Patient", "name": [{"family": "Alharbi", "given": ["Sara"]}], **extra}
    if national_id:
        body["identifier"] = [{"system": NID, "value": national_id}]
    return body


def encounter(subject: str) -> dict:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": subject},
    }


def post(full_url: str | None, resource: dict, **request) -> dict:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    return {"fullUrl": full_url, **entry} if full_url else entry


def put(url: str, resource: dict, full_url: str | None = None, **request) -> dict:
    entry = {"resource": resource, "request": {"method": "PUT", "url": url, **request}}
    return {"fullUrl": full_url, **entry} if full_url else entry


def request(method: str, url: str, **extra) -> dict:
    return {"request": {"method": method, "url": url, **extra}}


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def statuses(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [entry["response"]["status"] for entry in response.json()["entry"]]


def location_reference(entry: dict) -> str:
    """`Patient/abc` from a response entry's location."""
    return "/".join(entry["response"]["location"].split("/")[-4:-2])


async def history_size(client) -> int:
    return len((await client.get("/_history?_count=1000")).json()["entry"])


async def outbox_size(app) -> int:
    return len(await app.state.store.outbox_after(0, limit=10_000))


async def test_transaction_creates_and_rewrites_urn_uuid_references(client, app):
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            post("urn:uuid:e1", encounter("urn:uuid:p1")),
            post("urn:uuid:p1", patient("3000000001")),
        ),
    )
    assert statuses(response) == ["201 Created", "201 Created"]
    answer = response.json()
    assert answer["type"] == "transaction-response"
    encounter_ref, patient_ref = (location_reference(e) for e in answer["entry"])
    stored = (await client.get(f"/{encounter_ref}")).json()
    assert stored["subject"]["reference"] == patient_ref
    assert (await client.get(f"/{patient_ref}")).status_code == 200
    assert await outbox_size(app) == 2


async def test_emr_encounter_bundle_reads_back_with_every_reference_rewritten(client):
    """An EMR-style bundle built from the NPHIES outpatient prior-auth sample (tests/fixtures/README.md)."""
    posted = json.loads((FIXTURES / "bundle-encounter-transaction.json").read_text())
    response = await client.post("/", json=posted)
    assert statuses(response) == ["201 Created"] * len(posted["entry"])
    assigned = {
        entry["fullUrl"]: location_reference(answer)
        for entry, answer in zip(posted["entry"], response.json()["entry"], strict=True)
    }
    for reference in assigned.values():
        stored = await client.get(f"/{reference}")
        assert stored.status_code == 200
        assert b"urn:uuid:" not in stored.content
        for target in _references(stored.json()):
            assert target in assigned.values()
            assert (await client.get(f"/{target}")).status_code == 200
    claim = (await client.get(f"/{next(r for r in assigned.values() if r.startswith('Claim/'))}")).json()
    patient_url = next(e["fullUrl"] for e in posted["entry"] if e["resource"]["resourceType"] == "Patient")
    assert claim["patient"]["reference"] == assigned[patient_url]
    assert claim["extension"][0]["valueReference"]["reference"].startswith("Encounter/")


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


async def test_emr_bundle_posted_twice_reuses_the_patient_through_if_none_exist(client):
    posted = json.loads((FIXTURES / "bundle-encounter-transaction.json").read_text())
    first = (await client.post("/", json=posted)).json()
    second = await client.post("/", json=posted)
    index = next(i for i, e in enumerate(posted["entry"]) if e["resource"]["resourceType"] == "Patient")
    assert statuses(second)[index] == "200 OK"
    assert location_reference(second.json()["entry"][index]) == location_reference(first["entry"][index])
    claim_index = next(i for i, e in enumerate(posted["entry"]) if e["resource"]["resourceType"] == "Claim")
    claim = (await client.get(f"/{location_reference(second.json()['entry'][claim_index])}")).json()
    assert claim["patient"]["reference"] == location_reference(first["entry"][index])


async def _prepare_official_example(client) -> None:
    """Puts in place what the official example acts on: Patient/234, Patient/123a at version 2, a Patient
    with identifier 123456 for the conditional delete, and Patient/12334 at version 4 for the conditional GET."""
    for resource_id, versions in (("234", 1), ("123a", 2), ("12334", 4)):
        for _ in range(versions):
            assert (
                await client.put(f"/Patient/{resource_id}", json=patient(id=resource_id))
            ).status_code < 300
    assert (await client.post("/Patient", json=patient("123456"))).status_code == 201


@requires_shared()
async def test_official_transaction_example_with_supported_entries(client, app):
    """Bundle-bundle-transaction.json less its two entries this server does not support: the POST to
    ValueSet/$lookup (an operation) and the search `GET Patient?name=peter`. The rest runs as published:
    conditional create, update-as-create, conditional update, ifMatch, delete, conditional delete and a GET
    with ifNoneMatch/ifModifiedSince."""
    await _prepare_official_example(client)
    posted = example("Bundle-bundle-transaction.json")
    posted["entry"] = [
        e for e in posted["entry"] if e["request"]["url"] not in ("ValueSet/$lookup", "Patient?name=peter")
    ]
    before = await outbox_size(app)
    response = await client.post("/", json=posted)
    assert statuses(response) == [
        "201 Created",
        "201 Created",
        "201 Created",
        "201 Created",
        "200 OK",
        "204 No Content",
        "204 No Content",
        "304 Not Modified",
    ]
    entries = response.json()["entry"]
    assert entries[2]["response"]["location"].endswith("/Patient/123/_history/1")
    assert entries[4]["response"]["etag"] == 'W/"3"'
    assert (await client.get("/Patient/234")).status_code == 410
    assert "resource" not in entries[7]
    assert await outbox_size(app) == before + 7


@requires_shared()
async def test_official_transaction_example_as_published_fails_at_the_operation_and_writes_nothing(
    client, app
):
    await _prepare_official_example(client)
    before_history, before_outbox = await history_size(client), await outbox_size(app)
    response = await client.post("/", json=example("Bundle-bundle-transaction.json"))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[7]"]
    assert "urn:uuid:79378cb8-8f58-48e8-a5e8-60ac2755b674" in issue["diagnostics"]
    assert await history_size(client) == before_history
    assert await outbox_size(app) == before_outbox


async def test_failing_last_entry_rolls_back_everything(client, app):
    existing = (await client.put("/Patient/keep", json=patient(id="keep"))).json()
    await client.put("/Patient/other", json=patient(id="other"))
    before_history, before_outbox = await history_size(client), await outbox_size(app)
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            post("urn:uuid:p", patient("3000000002")),
            post("urn:uuid:e", encounter("urn:uuid:p")),
            request("DELETE", "Patient/other"),
            put("Patient/keep", {**existing, "gender": "other"}, full_url="urn:uuid:k", ifMatch='W/"7"'),
        ),
    )
    assert response.status_code == 412
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[3]"]
    assert "urn:uuid:k" in outcome["issue"][0]["diagnostics"]
    assert await history_size(client) == before_history
    assert await outbox_size(app) == before_outbox
    assert (await client.get("/Patient/keep")).json()["meta"]["versionId"] == "1"
    assert (await client.get("/Patient/other")).status_code == 200


async def test_invalid_resource_fails_with_its_location_in_the_bundle(client):
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            post("urn:uuid:a", patient()),
            post("urn:uuid:b", {"resourceType": "Patient", "gender": 5}),
        ),
    )
    assert response.status_code == 400
    expressions = [issue["expression"][0] for issue in response.json()["issue"]]
    assert expressions[0] == "Bundle.entry[1]"
    assert "Bundle.entry[1].resource.gender" in expressions


async def test_concurrent_transactions_with_the_same_if_none_exist_create_one_resource(client, app):
    criteria = f"identifier={NID}|3000000003"

    def one(n: int) -> dict:
        return bundle(
            "transaction",
            post("urn:uuid:p", patient("3000000003"), ifNoneExist=criteria),
            post("urn:uuid:e", encounter("urn:uuid:p")),
        )

    responses = await asyncio.gather(*[client.post("/", json=one(n)) for n in range(8)])
    patient_statuses = sorted(statuses(r)[0] for r in responses)
    assert patient_statuses == ["200 OK"] * 7 + ["201 Created"]
    ids = await app.state.service.find_ids("Patient", [("identifier", f"{NID}|3000000003")])
    assert len(ids) == 1
    for response in responses:
        encounter_ref = location_reference(response.json()["entry"][1])
        assert (await client.get(f"/{encounter_ref}")).json()["subject"]["reference"] == f"Patient/{ids[0]}"


async def test_conditional_references_resolve_to_the_single_match(client):
    created = (await client.post("/Patient", json=patient("3000000004"))).json()
    response = await client.post(
        "/", json=bundle("transaction", post(None, encounter(f"Patient?identifier={NID}|3000000004")))
    )
    assert statuses(response) == ["201 Created"]
    assert response.json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{created['id']}"


async def test_conditional_reference_without_exactly_one_match_fails_the_transaction(client):
    missing = await client.post(
        "/", json=bundle("transaction", post(None, encounter("Patient?identifier=none")))
    )
    assert missing.status_code == 404
    assert "Bundle.entry[0].resource.subject.reference" in [
        i["expression"][0] for i in missing.json()["issue"]
    ]
    for _ in range(2):
        await client.post("/Patient", json=patient("3000000005"))
    several = await client.post(
        "/", json=bundle("transaction", post(None, encounter(f"Patient?identifier={NID}|3000000005")))
    )
    assert several.status_code == 412


async def test_reads_in_a_transaction_see_its_writes_and_come_last(client):
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            request("GET", "Patient/t1"),
            request("GET", "Patient/t1/_history/1"),
            put("Patient/t1", patient(id="t1", gender="female")),
        ),
    )
    assert statuses(response) == ["200 OK", "200 OK", "201 Created"]
    read, vread, _ = response.json()["entry"]
    assert read["resource"]["gender"] == "female" and vread["resource"]["meta"]["versionId"] == "1"


async def test_patch_entry_with_json_patch_binary(client):
    await client.put("/Patient/pt", json=patient(id="pt"))
    operations = [{"op": "replace", "path": "/name/0/family", "value": "Alqahtani"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(operations)).decode(),
    }
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            {"resource": binary, "request": {"method": "PATCH", "url": "Patient/pt", "ifMatch": 'W/"1"'}},
        ),
    )
    assert statuses(response) == ["200 OK"]
    assert (await client.get("/Patient/pt")).json()["name"][0]["family"] == "Alqahtani"


async def test_one_outbox_event_per_changed_resource(client, app):
    await client.put("/Patient/o1", json=patient(id="o1"))
    before = await outbox_size(app)
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            post("urn:uuid:a", patient()),
            post("urn:uuid:b", encounter("urn:uuid:a")),
            put("Patient/o1", patient(id="o1", gender="male")),
            request("GET", "Patient/o1"),
        ),
    )
    assert response.status_code == 200
    events = (await app.state.store.outbox_after(0, limit=10_000))[before:]
    assert sorted(e.action for e in events) == ["create", "create", "update"]


async def test_prefer_return_variants_shape_each_entry(client):
    body = bundle("transaction", post("urn:uuid:a", patient()))
    minimal = (await client.post("/", json=body, headers={"Prefer": "return=minimal"})).json()["entry"][0]
    assert "resource" not in minimal and "outcome" not in minimal["response"]
    assert minimal["response"]["etag"] == 'W/"1"' and minimal["response"]["lastModified"]
    full = (await client.post("/", json=body)).json()["entry"][0]
    assert full["resource"]["resourceType"] == "Patient"
    assert full["fullUrl"].startswith("http://fhir.test/Patient/")
    answer = await client.post("/", json=body, headers={"Prefer": "return=OperationOutcome"})
    outcome = answer.json()["entry"][0]
    assert "resource" not in outcome
    assert outcome["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_relative_and_absolute_full_urls_are_resolved(client):
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            post("http://emr.example/fhir/Patient/77", patient()),
            post("http://emr.example/fhir/Encounter/1", encounter("Patient/77")),
            post("Patient/88", patient()),
            post(None, encounter("Patient/88")),
        ),
    )
    answer = response.json()["entry"]
    assert answer[1]["resource"]["subject"]["reference"] == location_reference(answer[0])
    assert answer[3]["resource"]["subject"]["reference"] == location_reference(answer[2])


async def test_narrative_links_to_entries_are_rewritten(client):
    div = '<div xmlns="http://www.w3.org/1999/xhtml">Seen <a href="urn:uuid:p">the patient</a></div>'
    response = await client.post(
        "/",
        json=bundle(
            "transaction",
            post("urn:uuid:p", patient()),
            post(None, {**encounter("urn:uuid:p"), "text": {"status": "generated", "div": div}}),
        ),
    )
    answer = response.json()["entry"]
    assert f'href="{location_reference(answer[0])}"' in answer[1]["resource"]["text"]["div"]


async def test_bad_transactions_are_400_naming_the_entry(client):
    cases = {
        "duplicate fullUrl": bundle(
            "transaction", post("urn:uuid:a", patient()), post("urn:uuid:a", patient())
        ),
        "two writes to one resource": bundle(
            "transaction", put("Patient/d1", patient(id="d1")), request("DELETE", "Patient/d1")
        ),
        "undefined urn:uuid": bundle("transaction", post(None, encounter("urn:uuid:nobody"))),
        "no request": bundle("transaction", {"resource": patient()}),
        "bad method": bundle(
            "transaction", {"resource": patient(), "request": {"method": "FETCH", "url": "x"}}
        ),
        "bad url": bundle("transaction", put("Patient/a/b/c/d/e", patient())),
        "POST to an instance": bundle(
            "transaction", {"resource": patient(), "request": {"method": "POST", "url": "Patient/1"}}
        ),
        "url on another server": bundle("transaction", request("GET", "http://elsewhere.example/Patient/1")),
        "malformed search": bundle("transaction", request("GET", "Patient?birthdate=not-a-date")),
    }
    await client.put("/Patient/d1", json=patient(id="d1"))
    for name, body in cases.items():
        response = await client.post("/", json=body)
        assert response.status_code == 400, name
        issues = response.json()["issue"]
        assert any(i.get("expression", [""])[0].startswith("Bundle.entry[") for i in issues), name
