"""Search is authorised for every type it touches: `_has` sources, chain targets and `_include` /
`_revinclude` types, each with the token's restrictions; a criterion on a type the caller cannot search is
refused (403) and never evaluated; counts count only what the caller may see; batch entries follow the
same rules."""

import pytest

from .conftest import patient
from .test_scopes import LAB, VITALS, ids, observation

HIV = {"system": "http://loinc.org", "code": "75622-1"}
REGION = "urn:nphies-facade:region"


def coded(obs_id: str, patient_id: str, category: dict, code: dict | None = None, region: str | None = None):
    body = observation(obs_id, patient_id, category)
    if code is not None:
        body["code"] = {"coding": [code]}
    if region is not None:
        body["meta"] = {"tag": [{"system": REGION, "code": region}]}
    return body


@pytest.fixture
async def admin(as_token):
    async with as_token("system/*.cruds") as client:
        yield client


@pytest.fixture
async def population(admin):
    """Alpha (female) with a lab result and four vital signs; Beta (male) with an HIV test filed as a vital
    sign (so a laboratory-only token may not see it)."""
    bodies = [
        patient("a", family="Alpha", gender="female"),
        patient("b", family="Beta", gender="male"),
        coded("lab-a", "a", LAB, region="east"),
        *(coded(f"vit-a{n}", "a", VITALS, region="west" if n % 2 else None) for n in range(4)),
        coded("hiv-b", "b", VITALS, HIV, region="west"),
    ]
    for body in bodies:
        response = await admin.put(f"/{body['resourceType']}/{body['id']}", json=body)
        assert response.status_code == 201, response.text


def forbidden(response) -> str:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "forbidden"
    return body["issue"][0]["diagnostics"]


async def test_a_has_criterion_on_a_type_the_token_cannot_search_is_refused(population, as_token):
    async with as_token("system/Patient.rs") as patients_only:
        probe = await patients_only.get("/Patient", params={"_has:Observation:patient:code": "75622-1"})
        assert "search-type on Observation" in forbidden(probe)
    async with as_token("system/Patient.rs system/Observation.rs") as both:
        found = await both.get("/Patient", params={"_has:Observation:patient:code": "75622-1"})
        assert ids(found.json()) == {"b"}


async def test_a_has_criterion_sees_only_what_the_scope_restriction_admits(population, as_token):
    async with as_token("system/Patient.rs system/Observation.rs?category=laboratory") as lab:
        hidden = await lab.get("/Patient", params={"_has:Observation:patient:code": "75622-1"})
        assert hidden.status_code == 200 and ids(hidden.json()) == set()
        seen = await lab.get("/Patient", params={"_has:Observation:patient:category": "laboratory"})
        assert ids(seen.json()) == {"a"}


async def test_a_chain_to_a_type_the_token_cannot_search_is_refused(population, as_token):
    async with as_token("system/Observation.rs") as observations_only:
        for name, value in (
            ("subject:Patient.name", "Beta"),
            ("subject.name", "Beta"),
            ("patient.birthdate", "1980"),
        ):
            forbidden(await observations_only.get("/Observation", params={name: value}))


async def test_a_chain_sees_only_what_the_scope_restriction_admits(population, as_token):
    async with as_token("system/Observation.rs system/Patient.rs?gender=female") as women:
        probe = await women.get("/Observation", params={"subject:Patient.name": "Beta"})
        assert probe.status_code == 200 and ids(probe.json()) == set()
        own = await women.get(
            "/Observation", params={"subject:Patient.name": "Alpha", "category": "laboratory"}
        )
        assert ids(own.json()) == {"lab-a"}


async def test_a_patient_token_chains_only_within_its_compartment(population, as_token):
    async with as_token("patient/*.rs", patient="Patient/a") as portal:
        mine = await portal.get("/Observation", params={"subject:Patient.name": "Alpha", "code": "75622-1"})
        assert ids(mine.json()) == set()
        other = await portal.get("/Patient", params={"_has:Observation:patient:code": "75622-1"})
        assert ids(other.json()) == set()
        several = await portal.get("/Observation", params={"subject.name": "Alpha"})
        assert "name the target type" in forbidden(several)


async def test_a_criterion_through_a_type_decided_by_attributes_is_refused(population, as_token):
    async with as_token("system/Patient.rs system/Observation.rs", region="east") as regional:
        reason = forbidden(await regional.get("/Patient", params={"_has:Observation:patient:code": "x"}))
        assert "search-reach" in reason


async def test_included_resources_the_token_cannot_see_are_left_out(population, as_token):
    async with as_token("system/Patient.rs") as patients_only:
        bundle = (await patients_only.get("/Patient", params={"_revinclude": "Observation:patient"})).json()
        assert ids(bundle) == {"a", "b"}
    async with as_token("system/Observation.rs system/Patient.rs?gender=female") as women:
        bundle = (await women.get("/Observation", params={"_include": "Observation:subject"})).json()
        assert {"a"} <= ids(bundle) and "b" not in ids(bundle)


async def test_counts_count_only_what_the_token_may_see(population, as_token, admin):
    everything = await admin.get("/Observation", params={"_summary": "count"})
    assert everything.json()["total"] == 6
    async with as_token("system/Observation.rs?category=laboratory") as lab:
        assert (await lab.get("/Observation", params={"_summary": "count"})).json()["total"] == 1
        accurate = await lab.get("/Observation", params={"_total": "accurate", "_count": "0"})
        assert accurate.json()["total"] == 1
    async with as_token("patient/Observation.rs", patient="Patient/b") as portal:
        assert (await portal.get("/Observation", params={"_summary": "count"})).json()["total"] == 1
    async with as_token("system/Observation.rs", region="east") as east:  # east-tagged and untagged
        assert (await east.get("/Observation", params={"_summary": "count"})).json()["total"] == 3


async def test_batch_search_entries_follow_the_same_rules(population, as_token):
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?_has:Observation:patient:code=75622-1"}},
            {"request": {"method": "GET", "url": "Observation?_summary=count"}},
        ],
    }
    async with as_token("system/Patient.rs system/Observation.rs?category=laboratory") as lab:
        answer = (await lab.post("/", json=batch)).json()
    first, second = (entry["resource"] for entry in answer["entry"])
    assert first.get("entry", []) == []
    assert second["total"] == 1
    async with as_token("system/Patient.rs") as patients_only:
        answer = (await patients_only.post("/", json=batch)).json()
    assert [e["response"]["status"][:3] for e in answer["entry"]] == ["403", "403"]
