"""SearchParameter resources: active once stored (in every server process), existing resources reindexed
in the background, `$reindex` started and reported, listed in the CapabilityStatement, kept over restarts."""

import httpx

from nphies_facade.server.app import create_app

from .search_support import SYSTEM, close_service, ids, open_service

NID = "http://nphies.sa/identifier/nationalid"
FHIR_JSON = "application/fhir+json"
URL = "http://nphies.sa/fhir/SearchParameter/patient-national-id"
STRICT = {"Prefer": "handling=strict"}


def national_id_parameter(**changes) -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": URL,
        "name": "NationalId",
        "status": "active",
        "description": "A patient's national id",
        "code": "national-id",
        "base": ["Patient"],
        "type": "token",
        "expression": f"Patient.identifier.where(system = '{NID}')",
        **changes,
    }


def patient(nid: str, system: str = NID) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": system, "value": nid}]}


async def _reindexed(app) -> None:
    await app.state.service.searching.reindexer.wait()


async def test_a_posted_search_parameter_reindexes_existing_resources(app, client):
    before = (await client.post("/Patient", json=patient("1111111111"))).json()["id"]
    await client.post("/Patient", json=patient("1111111111", "urn:other"))
    assert (await client.get("/Patient?national-id=1111111111", headers=STRICT)).status_code == 400
    created = await client.post("/SearchParameter", json=national_id_parameter())
    assert created.status_code == 201
    await _reindexed(app)
    after = (await client.post("/Patient", json=patient("1111111111"))).json()["id"]
    found = (await client.get("/Patient?national-id=1111111111", headers=STRICT)).json()
    assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted([before, after])
    jobs = (await client.get("/$reindex")).json()
    assert jobs["resourceType"] == "Parameters"
    status = {p["name"]: p.get("valueCode") for p in jobs["parameter"][0]["part"]}
    assert status["status"] == "completed"


async def test_the_capability_statement_lists_search_parameters_with_their_definitions(app, client):
    await client.post("/SearchParameter", json=national_id_parameter())
    statement = (await client.get("/metadata")).json()
    rest = statement["rest"][0]
    patient_entry = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {"code": "search-type"} in patient_entry["interaction"]
    params = {p["name"]: p for p in patient_entry["searchParam"]}
    assert params["national-id"]["definition"] == URL
    assert params["birthdate"]["definition"] == "http://hl7.org/fhir/SearchParameter/individual-birthdate"
    assert "Patient:general-practitioner" in patient_entry["searchInclude"]
    assert "Task:patient" in patient_entry["searchRevInclude"]
    assert {"code": "search-system"} in rest["interaction"]
    assert any(op["name"] == "reindex" for op in rest["operation"])
    task_params = {p["name"] for p in next(r for r in rest["resource"] if r["type"] == "Task")["searchParam"]}
    assert {
        "owner",
        "status",
        "code",
        "focus",
        "patient",
        "business-status",
        "authored-on",
        "period",
        "part-of",
    } <= task_params


async def test_unusable_active_parameters_are_refused_and_drafts_stay_inactive(app, client):
    bad = await client.post(
        "/SearchParameter", json=national_id_parameter(expression="Patient.identifier.((")
    )
    assert bad.status_code == 400
    no_base = await client.post("/SearchParameter", json=national_id_parameter(base=[]))
    assert no_base.status_code in (400, 422)
    draft = await client.post("/SearchParameter", json=national_id_parameter(status="draft"))
    assert draft.status_code == 201
    assert (await client.get("/Patient?national-id=1", headers=STRICT)).status_code == 400


async def test_changing_and_deleting_a_parameter_changes_what_is_indexed(app, client):
    await client.post("/Patient", json=patient("2222222222"))
    await client.post("/Patient", json=patient("3333333333", "urn:other"))
    sp = (await client.post("/SearchParameter", json=national_id_parameter())).json()
    await _reindexed(app)
    assert "entry" not in (await client.get("/Patient?national-id=3333333333")).json()
    changed = {**sp, "expression": "Patient.identifier.where(system = 'urn:other')"}
    assert (await client.put(f"/SearchParameter/{sp['id']}", json=changed)).status_code == 200
    await _reindexed(app)
    found = (await client.get("/Patient?national-id=3333333333", headers=STRICT)).json()
    assert len(found["entry"]) == 1
    assert (await client.delete(f"/SearchParameter/{sp['id']}")).status_code == 204
    await _reindexed(app)
    assert (await client.get("/Patient?national-id=3333333333", headers=STRICT)).status_code == 400


async def test_reindex_can_be_started_per_type(app, client):
    await client.post("/Patient", json=patient("4444444444"))
    started = await client.post("/Patient/$reindex")
    assert started.status_code == 200
    parts = {p["name"]: p for p in started.json()["parameter"][0]["part"]}
    assert parts["type"]["valueCode"] == "Patient"
    await _reindexed(app)
    report = (await client.get("/Patient/$reindex")).json()
    done = {p["name"]: p for p in report["parameter"][-1]["part"]}
    assert done["status"]["valueCode"] == "completed" and done["processed"]["valueInteger"] == 1
    assert (await client.post("/Nope/$reindex")).status_code == 404


async def test_stored_parameters_are_active_again_after_a_restart(settings):
    async def run(step):
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://fhir.test", headers=headers
            ) as c:
                return await step(app, c)

    async def first(app, c):
        await c.post("/Patient", json=patient("5555555555"))
        await c.post("/SearchParameter", json=national_id_parameter())
        await _reindexed(app)

    async def second(app, c):
        return await c.get("/Patient?national-id=5555555555", headers=STRICT)

    await run(first)
    response = await run(second)
    assert response.status_code == 200 and len(response.json()["entry"]) == 1


async def test_a_parameter_added_in_one_process_is_used_by_the_others(tmp_path):
    one, other = await open_service(tmp_path), await open_service(tmp_path)
    try:
        await other.create(SYSTEM, patient("7777777777"))  # `other` has looked at the parameters already
        await one.create(SYSTEM, national_id_parameter())
        await one.searching.reindexer.wait()
        written = await other.create(SYSTEM, patient("6666666666"))
        assert await ids(one, "Patient", "national-id=6666666666") == [written.version.id]
        assert await ids(other, "Patient", "national-id=6666666666") == [written.version.id]
    finally:
        await close_service(other)
        await close_service(one)
