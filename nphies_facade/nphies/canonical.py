"""NPHIES canonical URLs: profiles, extensions, code systems and license identifier systems."""

PROFILE_BASE = "http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/"
PROFILE_VERSION = "1.0.0"

MESSAGE_EVENTS = "http://nphies.sa/terminology/CodeSystem/ksa-message-events"
ADJUDICATION_ERROR = "http://nphies.sa/terminology/CodeSystem/adjudication-error"
ADJUDICATION_OUTCOME = "http://nphies.sa/terminology/CodeSystem/adjudication-outcome"
ADJUDICATION_REASON = "http://nphies.sa/terminology/CodeSystem/adjudication-reason"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
KSA_ADJUDICATION = "http://nphies.sa/terminology/CodeSystem/ksa-adjudication"
SITE_ELIGIBILITY = "http://nphies.sa/terminology/CodeSystem/siteEligibility"
META_TAGS = "http://nphies.sa/terminology/CodeSystem/meta-tags"
TASK_CODE = "http://nphies.sa/terminology/CodeSystem/task-code"
TASK_INPUT_TYPE = "http://nphies.sa/terminology/CodeSystem/task-input-type"
TASK_OUTPUT_TYPE = "http://nphies.sa/terminology/CodeSystem/task-output-type"
# NPHIES itself writes Task.output.type with the ValueSet URL as system (see the poll and status samples).
TASK_OUTPUT_TYPE_VS = "http://nphies.sa/terminology/ValueSet/task-output-type"
TASK_REASON_CODE = "http://nphies.sa/terminology/CodeSystem/task-reason-code"
ORGANIZATION_TYPE = "http://nphies.sa/terminology/CodeSystem/organization-type"
PROVIDER_TYPE = "http://nphies.sa/terminology/CodeSystem/provider-type"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
CLAIM_SUBTYPE = "http://nphies.sa/terminology/CodeSystem/claim-subtype"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
COVERAGE_TYPE = "http://nphies.sa/terminology/CodeSystem/coverage-type"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
COMMUNICATION_REASON = "http://nphies.sa/terminology/CodeSystem/communication-reason"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/payment-type"
PAYMENT_METHOD = "http://nphies.sa/terminology/CodeSystem/payment-method"
PAYMENT_STATUS = "http://terminology.hl7.org/CodeSystem/paymentstatus"
BENEFIT_CATEGORY = "http://nphies.sa/terminology/CodeSystem/benefit-category"
BENEFIT_TYPE = "http://nphies.sa/terminology/CodeSystem/benefit-type"
BENEFIT_NETWORK = "http://terminology.hl7.org/CodeSystem/benefit-network"
BENEFIT_UNIT = "http://terminology.hl7.org/CodeSystem/benefit-unit"
BENEFIT_TERM = "http://terminology.hl7.org/CodeSystem/benefit-term"

PROVIDER_LICENSE = "http://nphies.sa/license/provider-license"
PAYER_LICENSE = "http://nphies.sa/license/payer-license"
NPHIES_LICENSE = "http://nphies.sa/license/nphies"
NPHIES_ID = "NPHIES"
NPHIES_ENDPOINT = "http://nphies.sa"

NPHIES_GENERATED_TAG = {"code": "NPHIES generated", "display": "NPHIES generated"}
QUEUED_MESSAGES_TAG = {"system": META_TAGS, "code": "queued-messages"}


def profile_url(profile_id: str) -> str:
    """The versioned canonical of an NPHIES profile, e.g. `.../StructureDefinition/patient|1.0.0`."""
    return f"{PROFILE_BASE}{profile_id}|{PROFILE_VERSION}"


def profile_id(url: str) -> str | None:
    """The profile id of an NPHIES canonical (versioned or not), or None for other canonicals."""
    if not url.startswith(PROFILE_BASE):
        return None
    return url[len(PROFILE_BASE) :].split("|", 1)[0] or None


def extension_url(name: str) -> str:
    """The canonical of an NPHIES extension, e.g. `extension_url("provider-type")`."""
    return f"{PROFILE_BASE}extension-{name}"


def payer_endpoint(license_id: str) -> str:
    """The logical endpoint NPHIES uses for a payer in MessageHeader.destination.endpoint."""
    return f"{PAYER_LICENSE}/{license_id}"


def provider_endpoint(license_id: str) -> str:
    return f"{PROVIDER_LICENSE}/{license_id}"


ERROR_EXPRESSION = extension_url("error-expression")
ADJUDICATION_OUTCOME_EXT = extension_url("adjudication-outcome")
SITE_ELIGIBILITY_EXT = extension_url("siteEligibility")
PROVIDER_TYPE_EXT = extension_url("provider-type")
CLAIM_ITEM_SEQUENCE_EXT = extension_url("claimItemSequence")
