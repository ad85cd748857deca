"""NPHIES message events: what each one carries as its focus and what answers it."""

from enum import StrEnum


class Event(StrEnum):
    ELIGIBILITY_REQUEST = "eligibility-request"
    ELIGIBILITY_RESPONSE = "eligibility-response"
    PRIORAUTH_REQUEST = "priorauth-request"
    PRIORAUTH_RESPONSE = "priorauth-response"
    CLAIM_REQUEST = "claim-request"
    CLAIM_RESPONSE = "claim-response"
    BATCH_REQUEST = "batch-request"
    BATCH_RESPONSE = "batch-response"
    STATUS_CHECK = "status-check"
    STATUS_RESPONSE = "status-response"
    CANCEL_REQUEST = "cancel-request"
    CANCEL_RESPONSE = "cancel-response"
    PAYMENT_NOTICE = "payment-notice"
    PAYMENT_RECONCILIATION = "payment-reconciliation"
    COMMUNICATION_REQUEST = "communication-request"
    COMMUNICATION = "communication"
    ACKNOWLEDGEMENT = "acknowledgement"
    POLL_REQUEST = "poll-request"
    POLL_RESPONSE = "poll-response"
    ADVANCED_AUTHORIZATION = "advanced-authorization"
    PRESCRIBER_REQUEST = "prescriber-request"
    PRESCRIBER_RESPONSE = "prescriber-response"
    ERROR_NOTICE = "error-notice"


ALL_EVENTS = frozenset(e.value for e in Event)

# What a provider sends, and the event of the real-time answer.
RESPONSE_TO: dict[str, str] = {
    Event.ELIGIBILITY_REQUEST: Event.ELIGIBILITY_RESPONSE,
    Event.PRIORAUTH_REQUEST: Event.PRIORAUTH_RESPONSE,
    Event.CLAIM_REQUEST: Event.CLAIM_RESPONSE,
    Event.BATCH_REQUEST: Event.BATCH_RESPONSE,
    Event.STATUS_CHECK: Event.STATUS_RESPONSE,
    Event.CANCEL_REQUEST: Event.CANCEL_RESPONSE,
    Event.COMMUNICATION: Event.ACKNOWLEDGEMENT,
    Event.PAYMENT_NOTICE: Event.ACKNOWLEDGEMENT,
    Event.POLL_REQUEST: Event.POLL_RESPONSE,
    Event.PRESCRIBER_REQUEST: Event.PRESCRIBER_RESPONSE,
}
PROVIDER_EVENTS = frozenset(RESPONSE_TO)

# The resource type MessageHeader.focus must point to (IG 6.2.8).
FOCAL_TYPE: dict[str, str] = {
    Event.ELIGIBILITY_REQUEST: "CoverageEligibilityRequest",
    Event.ELIGIBILITY_RESPONSE: "CoverageEligibilityResponse",
    Event.PRIORAUTH_REQUEST: "Claim",
    Event.PRIORAUTH_RESPONSE: "ClaimResponse",
    Event.CLAIM_REQUEST: "Claim",
    Event.CLAIM_RESPONSE: "ClaimResponse",
    Event.BATCH_REQUEST: "Bundle",
    Event.BATCH_RESPONSE: "Bundle",
    Event.STATUS_CHECK: "Task",
    Event.STATUS_RESPONSE: "Task",
    Event.CANCEL_REQUEST: "Task",
    Event.CANCEL_RESPONSE: "Task",
    Event.PAYMENT_NOTICE: "PaymentNotice",
    Event.PAYMENT_RECONCILIATION: "PaymentReconciliation",
    Event.COMMUNICATION_REQUEST: "CommunicationRequest",
    Event.COMMUNICATION: "Communication",
    Event.POLL_REQUEST: "Task",
    Event.POLL_RESPONSE: "Task",
    Event.ADVANCED_AUTHORIZATION: "ClaimResponse",
}

# Messages NPHIES addresses to itself rather than to a payer (rule BV-00456).
ADDRESSED_TO_NPHIES = frozenset({Event.POLL_REQUEST, Event.PAYMENT_NOTICE})

# Requests whose resend cannot change anything at the payer: a lost answer may simply be asked for again.
IDEMPOTENT_EVENTS = frozenset({Event.ELIGIBILITY_REQUEST, Event.POLL_REQUEST, Event.STATUS_CHECK})

# Task.code expected in Task-based requests.
TASK_CODES: dict[str, frozenset[str]] = {
    Event.POLL_REQUEST: frozenset({"poll"}),
    Event.STATUS_CHECK: frozenset({"status"}),
    Event.CANCEL_REQUEST: frozenset({"cancel", "nullify"}),
}

CLAIM_USE: dict[str, str] = {Event.PRIORAUTH_REQUEST: "preauthorization", Event.CLAIM_REQUEST: "claim"}
