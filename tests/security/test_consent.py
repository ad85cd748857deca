"""Consent checks for workflows and NPHIES exchanges; revoking consent cancels the patient's pending work."""

import orjson
import pytest

from nphies_facade.resources import consent
from nphies_facade.resources.context import RequestContext

from .conftest import patient


@pytest.fixture
def secure_settings(secure_settings):
    """Referential integrity off: the access-rule cases here refer to people and organizations that only
    their tokens name, and delete what others refer to (tests/integration/test_references_http.py covers
    the references)."""
    return secure_settings.model_copy(update={"referential_integrity": "off"})


SYSTEM = RequestContext.system()
PAYMENT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HPAYMT"}
RESEARCH = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}


def a_consent(consent_id: str, patient_id: str, status: str = "active", **provision) -> dict:
    return {
        "resourceType": "Consent",
        "id": consent_id,
        "status": status,
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {"type": "permit", **provision},
    }


def pending_task(task_id: str, patient_id: str, status: str = "in-progress") -> dict:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": status,
        "intent": "order",
        "for": {"reference": f"Patient/{patient_id}"},
    }


@pytest.fixture
def service(secure_app):
    return secure_app.state.service


async def test_no_active_consent_means_consent_missing(service):
    await service.update(SYSTEM, "Patient", "p1", patient("p1"))
    decision = await consent.check(service, "Patient/p1", "HPAYMT")
    assert not decision.permitted and decision.code == "consent-missing"
    with pytest.raises(consent.ConsentRequired) as refused:
        await consent.require(service, "Patient/p1", "HPAYMT")
    assert refused.value.status == 403
    assert refused.value.issues[0].diagnostics.startswith("consent-missing")


async def test_an_active_consent_permits_its_purposes_and_denies_its_exceptions(service):
    body = a_consent(
        "c1",
        "p1",
        purpose=[PAYMENT],
        provision=[
            {
                "type": "deny",
                "actor": [{"role": {"text": "payer"}, "reference": {"reference": "Organization/bad-payer"}}],
            }
        ],
    )
    await service.update(SYSTEM, "Consent", "c1", body)
    assert (await consent.check(service, "Patient/p1", "HPAYMT")).code == "consent-granted"
    assert (
        await consent.check(
            service, "Patient/p1", "http://terminology.hl7.org/CodeSystem/v3-ActReason|HPAYMT"
        )
    ).permitted
    assert (await consent.check(service, "Patient/p1", "HRESCH")).code == "consent-missing"
    denied = await consent.check(service, "Patient/p1", "HPAYMT", actor="Organization/bad-payer")
    assert denied.code == "consent-denied" and denied.consent == "Consent/c1"
    assert (await consent.check(service, "Patient/other", "HPAYMT")).code == "consent-missing"


async def test_revoking_consent_cancels_pending_tasks_and_runs_hooks(service):
    await service.update(SYSTEM, "Consent", "c2", a_consent("c2", "p2"))
    await service.update(SYSTEM, "Task", "t-open", pending_task("t-open", "p2"))
    await service.update(SYSTEM, "Task", "t-done", pending_task("t-done", "p2", status="completed"))
    await service.update(SYSTEM, "Task", "t-other", pending_task("t-other", "p3"))
    heard: list[tuple[str, str]] = []

    async def hook(_service, _ctx, patient_ref: str, consent_ref: str) -> None:
        heard.append((patient_ref, consent_ref))

    consent.on_revoked(service, hook)
    await service.update(SYSTEM, "Consent", "c2", a_consent("c2", "p2", status="inactive"))
    assert heard == [("Patient/p2", "Consent/c2")]
    statuses = {}
    for task_id in ("t-open", "t-done", "t-other"):
        stored = await service.read("Task", task_id, ctx=SYSTEM)
        statuses[task_id] = orjson.loads(stored.body)
    assert statuses["t-open"]["status"] == "cancelled"
    assert statuses["t-open"]["statusReason"]["text"] == "consent-revoked"
    assert statuses["t-done"]["status"] == "completed" and statuses["t-other"]["status"] == "in-progress"
    assert not (await consent.check(service, "Patient/p2")).permitted
