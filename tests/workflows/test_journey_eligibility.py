"""Journey 1 end to end over HTTP: an EMR posts a Patient with Coverage (and Consent); the journey checks
it, asks the sandbox payer, and ends verified, stopped for consent, or with a person deciding."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from nphies_facade.workflows.instances import ESCALATED, HUMAN_SYSTEM, STEP_STATUS_SYSTEM
from nphies_facade.workflows.journeys import synthetic

from .journey_support import Harness, events, journey_server, output, person_tasks, settled, step_of, until

WORKFLOW = "eligibility"


@pytest.fixture(scope="module")
async def served(tmp_path_factory) -> AsyncIterator[Harness]:
    async with journey_server(tmp_path_factory.mktemp("eligibility") / "data") as running:
        yield running


def _turnarounds() -> float:
    return REGISTRY.get_sample_value("nphies_eligibility_turnaround_seconds_count") or 0.0


async def test_a_registered_patient_with_consent_is_verified_eligible(served: Harness):
    measured = _turnarounds()
    registration = served.registration()
    await served.post(registration.resources())
    task = await settled(served, WORKFLOW, registration.patient)
    assert (task["status"], step_of(task)) == ("completed", "verified")
    assert output(task, "eligibility") == "eligible"
    response = (await served.client.get(f"/{output(task, 'eligibility-response')['reference']}")).json()
    assert response["resourceType"] == "CoverageEligibilityResponse" and response["outcome"] == "complete"
    assert await events(served.client, "patient.registered", registration.patient)
    verified = await events(served.client, "eligibility.verified", registration.patient)
    assert len(verified) == 1
    assert _turnarounds() == measured + 1


async def test_without_consent_the_journey_stops_before_asking_the_payer(served: Harness):
    registration = served.registration(consent=False)
    await served.post(registration.resources())
    task = await settled(served, WORKFLOW, registration.patient)
    assert task["status"] == "failed"
    assert task["statusReason"]["text"] == "consent-missing"
    assert step_of(task) == "validate"
    assert output(task, "eligibility-response") is None
    asked = await served.client.get("/CoverageEligibilityRequest", params={"patient": registration.patient})
    assert asked.json().get("total", 0) == 0 and not [
        e for e in asked.json().get("entry", []) if e.get("search", {}).get("mode") == "match"
    ]


async def test_invalid_demographics_stop_the_journey_with_the_findings(served: Harness):
    registration = served.registration()
    patient, *rest = registration.resources()
    patient["identifier"][0]["system"] = "http://nphies.sa/identifier/passportnumber"
    await served.post([patient, *rest])
    task = await settled(served, WORKFLOW, registration.patient)
    assert (task["status"], task["statusReason"]["text"]) == ("failed", "invalid-registration")
    assert "iqama" in task["note"][-1]["text"]


async def _not_eligible(served: Harness) -> tuple[synthetic.Registration, dict, dict]:
    registration = served.registration(member_id=synthetic.NOT_ACTIVE)
    await served.post(registration.resources())
    task = await settled(served, WORKFLOW, registration.patient)
    assert (task["status"], step_of(task)) == ("on-hold", "eligibility")
    assert output(task, "eligibility") == "not-active"
    reviews = [
        t
        for t in await person_tasks(served.client, task["id"])
        if t["code"]["coding"][0]["system"] == HUMAN_SYSTEM
    ]
    assert len(reviews) == 1
    return registration, task, reviews[0]


async def test_not_eligible_opens_a_review_that_a_person_approves(served: Harness):
    registration, task, review = await _not_eligible(served)
    assert review["owner"]["reference"] == "CareTeam/eligibility-review"
    deadline = review["restriction"]["period"]["end"]
    assert deadline == task["restriction"]["period"]["end"]
    assert await events(served.client, "eligibility.failed", registration.patient)

    approved = await served.client.post(
        f"/Task/{review['id']}/$approve",
        json={"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "card checked"}]},
    )
    assert approved.status_code in (200, 201), approved.text
    done = await until(served.client, f"/Task/{task['id']}", lambda t: t["status"] == "completed")
    assert step_of(done) == "verified"
    assert output(done, "decision") == "approved"
    assert await events(served.client, "eligibility.verified", registration.patient)


async def test_a_rejected_review_ends_the_journey_not_eligible(served: Harness):
    _, task, review = await _not_eligible(served)
    rejected = await served.client.post(
        f"/Task/{review['id']}/$reject",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "policy lapsed"}],
        },
    )
    assert rejected.status_code in (200, 201), rejected.text
    done = await until(served.client, f"/Task/{task['id']}", lambda t: t["status"] == "failed")
    assert (step_of(done), done["statusReason"]["text"]) == ("not-eligible", "not-eligible")


async def test_a_review_left_past_its_sla_is_escalated(served: Harness):
    registration, task, _ = await _not_eligible(served)
    served.clock.advance(timedelta(hours=4, minutes=1))
    await served.engine.sweeper.sweep()
    escalated = await until(
        served.client,
        f"/Task/{task['id']}",
        lambda t: {"system": STEP_STATUS_SYSTEM, "code": ESCALATED} in t["businessStatus"]["coding"],
    )
    assert escalated["status"] == "on-hold"
    owners = {t["owner"]["reference"] for t in await person_tasks(served.client, task["id"]) if "owner" in t}
    assert owners == {"CareTeam/eligibility-review", "CareTeam/revenue-cycle-supervisors"}
    breached = await served.client.get("/Basic", params={"subject": f"Task/{task['id']}"})
    codes = {c["code"] for e in breached.json().get("entry", []) for c in e["resource"]["code"]["coding"]}
    assert "sla.breached" in codes
