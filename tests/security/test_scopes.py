"""SMART scopes on every interaction: read, vread, search (with _include), history, create, update, patch,
delete, operations, and each entry of batches and transactions."""

import pytest

from nphies_facade.server.auth.scopes import ScopeError, narrow, parse_scope

from .conftest import patient


@pytest.fixture
def secure_settings(secure_settings):
    """Referential integrity off: the access-rule cases here refer to people and organizations that only
    their tokens name, and delete what others refer to (tests/integration/test_references_http.py covers
    the references)."""
    return secure_settings.model_copy(update={"referential_integrity": "off"})


LAB = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
VITALS = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}


def observation(obs_id: str, patient_id: str, category: dict = LAB) -> dict:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [{"coding": [category]}],
        "code": {"text": "glucose"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def task(task_id: str, patient_id: str) -> dict:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{patient_id}"},
    }


@pytest.fixture
async def admin(as_token):
    async with as_token("system/*.cruds") as client:
        yield client


@pytest.fixture
async def two_patients(admin):
    for body in (
        patient("a", family="Alpha"),
        patient("b", family="Beta"),
        observation("obs-a", "a"),
        observation("obs-b", "b"),
        observation("vit-a", "a", VITALS),
        task("task-a", "a"),
        task("task-b", "b"),
    ):
        response = await admin.put(f"/{body['resourceType']}/{body['id']}", json=body)
        assert response.status_code == 201, response.text


def ids(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}


def rule_of(response) -> str:
    return response.json()["issue"][0]["diagnostics"]


def test_scope_grammar_v1_and_v2():
    assert parse_scope("patient/Patient.read").permissions == frozenset("rs")
    assert parse_scope("user/Claim.write").permissions == frozenset("cud")
    assert parse_scope("system/*.*").permissions == frozenset("cruds")
    scope = parse_scope("patient/Observation.rs?category=laboratory")
    assert scope.restrictions == (("category", "laboratory"),) and scope.conditional
    assert parse_scope("openid") is None and parse_scope("launch/patient") is None
    for bad in ("patient/Patient.sr", "user/Claim.xyz", "system/patient.read"):
        with pytest.raises(ScopeError):
            parse_scope(bad)
    assert narrow(["system/Patient.rs", "system/Claim.d"], ["system/*.rs"]) == ["system/Patient.rs"]


async def test_patient_scope_reads_only_the_token_patient(two_patients, as_token):
    async with as_token("patient/*.rs", patient="Patient/a") as app:
        assert (await app.get("/Patient/a")).status_code == 200
        other = await app.get("/Patient/b")
        assert other.status_code == 404 and rule_of(other) == "Patient/b is not known"
        assert "Beta" not in other.text
        assert (await app.get("/Observation/obs-a/_history/1")).status_code == 200
        assert (await app.get("/Observation/obs-b/_history/1")).status_code == 404
        assert (await app.get("/Task/task-a")).status_code == 200  # in the compartment through Task.for
        assert (await app.get("/Task/task-b")).status_code == 404
        assert ids((await app.get("/Observation")).json()) == {"obs-a", "vit-a"}
        assert ids((await app.get("/Patient")).json()) == {"a"}
        history = (await app.get("/Observation/_history")).json()
        assert ids(history) == {"obs-a", "vit-a"}
        assert ids((await app.get("/_history")).json()) == {"a", "obs-a", "vit-a", "task-a"}


async def test_included_resources_are_filtered_too(two_patients, as_token):
    async with as_token("system/Observation.rs") as app:
        bundle = (await app.get("/Observation", params={"_include": "Observation:subject"})).json()
        assert ids(bundle) == {"obs-a", "obs-b", "vit-a"}
    async with as_token("system/Observation.rs system/Patient.rs") as app:
        bundle = (await app.get("/Observation", params={"_include": "Observation:subject"})).json()
        assert {"a", "b"} <= ids(bundle)


async def test_each_write_needs_its_own_permission(two_patients, as_token):
    async with as_token("system/Patient.rs") as reader:
        assert (await reader.post("/Patient", json=patient())).status_code == 403
        assert (await reader.put("/Patient/a", json=patient("a"))).status_code == 403
        ops = [{"op": "replace", "path": "/active", "value": True}]
        patched = await reader.patch(
            "/Patient/a", json=ops, headers={"Content-Type": "application/json-patch+json"}
        )
        assert patched.status_code == 403
        assert (await reader.delete("/Patient/a")).status_code == 403
        assert (await reader.get("/Patient/a")).status_code == 200
    async with as_token("system/Patient.c") as creator:
        assert (await creator.post("/Patient", json=patient())).status_code == 201
        assert (await creator.get("/Patient/a")).status_code == 403
        assert (await creator.get("/Patient")).status_code == 403
    async with as_token("system/Patient.write") as v1_writer:
        assert (await v1_writer.put("/Patient/a", json=patient("a", family="Renamed"))).status_code == 200
        assert (await v1_writer.delete("/Patient/b")).status_code == 204
        assert (await v1_writer.get("/Patient/a/_history")).status_code == 403


async def test_patient_scope_cannot_write_into_another_patients_compartment(two_patients, as_token):
    async with as_token("patient/Observation.cruds", patient="Patient/a") as app:
        assert (await app.post("/Observation", json=observation("new", "a"))).status_code == 201
        assert (await app.post("/Observation", json=observation("new", "b"))).status_code == 403
        moved = await app.put("/Observation/obs-a", json=observation("obs-a", "b"))
        assert moved.status_code == 403
        # Another patient's resource is answered as not found (its id is taken, so no create either).
        assert (await app.put("/Observation/obs-b", json=observation("obs-b", "a"))).status_code == 404
        assert (await app.delete("/Observation/obs-b")).status_code == 404


async def test_query_restricted_scopes_admit_only_matching_resources(two_patients, as_token):
    async with as_token("system/Observation.rs?category=laboratory") as app:
        assert (await app.get("/Observation/obs-a")).status_code == 200
        vitals = await app.get("/Observation/vit-a")
        assert vitals.status_code == 404 and rule_of(vitals) == "Observation/vit-a is not known"
        assert ids((await app.get("/Observation")).json()) == {"obs-a", "obs-b"}


async def test_batch_entries_are_authorised_one_by_one(two_patients, as_token):
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/a"}},
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Observation/obs-a"}},
        ],
    }
    async with as_token("system/Patient.rs") as app:
        response = await app.post("/", json=batch)
    assert response.status_code == 200
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses[0].startswith("200") and statuses[1].startswith("403") and statuses[2].startswith("403")


async def test_a_transaction_with_one_forbidden_entry_fails_whole(two_patients, as_token, admin):
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": patient(family="Gamma"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": observation("tx-obs", "b"),
                "request": {"method": "PUT", "url": "Observation/tx-obs"},
            },
        ],
    }
    async with as_token("patient/*.cruds", patient="Patient/a") as app:
        response = await app.post("/", json=transaction)
    assert response.status_code == 403, response.text
    assert (await admin.get("/Observation/tx-obs")).status_code == 404
    assert ids((await admin.get("/Patient", params={"family": "Gamma"})).json()) == set()


async def test_system_wide_interactions_need_a_wildcard_scope(two_patients, as_token):
    async with as_token("system/Patient.rs") as app:
        assert (await app.get("/_history")).status_code == 403
        assert (await app.get("/$reindex")).status_code == 403


async def test_the_audit_trail_needs_an_explicit_scope_or_the_auditor_role(two_patients, as_token):
    async with as_token("system/*.cruds") as app:
        assert (await app.get("/AuditEvent")).status_code == 403
        assert (await app.get("/AuditEvent/1")).status_code == 403
    async with as_token("system/AuditEvent.rs") as app:
        assert (await app.get("/AuditEvent")).status_code == 200
        assert (await app.get("/AuditEvent/1")).status_code == 200
    async with as_token("", role="auditor") as app:
        assert (await app.get("/AuditEvent", params={"_count": "1"})).status_code == 200
    async with as_token("system/AuditEvent.cruds") as app:
        event = {
            "resourceType": "AuditEvent",
            "type": {"code": "rest"},
            "recorded": "2026-01-01T00:00:00Z",
            "agent": [{"requestor": True}],
            "source": {"observer": {"display": "x"}},
        }
        refused = await app.post("/AuditEvent", json=event)
        assert refused.status_code == 403 and "audit-append-only" in rule_of(refused)
