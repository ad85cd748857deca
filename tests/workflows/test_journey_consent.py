"""Consent and the journeys: a claims instance is for the Claim's patient, so revoking that patient's
Consent cancels it while it runs; and the steps that send to NPHIES check consent again right before."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from nphies_facade.resources.context import RequestContext
from nphies_facade.workflows.context import StepContext
from nphies_facade.workflows.dsl import StepFailed
from nphies_facade.workflows.journeys import claims, eligibility

from .journey_support import Harness, journey_server, settled, step_of, until

NPHIES_DOWN = [{"kind": "error", "status": 503, "probability": 1.0}]


@pytest.fixture(scope="module")
async def served(tmp_path_factory) -> AsyncIterator[Harness]:
    async with journey_server(tmp_path_factory.mktemp("consent") / "data") as running:
        yield running


async def _revoke(served: Harness, registration) -> None:
    consent = registration.consent_resource() | {"status": "inactive"}
    response = await served.client.put(f"/Consent/{consent['id']}", json=consent)
    assert response.status_code == 200, response.text


async def test_a_claims_instance_is_for_the_patient_and_revoking_consent_cancels_it(served: Harness):
    assert (await served.simulator("faults", "PUT", NPHIES_DOWN)).status_code == 200
    try:
        registration = served.registration()
        await served.post(registration.resources())
        claim = registration.claim()
        await served.post([claim])
        subject = f"Claim/{claim['id']}"
        running = await served.settled(
            claims.NAME, subject, done=lambda t: step_of(t) in ("submit", "submitted")
        )
        assert running["status"] == "in-progress"  # NPHIES answers 503: the claim cannot get through
        assert running["focus"]["reference"] == subject
        assert running["for"]["reference"] == registration.patient

        await _revoke(served, registration)
        task = await until(served.client, f"/Task/{running['id']}", lambda t: t["status"] != "in-progress")
        assert (task["status"], task["statusReason"]["text"]) == ("cancelled", "consent-revoked")
        await asyncio.sleep(0.3)  # no step runs on after the revocation
        later = (await served.client.get(f"/Task/{running['id']}")).json()
        assert later["meta"]["versionId"] == task["meta"]["versionId"]
    finally:
        assert (await served.simulator("faults", "PUT", [])).status_code == 200


class Refusing:
    """Operations that must not be called: consent was revoked."""

    async def submit(self, *args, **kwargs):
        raise AssertionError("$submit was called without consent")

    async def eligibility(self, *args, **kwargs):
        raise AssertionError("$eligibility was called without consent")


def _step(served: Harness, workflow, name: str, task: dict) -> StepContext:
    ctx = RequestContext(actor="test", scopes=("system/*.*",))
    service = served.engine.service
    return StepContext(
        workflow, name, 1, task, service, ctx, served.clock, served.engine.settings, Refusing()
    )


async def test_steps_that_send_to_nphies_check_consent_again_first(served: Harness):
    registration = served.registration()
    await served.post(registration.resources())
    verified = await settled(served, eligibility.NAME, registration.patient)
    assert verified["status"] == "completed"
    await _revoke(served, registration)
    claim = registration.claim()
    claim["status"] = "draft"  # stored, but starts no journey
    await served.post([claim])

    submitting = {"focus": {"reference": f"Claim/{claim['id']}"}}
    with pytest.raises(StepFailed) as refused:
        await claims.submit(_step(served, claims.workflow(), "submit", submitting))
    assert refused.value.reason == "consent-missing"

    asking = {
        "focus": {"reference": registration.patient},
        "output": [
            {"type": {"text": "coverage"}, "valueReference": {"reference": registration.coverage}},
            {"type": {"text": "payer"}, "valueReference": {"reference": served.parties.payer}},
        ],
    }
    with pytest.raises(StepFailed) as refused:
        await eligibility.eligibility(_step(served, eligibility.workflow(), "eligibility", asking))
    assert refused.value.reason == "consent-missing"
