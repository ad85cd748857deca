"""ABAC after scopes: care relationship for practitioners, organization and resource types for billers,
region boundaries; refusals name the rule and leak nothing of the data."""

import json

import pytest

from nphies_facade.server.auth.policy import Policy, PolicyError

from .conftest import patient


@pytest.fixture
def secure_settings(secure_settings):
    """Referential integrity off: the access-rule cases here refer to people and organizations that only
    their tokens name, and delete what others refer to (tests/integration/test_references_http.py covers
    the references)."""
    return secure_settings.model_copy(update={"referential_integrity": "off"})


REGION = "urn:nphies-facade:region"


def encounter(enc_id: str, patient_id: str, practitioner: str, status: str = "in-progress") -> dict:
    return {
        "resourceType": "Encounter",
        "id": enc_id,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"individual": {"reference": practitioner}}],
    }


def claim(claim_id: str, provider: str) -> dict:
    return {
        "resourceType": "Claim",
        "id": claim_id,
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": "2026-01-01",
        "provider": {"reference": provider},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/c1"}}],
    }


@pytest.fixture
async def admin(as_token):
    async with as_token("system/*.cruds") as client:
        yield client


async def put(client, body: dict) -> None:
    response = await client.put(f"/{body['resourceType']}/{body['id']}", json=body)
    assert response.status_code in (200, 201), response.text


async def test_a_practitioner_reads_a_patient_only_with_an_active_encounter(admin, as_token):
    await put(admin, patient("p1", family="Qahtani"))
    await put(admin, patient("p2", family="Otaibi"))
    await put(admin, encounter("e1", "p1", "Practitioner/dr-1"))
    await put(admin, encounter("e2", "p2", "Practitioner/dr-1", status="finished"))
    async with as_token("user/*.rs", role="practitioner", fhirUser="Practitioner/dr-1") as doctor:
        assert (await doctor.get("/Patient/p1")).status_code == 200
        refused = await doctor.get("/Patient/p2")
        assert refused.status_code == 404, "answered like a patient that does not exist (no oracle)"
        assert refused.json()["issue"][0]["diagnostics"] == "Patient/p2 is not known"
        assert "Otaibi" not in refused.text
        found = {e["resource"]["id"] for e in (await doctor.get("/Patient")).json().get("entry", [])}
        assert found == {"p1"}
    async with as_token("user/*.rs", role="practitioner", fhirUser="Practitioner/dr-2") as stranger:
        assert (await stranger.get("/Patient/p1")).status_code == 404
        assert (await stranger.get("/Encounter/e1")).status_code == 404


async def test_a_care_team_membership_is_a_relationship(admin, as_token):
    await put(admin, patient("p3"))
    care_team = {
        "resourceType": "CareTeam",
        "id": "ct1",
        "status": "active",
        "subject": {"reference": "Patient/p3"},
        "participant": [{"member": {"reference": "Practitioner/dr-3"}}],
    }
    await put(admin, care_team)
    async with as_token("user/*.rs", role="practitioner", fhirUser="Practitioner/dr-3") as doctor:
        assert (await doctor.get("/Patient/p3")).status_code == 200


async def test_a_biller_sees_only_financial_resources_of_their_organization(admin, as_token):
    await put(admin, patient("p1"))
    await put(admin, claim("cl-own", "Organization/hosp-1"))
    await put(admin, claim("cl-other", "Organization/hosp-2"))
    async with as_token("user/*.cruds", role="biller", organization="Organization/hosp-1") as biller:
        assert (await biller.get("/Claim/cl-own")).status_code == 200
        other = await biller.get("/Claim/cl-other")
        assert other.status_code == 404 and "biller-own-organization" not in other.text
        clinical = await biller.get("/Patient/p1")
        assert clinical.status_code == 403 and "biller-financial-resources" in clinical.text
        assert (await biller.get("/Patient")).status_code == 403
        found = {e["resource"]["id"] for e in (await biller.get("/Claim")).json().get("entry", [])}
        assert found == {"cl-own"}
        assert (await biller.post("/Claim", json=claim("x", "Organization/hosp-2"))).status_code == 403
        created = await biller.post("/Claim", json=claim("x", "Organization/hosp-1"))
        assert created.status_code == 201


async def test_access_outside_the_token_region_is_refused(admin, as_token):
    tagged = patient("p-east", meta={"tag": [{"system": REGION, "code": "eastern"}]})
    await put(admin, tagged)
    await put(admin, patient("p-untagged"))
    async with as_token("system/*.rs", region="riyadh") as app:
        refused = await app.get("/Patient/p-east")
        assert refused.status_code == 404 and "region-boundary" not in refused.text
        assert (await app.get("/Patient/p-untagged")).status_code == 200
    async with as_token("system/*.rs", region="eastern") as app:
        assert (await app.get("/Patient/p-east")).status_code == 200


def test_policy_files_are_checked_when_loaded(tmp_path):
    assert [r.id for r in Policy.load().rules][0] == "region-boundary"
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"rules": [{"id": "x", "check": "telepathy"}]}))
    with pytest.raises(PolicyError, match="unknown check"):
        Policy.load(bad)
    bad.write_text(json.dumps({"rules": [{"id": "x", "check": "resource-types", "interactions": ["peek"]}]}))
    with pytest.raises(PolicyError, match="unknown interaction"):
        Policy.load(bad)
    yaml_policy = tmp_path / "policy.yaml"
    yaml_policy.write_text("rules:\n  - id: only-claims\n    check: resource-types\n    allow: [Claim]\n")
    assert Policy.load(yaml_policy).rules[0].options["allow"] == frozenset({"Claim"})
