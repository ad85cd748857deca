"""The checks the journeys make before they ask the payer, and how they read the payer's answers."""

import copy
from datetime import date

from nphies_facade.nphies import canonical
from nphies_facade.workflows.journeys import synthetic
from nphies_facade.workflows.journeys.claims import adjudication, denial_reasons
from nphies_facade.workflows.journeys.eligibility import eligibility_verdict
from nphies_facade.workflows.journeys.settings import JourneySettings
from nphies_facade.workflows.journeys.validation import (
    claim_findings,
    coverage_findings,
    patient_findings,
)

TODAY = date(2026, 11, 25)
PARTIES = synthetic.Parties()


def registered() -> tuple[dict, dict, dict]:
    registration = synthetic.Registration(PARTIES, TODAY)
    patient, _, coverage = registration.resources()
    payer = PARTIES.resources()[1]
    return patient, coverage, payer


def test_a_synthetic_registration_meets_the_nphies_rules():
    patient, coverage, payer = registered()
    assert patient_findings(patient, TODAY) == []
    assert coverage_findings(coverage, payer, f"Patient/{patient['id']}", TODAY) == []


def test_patient_identifier_system_must_match_its_type():
    patient, _, _ = registered()
    patient["identifier"][0]["system"] = "http://nphies.sa/identifier/nationalid"
    findings = patient_findings(patient, TODAY)
    assert any("identifier[0].system" in f and "iqama" in f for f in findings)


def test_an_iqama_number_has_ten_digits_starting_with_2():
    patient, _, _ = registered()
    patient["identifier"][0]["value"] = "1234567890"
    assert any("identifier[0].value" in f for f in patient_findings(patient, TODAY))


def test_missing_gender_and_future_birth_date_are_reported():
    patient, _, _ = registered()
    del patient["gender"]
    patient["birthDate"] = "2030-01-01"
    findings = patient_findings(patient, TODAY)
    assert any("gender" in f for f in findings)
    assert any("birthDate: in the future" in f for f in findings)


def test_coverage_needs_member_id_payer_license_and_a_current_period():
    patient, coverage, payer = registered()
    coverage["identifier"] = []
    coverage["period"] = {"start": "2020-01-01", "end": "2021-01-01"}
    unlicensed = copy.deepcopy(payer)
    unlicensed["identifier"] = [{"system": "urn:other", "value": "x"}]
    findings = coverage_findings(coverage, unlicensed, f"Patient/{patient['id']}", TODAY)
    assert any("member id" in f for f in findings)
    assert any(canonical.PAYER_LICENSE in f for f in findings)
    assert any("Coverage.period" in f for f in findings)


def test_claim_total_must_be_the_sum_of_item_nets():
    registration = synthetic.Registration(PARTIES, TODAY)
    _, _, coverage = registration.resources()
    claim = registration.claim([synthetic.Item("A", 100.0), synthetic.Item("B", 50.0)], total=120.0)
    findings = claim_findings(claim, coverage, JourneySettings())
    assert findings == ["Claim.total: 120.00 is not the sum of the item nets (150.00)"]


def test_services_outside_the_coverage_period_are_refused():
    registration = synthetic.Registration(PARTIES, TODAY)
    _, _, coverage = registration.resources()
    claim = registration.claim([synthetic.Item("A", 10.0, served=date(2020, 1, 1))])
    assert any("outside the coverage period" in f for f in claim_findings(claim, coverage, JourneySettings()))


def test_items_that_need_prior_authorization_need_its_reference():
    registration = synthetic.Registration(PARTIES, TODAY)
    _, _, coverage = registration.resources()
    settings = JourneySettings(prior_auth_codes="MRI-1")
    claim = registration.claim([synthetic.Item("MRI-1", 900.0)])
    assert any("needs a prior authorization" in f for f in claim_findings(claim, coverage, settings))
    claim["insurance"][0]["preAuthRef"] = ["PA-123"]
    assert claim_findings(claim, coverage, settings) == []


def _site(code: str) -> dict:
    return {
        "url": canonical.SITE_ELIGIBILITY_EXT,
        "valueCodeableConcept": {"coding": [{"system": canonical.SITE_ELIGIBILITY, "code": code}]},
    }


def test_eligibility_verdict_reads_site_eligibility_inforce_and_errors():
    eligible = {
        "outcome": "complete",
        "insurance": [
            {"coverage": {"reference": "Coverage/1"}, "inforce": True, "extension": [_site("eligible")]}
        ],
    }
    assert eligibility_verdict(eligible, "Coverage/1") == "eligible"
    not_active = copy.deepcopy(eligible)
    not_active["insurance"][0].update(inforce=False, extension=[_site("not-active")])
    assert eligibility_verdict(not_active, "Coverage/1") == "not-active"
    error = {"outcome": "error", "error": [{"code": {"coding": [{"code": "1658"}]}}]}
    assert eligibility_verdict(error, "Coverage/1") == "error: 1658"


def test_adjudication_and_denial_reasons_come_from_the_claim_response():
    reason = {"system": canonical.ADJUDICATION_REASON, "code": "MN-1-1", "display": "Not medically necessary"}
    response = {
        "extension": [
            {
                "url": canonical.ADJUDICATION_OUTCOME_EXT,
                "valueCodeableConcept": {"coding": [{"code": "rejected"}]},
            }
        ],
        "item": [{"itemSequence": 1, "adjudication": [{"category": {}, "reason": {"coding": [reason]}}]}],
    }
    assert adjudication(response) == "rejected"
    assert denial_reasons(response) == ["item 1: MN-1-1 Not medically necessary"]
