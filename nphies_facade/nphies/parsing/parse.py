"""Parses what NPHIES answers ($process-message response bodies) into the typed results of results.py."""

from typing import Any

from .. import canonical
from ..events import FOCAL_TYPE, Event
from ..fhirjson import Identifier, code_of, codings, extension_value, first_identifier, has_tag, money
from ..references import BundleIndex
from .results import (
    Acknowledgement,
    BatchResponse,
    Benefit,
    ClaimResponseResult,
    CommunicationRequestResult,
    EligibilityResponse,
    Header,
    InsuranceStatus,
    ItemAdjudication,
    NphiesError,
    OperationOutcomeResult,
    ParsedResponse,
    PaymentDetail,
    PaymentReconciliationResult,
    PollResponse,
    Response,
    TaskResult,
    UnknownMessage,
)


class ParseError(ValueError):
    """The body is neither a message Bundle nor an OperationOutcome."""


def parse_response(payload: Any) -> ParsedResponse:
    """The typed result of a response body (a message Bundle, or a bare OperationOutcome)."""
    if not isinstance(payload, dict):
        raise ParseError("the response is not a JSON object")
    if payload.get("resourceType") == "OperationOutcome":
        return OperationOutcomeResult(tuple(outcome_errors(payload)), payload)
    if payload.get("resourceType") != "Bundle":
        raise ParseError(f"expected a Bundle or OperationOutcome, got {payload.get('resourceType')!r}")
    return parse_message(payload)


def parse_message(bundle: dict) -> Response:
    index = BundleIndex(bundle)
    if not index.entries or index.resource(0).get("resourceType") != "MessageHeader":
        raise ParseError("the Bundle's first entry is not a MessageHeader")
    header_resource = index.resource(0)
    header = _header(header_resource)
    focus = _focus(index, header_resource)
    parser = _PARSERS.get(header.event)
    if parser is None:
        return UnknownMessage(
            header, bundle, focus_type=focus.get("resourceType"), identifier=first_identifier(focus)
        )
    return parser(header, bundle, focus, index)


def outcome_errors(outcome: dict) -> list[NphiesError]:
    """Errors of an OperationOutcome: each issue's detail codes with its expression."""
    errors = []
    for issue in outcome.get("issue") or []:
        expression = next(iter(issue.get("expression") or []), None)
        details = list(codings(issue.get("details")))
        for coding in details or [{}]:
            code = coding.get("code") or issue.get("code") or "unknown"
            display = (
                coding.get("display") or (issue.get("details") or {}).get("text") or issue.get("diagnostics")
            )
            errors.append(NphiesError(code, display, expression, issue.get("severity", "error")))
    return errors


def _header(resource: dict) -> Header:
    response = resource.get("response") or {}
    destination = next(iter(resource.get("destination") or []), {})
    return Header(
        id=str(resource.get("id")),
        event=code_of(resource.get("eventCoding")) or "",
        sender=((resource.get("sender") or {}).get("identifier") or {}).get("value"),
        receiver=((destination.get("receiver") or {}).get("identifier") or {}).get("value"),
        response_to=response.get("identifier"),
        response_code=response.get("code"),
        queued_messages=has_tag(resource, "queued-messages"),
        nphies_generated=((resource.get("sender") or {}).get("identifier") or {}).get("value")
        == canonical.NPHIES_ID,
    )


def _focus(index: BundleIndex, header: dict) -> dict:
    """The focal resource; poll-responses carry no MessageHeader.focus, so then the first of the focal type."""
    for focus in header.get("focus") or []:
        reference = focus.get("reference") if isinstance(focus, dict) else None
        if isinstance(reference, str):
            found = index.resolve_resource(reference, 0)
            if found:
                return found
    wanted = FOCAL_TYPE.get(code_of(header.get("eventCoding")) or "")
    for position in range(1, len(index.entries)):
        if index.resource(position).get("resourceType") == wanted:
            return index.resource(position)
    return {}


def _coded_errors(errors: list[dict]) -> tuple[NphiesError, ...]:
    """ClaimResponse.error / CoverageEligibilityResponse.error: code plus the error-expression extension."""
    found = []
    for error in errors or []:
        for coding in codings(error.get("code")):
            expression = extension_value(coding, canonical.ERROR_EXPRESSION) or extension_value(
                error, canonical.ERROR_EXPRESSION
            )
            found.append(NphiesError(str(coding.get("code")), coding.get("display"), expression))
    return tuple(found)


def _details_errors(header_resource: dict, index: BundleIndex) -> tuple[NphiesError, ...]:
    details = ((header_resource.get("response") or {}).get("details") or {}).get("reference")
    outcome = index.resolve_resource(details, 0) if isinstance(details, str) else None
    if outcome is None:
        outcome = next(
            (
                index.resource(i)
                for i in range(len(index.entries))
                if index.resource(i).get("resourceType") == "OperationOutcome"
            ),
            None,
        )
    return tuple(outcome_errors(outcome)) if outcome else ()


def _task_errors(task: dict) -> tuple[NphiesError, ...]:
    found = []
    for output in task.get("output") or []:
        if code_of(output.get("type")) != "error":
            continue
        for coding in codings(output.get("valueCodeableConcept")):
            expression = extension_value(coding, canonical.ERROR_EXPRESSION)
            found.append(NphiesError(str(coding.get("code")), coding.get("display"), expression))
    return tuple(found)


def _eligibility(header: Header, bundle: dict, focus: dict, index: BundleIndex) -> EligibilityResponse:
    insurances = tuple(
        InsuranceStatus(
            coverage=(insurance.get("coverage") or {}).get("reference"),
            inforce=insurance.get("inforce"),
            site_eligibility=code_of(extension_value(insurance, canonical.SITE_ELIGIBILITY_EXT)),
            benefits=tuple(_benefits(insurance)),
        )
        for insurance in focus.get("insurance") or []
    )
    site = code_of(extension_value(focus, canonical.SITE_ELIGIBILITY_EXT))
    if site is None and insurances:
        site = insurances[0].site_eligibility
    return EligibilityResponse(
        header,
        bundle,
        _coded_errors(focus.get("error")),
        outcome=focus.get("outcome"),
        disposition=focus.get("disposition"),
        identifier=first_identifier(focus),
        request=Identifier.from_fhir((focus.get("request") or {}).get("identifier")),
        site_eligibility=site,
        insurances=insurances,
    )


def _benefits(insurance: dict) -> list[Benefit]:
    found = []
    for item in insurance.get("item") or []:
        for benefit in item.get("benefit") or [{}]:
            found.append(
                Benefit(
                    category=code_of(item.get("category")),
                    name=item.get("name"),
                    network=code_of(item.get("network")),
                    allowed=money(benefit.get("allowedMoney")),
                    used=money(benefit.get("usedMoney")),
                    benefit_type=code_of(benefit.get("type")),
                )
            )
    return found


def _claim_response(header: Header, bundle: dict, focus: dict, index: BundleIndex) -> ClaimResponseResult:
    period = focus.get("preAuthPeriod")
    return ClaimResponseResult(
        header,
        bundle,
        _coded_errors(focus.get("error")),
        outcome=focus.get("outcome"),
        adjudication_outcome=code_of(extension_value(focus, canonical.ADJUDICATION_OUTCOME_EXT)),
        disposition=focus.get("disposition"),
        identifier=first_identifier(focus),
        request=Identifier.from_fhir((focus.get("request") or {}).get("identifier")),
        use=focus.get("use"),
        claim_type=code_of(focus.get("type")),
        pre_auth_ref=focus.get("preAuthRef"),
        pre_auth_period=(period.get("start"), period.get("end")) if isinstance(period, dict) else None,
        items=tuple(_item(item) for item in focus.get("item") or []),
        totals={
            code_of(t.get("category")) or "?": money(t.get("amount")) or 0.0 for t in focus.get("total") or []
        },
        reissue_reason=code_of(extension_value(focus, canonical.extension_url("reissue-reason"))),
    )


def _item(item: dict) -> ItemAdjudication:
    amounts: dict[str, float] = {}
    reasons: list[str] = []
    approved_quantity = None
    for adjudication in item.get("adjudication") or []:
        category = code_of(adjudication.get("category")) or "?"
        if money(adjudication.get("amount")) is not None:
            amounts[category] = money(adjudication.get("amount")) or 0.0
        if category == "approved-quantity" and isinstance(adjudication.get("value"), int | float):
            approved_quantity = float(adjudication["value"])
        reason = code_of(adjudication.get("reason"))
        if reason:
            reasons.append(reason)
    return ItemAdjudication(
        sequence=item.get("itemSequence"),
        outcome=code_of(extension_value(item, canonical.ADJUDICATION_OUTCOME_EXT)),
        reasons=tuple(reasons),
        amounts=amounts,
        approved_quantity=approved_quantity,
    )


def _communication_request(
    header: Header, bundle: dict, focus: dict, index: BundleIndex
) -> CommunicationRequestResult:
    about = tuple(
        found
        for a in focus.get("about") or []
        if (found := Identifier.from_fhir((a or {}).get("identifier")))
    )
    payload = tuple(
        p["contentString"] for p in focus.get("payload") or [] if isinstance(p.get("contentString"), str)
    )
    return CommunicationRequestResult(
        header,
        bundle,
        identifier=first_identifier(focus),
        about=about,
        reasons=tuple(c for r in focus.get("reasonCode") or [] if (c := code_of(r))),
        payload=payload,
    )


def _payment_reconciliation(
    header: Header, bundle: dict, focus: dict, index: BundleIndex
) -> PaymentReconciliationResult:
    details = tuple(
        PaymentDetail(
            request=Identifier.from_fhir((d.get("request") or {}).get("identifier")),
            response=Identifier.from_fhir((d.get("response") or {}).get("identifier")),
            amount=money(d.get("amount")),
            date=d.get("date"),
        )
        for d in focus.get("detail") or []
    )
    return PaymentReconciliationResult(
        header,
        bundle,
        identifier=first_identifier(focus),
        outcome=focus.get("outcome"),
        payment_date=focus.get("paymentDate"),
        amount=money(focus.get("paymentAmount")),
        payment_identifier=Identifier.from_fhir(next(iter(focus.get("paymentIdentifier") or []), None)),
        details=details,
    )


def _acknowledgement(header: Header, bundle: dict, focus: dict, index: BundleIndex) -> Acknowledgement:
    return Acknowledgement(header, bundle, _details_errors(index.resource(0), index))


def _task(header: Header, bundle: dict, focus: dict, index: BundleIndex) -> TaskResult:
    status_output = next(
        (o.get("valueCode") for o in focus.get("output") or [] if code_of(o.get("type")) == "status"), None
    )
    return TaskResult(
        header,
        bundle,
        _task_errors(focus) or _details_errors(index.resource(0), index),
        task_status=focus.get("status"),
        code=code_of(focus.get("code")),
        focus=Identifier.from_fhir((focus.get("focus") or {}).get("identifier")),
        status=status_output,
    )


def _poll(header: Header, bundle: dict, focus: dict, index: BundleIndex) -> PollResponse:
    messages = []
    for output in focus.get("output") or []:
        reference = (output.get("valueReference") or {}).get("reference")
        nested = index.resolve_resource(reference, 0) if isinstance(reference, str) else None
        if nested and nested.get("resourceType") == "Bundle":
            messages.append(parse_message(nested))
    return PollResponse(
        header,
        bundle,
        _task_errors(focus) or _details_errors(index.resource(0), index),
        task_status=focus.get("status"),
        messages=tuple(messages),
    )


def _batch(header: Header, bundle: dict, focus: dict, index: BundleIndex) -> BatchResponse:
    nested = [index.resource(i) for i in range(1, len(index.entries))]
    messages = tuple(parse_message(b) for b in nested if b.get("resourceType") == "Bundle")
    return BatchResponse(header, bundle, _details_errors(index.resource(0), index), messages=messages)


_PARSERS = {
    Event.ELIGIBILITY_RESPONSE: _eligibility,
    Event.PRIORAUTH_RESPONSE: _claim_response,
    Event.CLAIM_RESPONSE: _claim_response,
    Event.ADVANCED_AUTHORIZATION: _claim_response,
    Event.COMMUNICATION_REQUEST: _communication_request,
    Event.PAYMENT_RECONCILIATION: _payment_reconciliation,
    Event.ACKNOWLEDGEMENT: _acknowledgement,
    Event.CANCEL_RESPONSE: _task,
    Event.STATUS_RESPONSE: _task,
    Event.POLL_RESPONSE: _poll,
    Event.BATCH_RESPONSE: _batch,
}
