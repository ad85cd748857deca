"""Journey 2 end to end over HTTP: an active Claim is validated, submitted through $submit, adjudicated by
the sandbox payer (at once, or queued and polled) and paid, partly paid or denied."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from nphies_facade.workflows.journeys import synthetic

from .journey_support import Harness, events, journey_server, output, settled, step_of

WORKFLOW = "claims"


@pytest.fixture(scope="module")
async def served(tmp_path_factory) -> AsyncIterator[Harness]:
    async with journey_server(tmp_path_factory.mktemp("claims") / "data") as running:
        yield running


async def _claimed(served: Harness, claim_of) -> tuple[dict, dict]:
    registration = served.registration()
    await served.post(registration.resources())
    claim = claim_of(registration)
    await served.post([claim])
    return claim, await settled(served, WORKFLOW, f"Claim/{claim['id']}")


async def _read(served: Harness, reference: str) -> dict:
    response = await served.client.get(f"/{reference}")
    assert response.status_code == 200, response.text
    return response.json()


def _submissions(result: str) -> float:
    return REGISTRY.get_sample_value("nphies_claim_submissions_total", {"result": result}) or 0.0


async def test_an_approved_claim_is_submitted_adjudicated_and_paid(served: Harness):
    succeeded = _submissions("success")
    claim, task = await _claimed(served, lambda r: r.claim())
    assert _submissions("success") == succeeded + 1
    assert (task["status"], step_of(task)) == ("completed", "paid")
    assert output(task, "adjudication") == "approved"
    submission = await _read(served, output(task, "submission")["reference"])
    assert submission["status"] == "completed" and submission["focus"]["reference"] == f"Claim/{claim['id']}"
    payment = await _read(served, output(task, "payment")["reference"])
    assert payment["resourceType"] == "PaymentReconciliation"
    assert payment["detail"][0]["request"]["reference"] == f"Claim/{claim['id']}"
    assert output(task, "paid-amount") == 250.0
    subject = f"Claim/{claim['id']}"
    for name in ("claim.submitted", "claim.adjudicated", "claim.paid"):
        assert len(await events(served.client, name, subject)) == 1, name


async def test_a_partly_approved_claim_is_partially_paid_with_reasons_and_appeal_deadline(served: Harness):
    items = [
        synthetic.Item("30571-00-00", 200.0),
        synthetic.Item(synthetic.REJECTED_DRUG, 50.0, synthetic.MEDICATIONS),
    ]
    claim, task = await _claimed(served, lambda r: r.claim(items))
    assert (task["status"], step_of(task)) == ("completed", "partially-paid")
    assert output(task, "adjudication") == "partial"
    assert output(task, "paid-amount") == 200.0
    assert "CV-4-5" in output(task, "denial-reasons")
    adjudicated = datetime.fromisoformat(output(task, "adjudicated-at"))
    deadline = datetime.fromisoformat(output(task, "appeal-deadline"))
    assert deadline - adjudicated == timedelta(days=30)
    assert await events(served.client, "claim.partially-paid", f"Claim/{claim['id']}")


async def test_a_queued_claim_is_polled_and_its_rejection_recorded_as_denied(served: Harness):
    claim, task = await _claimed(served, lambda r: r.claim(deferred=True))
    assert (task["status"], step_of(task)) == ("completed", "denied")
    assert output(task, "adjudication") == "rejected"
    assert "MN-1-1" in output(task, "denial-reasons")
    assert output(task, "appeal-deadline")
    assert output(task, "payment") is None
    submission = await _read(served, output(task, "submission")["reference"])
    kinds = {c["code"] for o in submission["output"] for c in o["type"].get("coding", [])}
    assert {"interim-response", "claim-response"} <= kinds  # queued first, then the polled answer
    denied = await events(served.client, "claim.denied", f"Claim/{claim['id']}")
    assert len(denied) == 1


async def test_a_claim_whose_total_is_not_the_sum_of_its_items_is_not_submitted(served: Harness):
    claim, task = await _claimed(served, lambda r: r.claim(total=999.0))
    assert (task["status"], task["statusReason"]["text"]) == ("failed", "claim-invalid")
    assert "not the sum of the item nets" in task["note"][-1]["text"]
    assert output(task, "submission") is None


async def test_a_claim_without_consent_is_not_submitted(served: Harness):
    registration = served.registration(consent=False)
    await served.post(registration.resources())
    claim = registration.claim()
    await served.post([claim])
    task = await settled(served, WORKFLOW, f"Claim/{claim['id']}")
    assert (task["status"], task["statusReason"]["text"]) == ("failed", "consent-missing")
    assert output(task, "submission") is None
