"""Typed results of NPHIES responses: what a workflow step needs, not the whole FHIR structure."""

from dataclasses import dataclass, field
from datetime import date

from ..fhirjson import Identifier


@dataclass(frozen=True)
class NphiesError:
    """An error code (adjudication-error: BV-, IC-, RE- ... or a payer code such as 1658) and where it points."""

    code: str
    display: str | None = None
    expression: str | None = None
    severity: str = "error"


@dataclass(frozen=True)
class Header:
    """The MessageHeader of a response: who, which event, and which request it answers."""

    id: str
    event: str
    sender: str | None
    receiver: str | None
    response_to: str | None
    response_code: str | None
    queued_messages: bool = False
    nphies_generated: bool = False


@dataclass(frozen=True)
class Response:
    """Base of every parsed message."""

    header: Header
    bundle: dict = field(repr=False)
    errors: tuple[NphiesError, ...] = ()

    @property
    def event(self) -> str:
        return self.header.event

    @property
    def ok(self) -> bool:
        return not self.errors and self.header.response_code in (None, "ok")


@dataclass(frozen=True)
class Benefit:
    category: str | None
    name: str | None
    network: str | None
    allowed: float | None
    used: float | None
    benefit_type: str | None


@dataclass(frozen=True)
class InsuranceStatus:
    coverage: str | None
    inforce: bool | None
    site_eligibility: str | None
    benefits: tuple[Benefit, ...] = ()


@dataclass(frozen=True)
class EligibilityResponse(Response):
    outcome: str | None = None
    disposition: str | None = None
    identifier: Identifier | None = None
    request: Identifier | None = None
    site_eligibility: str | None = None
    insurances: tuple[InsuranceStatus, ...] = ()

    @property
    def eligible(self) -> bool:
        return self.outcome == "complete" and self.site_eligibility == "eligible"

    @property
    def inforce(self) -> bool:
        return any(i.inforce for i in self.insurances)


@dataclass(frozen=True)
class ItemAdjudication:
    sequence: int | None
    outcome: str | None
    reasons: tuple[str, ...] = ()
    amounts: dict[str, float] = field(default_factory=dict)
    approved_quantity: float | None = None


@dataclass(frozen=True)
class ClaimResponseResult(Response):
    """priorauth-response, claim-response and advanced-authorization."""

    outcome: str | None = None  # queued | complete | error | partial
    adjudication_outcome: str | None = None  # approved | partial | rejected | pended | not-required
    disposition: str | None = None
    identifier: Identifier | None = None
    request: Identifier | None = None
    use: str | None = None
    claim_type: str | None = None
    pre_auth_ref: str | None = None
    pre_auth_period: tuple[str | None, str | None] | None = None
    items: tuple[ItemAdjudication, ...] = ()
    totals: dict[str, float] = field(default_factory=dict)
    reissue_reason: str | None = None

    @property
    def queued(self) -> bool:
        return self.outcome == "queued" or self.adjudication_outcome == "pended"

    @property
    def final(self) -> bool:
        return self.outcome in ("complete", "partial") and not self.queued


@dataclass(frozen=True)
class CommunicationRequestResult(Response):
    identifier: Identifier | None = None
    about: tuple[Identifier, ...] = ()
    reasons: tuple[str, ...] = ()
    payload: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaymentDetail:
    request: Identifier | None
    response: Identifier | None
    amount: float | None
    date: str | None


@dataclass(frozen=True)
class PaymentReconciliationResult(Response):
    identifier: Identifier | None = None
    outcome: str | None = None
    payment_date: date | str | None = None
    amount: float | None = None
    payment_identifier: Identifier | None = None
    details: tuple[PaymentDetail, ...] = ()


@dataclass(frozen=True)
class Acknowledgement(Response):
    """The answer to a communication or payment-notice (errors come from its OperationOutcome)."""


@dataclass(frozen=True)
class TaskResult(Response):
    """cancel-response and status-response: the Task status and, for a status check, the status found."""

    task_status: str | None = None
    code: str | None = None
    focus: Identifier | None = None
    status: str | None = None


@dataclass(frozen=True)
class PollResponse(Response):
    task_status: str | None = None
    messages: tuple[Response, ...] = ()


@dataclass(frozen=True)
class BatchResponse(Response):
    """A batch-response: one nested message per claim of the batch."""

    messages: tuple[Response, ...] = ()


@dataclass(frozen=True)
class OperationOutcomeResult:
    """A bare OperationOutcome instead of a Bundle: the message could not be read or routed."""

    errors: tuple[NphiesError, ...]
    resource: dict = field(repr=False)
    ok: bool = False
    event: str = "operation-outcome"


@dataclass(frozen=True)
class UnknownMessage(Response):
    """A message of an event this parser does not interpret (e.g. a request): its focus type and identifier."""

    focus_type: str | None = None
    identifier: Identifier | None = None


ParsedResponse = Response | OperationOutcomeResult
