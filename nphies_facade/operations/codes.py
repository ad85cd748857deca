"""Our code systems, identifier systems and extensions for the operations' Tasks and records."""

OPERATION_CODES = "urn:nphies-facade:operation"
"""Task.code of the Tasks the operations create: `submit` ($submit) and `cancel` ($cancel)."""
SUBMIT, CANCEL = "submit", "cancel"

STEP_CODES = "urn:nphies-facade:nphies-step"
"""Task.businessStatus: the step a submit Task is at."""

SUBMIT_IDENTIFIER = "urn:nphies-facade:submit"
"""Task.identifier of a submit Task: `Claim/{id}/_history/{version}`, so a version is submitted once."""

OUTPUT_TYPES = "urn:nphies-facade:task-output"
"""Task.output.type: claim-response (the final answer), interim-response (queued), communication-request,
exchange (a recorded message exchange), errors (an OperationOutcome)."""
INPUT_TYPES = "urn:nphies-facade:task-input"
"""Task.input.type: claim (the Claim version submitted), reason (of a cancel)."""

STEP_DUE = "urn:nphies-facade:extension:step-due"
STEP_ATTEMPT = "urn:nphies-facade:extension:step-attempt"

EXCHANGE_IDENTIFIER = "urn:nphies-facade:nphies-exchange"
"""Bundle.identifier of an exchange record: the request MessageHeader.id (the correlation id)."""
EXCHANGE_OUTCOME = "urn:nphies-facade:nphies-exchange-outcome"

ELIGIBILITY_CACHE_TAG = "urn:nphies-facade:eligibility-cache"
"""meta.tag of a stored CoverageEligibilityResponse: its cache key."""

REQUEST_IDENTIFIERS = "/identifiers/coverageeligibilityrequest"
"""Appended to the provider's source endpoint: the system of CoverageEligibilityRequest.identifier."""
