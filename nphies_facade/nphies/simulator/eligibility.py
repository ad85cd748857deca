"""Answering an eligibility request from the member data: eligible, not active, out of network, not found."""

from .. import canonical
from ..fhirjson import first_identifier, items, new_guid
from .catalog import Member, RuleError
from .responses import Entry, Party, coded_error, coding, now_instant
from .responses import money as sar

DISPOSITIONS = {
    "eligible": "Coverage is in-force",
    "not-active": "Member's insurance policy is not active",
    "out-network": "Provider outside member Network",
    "not-found": "No member found with the supplied patient credentials",
}


def eligibility_response(
    request: dict,
    member: Member,
    payer: Party,
    patient_url: str | None,
    insurer_url: str | None,
    coverage_urls: list[str],
    benefits: list[dict],
) -> tuple[dict, list[Entry]]:
    """The CoverageEligibilityResponse, plus the Coverages the payer adds (policies the request did not name)."""
    response = _skeleton(request, patient_url, insurer_url)
    response["disposition"] = DISPOSITIONS.get(member.status, member.status)
    if member.status == "not-found":
        response["outcome"] = "error"
        response["error"] = [coded_error(RuleError(member.error or "1658"))]
        return response, []
    response["outcome"] = "complete"
    response["extension"] = [_site_extension(member.status)]
    added = [
        payer.new_entry(_coverage(member, patient_url, insurer_url, n), "coverage")
        for n in range(max(0, member.policies - len(coverage_urls)))
    ]
    with_benefits = "benefits" in items(request.get("purpose")) and member.status == "eligible"
    response["insurance"] = [
        _insurance(url, member, benefits if with_benefits else [])
        for url in coverage_urls + [e[0] for e in added]
    ]
    return response, added


def _skeleton(request: dict, patient_url: str | None, insurer_url: str | None) -> dict:
    response: dict = {
        "resourceType": "CoverageEligibilityResponse",
        "identifier": [
            {"system": "http://pseudo-payer.com.sa/coverageeligibilityresponse", "value": new_guid()}
        ],
        "status": "active",
        "purpose": [p for p in items(request.get("purpose")) if isinstance(p, str)],
        "created": now_instant(),
        "request": {"type": "CoverageEligibilityRequest"},
    }
    identifier = first_identifier(request)
    if identifier:
        response["request"]["identifier"] = identifier.to_fhir()
    if patient_url:
        response["patient"] = {"reference": patient_url}
    for element in ("servicedPeriod", "servicedDate"):
        if element in request:
            response[element] = request[element]
    if insurer_url:
        response["insurer"] = {"reference": insurer_url}
    return response


def _site_extension(status: str) -> dict:
    return {
        "url": canonical.SITE_ELIGIBILITY_EXT,
        "valueCodeableConcept": coding(canonical.SITE_ELIGIBILITY, status),
    }


def _insurance(coverage_url: str, member: Member, benefits: list[dict]) -> dict:
    insurance: dict = {
        "extension": [_site_extension(member.status)],
        "coverage": {"reference": coverage_url},
        "inforce": member.status != "not-active",
    }
    if benefits:
        insurance["item"] = [_benefit_item(b) for b in benefits]
    return insurance


def _benefit_item(benefit: dict) -> dict:
    amounts = {
        "type": coding(canonical.BENEFIT_TYPE, benefit["type"]),
        "allowedMoney": sar(benefit["allowed"]),
    }
    if "used" in benefit:
        amounts["usedMoney"] = sar(benefit["used"])
    return {
        "category": coding(canonical.BENEFIT_CATEGORY, benefit["category"]),
        "name": benefit["name"],
        "description": benefit.get("description", benefit["name"]),
        "network": coding(canonical.BENEFIT_NETWORK, benefit.get("network", "in")),
        "unit": coding(canonical.BENEFIT_UNIT, "individual"),
        "term": coding(canonical.BENEFIT_TERM, benefit.get("term", "annual")),
        "benefit": [amounts],
    }


def _coverage(member: Member, patient_url: str | None, insurer_url: str | None, n: int) -> dict:
    patient = {"reference": patient_url} if patient_url else None
    coverage: dict = {
        "resourceType": "Coverage",
        "identifier": [
            {"system": "http://pseudo-payer.com.sa/memberid", "value": f"{member.identifier or 'M'}-{n + 1}"}
        ],
        "status": "active",
        "type": coding(canonical.COVERAGE_TYPE, "EHCPOL", "extended healthcare"),
        "relationship": coding(canonical.SUBSCRIBER_RELATIONSHIP, "self"),
        "class": [
            {
                "type": coding("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"),
                "value": f"plan-{n + 1}",
            }
        ],
    }
    if patient:
        coverage.update(policyHolder=patient, subscriber=patient, beneficiary=patient)
    if insurer_url:
        coverage["payor"] = [{"reference": insurer_url}]
    return coverage
