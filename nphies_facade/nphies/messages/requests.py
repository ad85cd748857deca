"""Builders for messages focused on a stored resource: eligibility, prior auth, claim, communication, payment."""

from .. import canonical
from ..events import CLAIM_USE, Event
from ..fhirjson import code_of
from .assembly import Clock, Message, assemble, receiver_for, utc_now
from .closure import MessageBuildError, Resolver
from .config import ProviderConfig
from .profiles import CLAIM_TYPES

ELIGIBILITY_PURPOSES = frozenset({"benefits", "validation", "discovery", "auth-requirements"})


def build_eligibility_request(
    request: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """An eligibility-request for a CoverageEligibilityRequest (purposes benefits, validation, discovery)."""
    _require_type(request, "CoverageEligibilityRequest")
    purposes = set(request.get("purpose") or [])
    if not purposes or not purposes <= ELIGIBILITY_PURPOSES:
        raise MessageBuildError(
            f"CoverageEligibilityRequest.purpose must be among {sorted(ELIGIBILITY_PURPOSES)}"
        )
    has_coverage = any((i or {}).get("coverage") for i in request.get("insurance") or [])
    needs_coverage = "validation" in purposes or ("benefits" in purposes and "discovery" not in purposes)
    if needs_coverage and not has_coverage:
        raise MessageBuildError("validation, and benefits without discovery, need insurance.coverage")
    return _build(
        Event.ELIGIBILITY_REQUEST, request, _reference(request.get("insurer")), resolve, config, clock
    )


def build_priorauth_request(
    claim: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """A priorauth-request for a Claim with use=preauthorization (any of the five claim types)."""
    return _build_claim(Event.PRIORAUTH_REQUEST, claim, resolve, config, clock)


def build_claim_request(
    claim: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """A claim-request for a Claim with use=claim (any of the five claim types)."""
    return _build_claim(Event.CLAIM_REQUEST, claim, resolve, config, clock)


def build_communication(
    communication: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """A communication (solicited through basedOn, or unsolicited) about a prior authorization or claim."""
    _require_type(communication, "Communication")
    if not any((a or {}).get("identifier") for a in communication.get("about") or []):
        raise MessageBuildError(
            "Communication.about must carry the business identifier of the claim it is about"
        )
    recipients = communication.get("recipient") or [{}]
    return _build(Event.COMMUNICATION, communication, _reference(recipients[0]), resolve, config, clock)


def build_payment_notice(
    notice: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """A payment-notice (addressed to NPHIES) acknowledging a payment reconciliation."""
    _require_type(notice, "PaymentNotice")
    return _build(Event.PAYMENT_NOTICE, notice, None, resolve, config, clock)


def build_claim_message(
    claim: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """priorauth-request or claim-request, chosen by Claim.use."""
    event = Event.PRIORAUTH_REQUEST if claim.get("use") == "preauthorization" else Event.CLAIM_REQUEST
    return _build_claim(event, claim, resolve, config, clock)


def _build_claim(
    event: Event, claim: dict, resolve: Resolver, config: ProviderConfig, clock: Clock
) -> Message:
    _require_type(claim, "Claim")
    if claim.get("use") != CLAIM_USE[event]:
        raise MessageBuildError(f"a {event} needs Claim.use={CLAIM_USE[event]!r}, not {claim.get('use')!r}")
    claim_type = code_of(claim.get("type"), canonical.CLAIM_TYPE)
    if claim_type not in CLAIM_TYPES:
        raise MessageBuildError(f"Claim.type must be one of {sorted(CLAIM_TYPES)}, not {claim_type!r}")
    return _build(event, claim, _reference(claim.get("insurer")), resolve, config, clock)


def _build(
    event: Event, focus: dict, payer_ref: str | None, resolve: Resolver, config: ProviderConfig, clock: Clock
) -> Message:
    payer = resolve(payer_ref) if payer_ref else None
    return assemble(event, focus, resolve, config, receiver_for(event, payer, config), clock)


def _reference(element: object) -> str | None:
    value = element.get("reference") if isinstance(element, dict) else None
    return value if isinstance(value, str) else None


def _require_type(resource: dict, resource_type: str) -> None:
    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
        raise MessageBuildError(f"expected a {resource_type}, got {resource.get('resourceType')!r}")
