"""Which NPHIES profile each resource of an outgoing message claims, from its type, content and role."""

from .. import canonical
from ..fhirjson import code_of

CLAIM_TYPES = frozenset({"institutional", "professional", "pharmacy", "oral", "vision"})

_FIXED: dict[str, str] = {
    "CoverageEligibilityRequest": "eligibility-request",
    "Patient": "patient",
    "Coverage": "coverage",
    "Practitioner": "practitioner",
    "PractitionerRole": "practitioner-role",
    "Encounter": "encounter",
    "Location": "location",
    "VisionPrescription": "vision-prescription",
    "MedicationRequest": "medicationRequest",
    "Communication": "communication",
    "PaymentNotice": "payment-notice",
    "PaymentReconciliation": "payment-reconciliation",
    "CommunicationRequest": "communication-request",
    "Task": "task",
    "MessageHeader": "message-header",
    "OperationOutcome": "operationoutcome",
    "Bundle": "bundle",
}


def claim_profile(claim: dict) -> str | None:
    """`<type>-priorauth` or `<type>-claim`, e.g. institutional-claim; None for an unknown claim type."""
    claim_type = code_of(claim.get("type"), canonical.CLAIM_TYPE) or code_of(claim.get("type"))
    if claim_type not in CLAIM_TYPES:
        return None
    return f"{claim_type}-{'priorauth' if claim.get('use') == 'preauthorization' else 'claim'}"


def organization_profile(organization: dict, role: str | None) -> str:
    """provider-, insurer- or policyholder-organization by license identifier, type, then referring role."""
    systems = {i.get("system") for i in organization.get("identifier") or [] if isinstance(i, dict)}
    kinds = {code_of(t) for t in organization.get("type") or []}
    if canonical.PROVIDER_LICENSE in systems or "prov" in kinds:
        return "provider-organization"
    if canonical.PAYER_LICENSE in systems or kinds & {"ins", "pay"}:
        return "insurer-organization"
    if role == "policyHolder":
        return "policyholder-organization"
    return "organization"


def profile_for(resource: dict, role: str | None = None) -> str | None:
    """The profile id for a resource; `role` is the element name that first referenced it."""
    resource_type = resource.get("resourceType")
    if resource_type == "Claim":
        return claim_profile(resource)
    if resource_type == "Organization":
        return organization_profile(resource, role)
    if resource_type == "ClaimResponse":
        return "prior-auth-response" if resource.get("use") == "preauthorization" else "claim-response"
    return _FIXED.get(str(resource_type))
