"""End to end over real HTTP on loopback: builders -> gateway -> simulator -> parsed answers."""

from nphies_facade.nphies.fhirjson import first_identifier
from nphies_facade.nphies.gateway import Outcome
from nphies_facade.nphies.messages import (
    build_cancel_request,
    build_communication,
    build_payment_notice,
    build_poll_request,
    build_status_check,
)
from nphies_facade.nphies.parsing import (
    Acknowledgement,
    ClaimResponseResult,
    CommunicationRequestResult,
    EligibilityResponse,
    PaymentReconciliationResult,
    PollResponse,
    TaskResult,
    answers,
    answers_claim,
    claim_responses_for,
)

from .samples import Scenario, scenario

ELIGIBILITY = "official_eligibility-request_benefits-validation.json"
DISCOVERY = "official_eligibility-request_discovery.json"


async def _send(gateway, message):
    exchange = await gateway.send(message)
    assert exchange.outcome is Outcome.ANSWERED, exchange.error
    parsed = exchange.parsed()
    assert answers(parsed, message.bundle)
    return parsed


async def _poll(gateway, case: Scenario, **filters) -> PollResponse:
    polled = await _send(gateway, build_poll_request(case.config, **filters))
    assert isinstance(polled, PollResponse) and polled.ok
    return polled


async def test_eligibility_of_any_member_is_eligible_and_in_force(gateway, provider) -> None:
    answer = await _send(gateway, scenario(ELIGIBILITY, provider=provider).message())
    assert isinstance(answer, EligibilityResponse)
    assert (answer.outcome, answer.site_eligibility, answer.inforce) == ("complete", "eligible", True)
    assert answer.insurances[0].benefits and answer.header.sender == "N-I-00001"


async def test_eligibility_of_a_policy_not_active_is_not_in_force(gateway, provider) -> None:
    answer = await _send(gateway, scenario(ELIGIBILITY, provider=provider, member="2555555550").message())
    assert (answer.outcome, answer.site_eligibility, answer.inforce, answer.eligible) == (
        "complete",
        "not-active",
        False,
        False,
    )


async def test_eligibility_of_an_unknown_member_is_error_1658(gateway, provider) -> None:
    answer = await _send(gateway, scenario(DISCOVERY, provider=provider, member="2333333333").message())
    assert (answer.outcome, [e.code for e in answer.errors]) == ("error", ["1658"])


async def test_eligibility_out_of_network(gateway, provider) -> None:
    answer = await _send(gateway, scenario(ELIGIBILITY, provider=provider, member="2666666660").message())
    assert (answer.site_eligibility, answer.eligible) == ("out-network", False)


async def test_prior_auth_approved_partial_and_rejected_at_once(gateway, provider) -> None:
    approved = scenario("official_priorauth-request_vision.json", provider=provider)
    partial = scenario(
        "official_priorauth-request_pharmacy.json",
        provider=provider,
        item_codes=("06285097000056", "06285096000798", "99999999999999"),
    )
    rejected = scenario(
        "official_priorauth-request_pharmacy.json", provider=provider, item_codes=("06285096000798",)
    )
    outcomes = []
    for case in (approved, partial, rejected):
        answer = await _send(gateway, case.message())
        assert isinstance(answer, ClaimResponseResult) and answer.outcome == "complete"
        assert answers_claim(answer, first_identifier(case.focus))
        outcomes.append((answer.adjudication_outcome, [i.outcome for i in answer.items]))
    assert outcomes[0][0] == "approved" and outcomes[0][1] and set(outcomes[0][1]) == {"approved"}
    assert outcomes[1] == ("partial", ["approved", "rejected", "approved"])
    assert outcomes[2] == ("rejected", ["rejected"])


async def test_deferred_prior_auth_is_queued_then_polled(gateway, provider) -> None:
    case = scenario("official_priorauth-request_institutional.json", provider=provider, priority="deferred")
    request = case.message()
    queued = await _send(gateway, request)
    assert (queued.outcome, queued.adjudication_outcome, queued.queued) == ("queued", "pended", True)
    polled = await _poll(gateway, case, include=["priorauth-response"])
    [final] = claim_responses_for(polled.messages, first_identifier(case.focus))
    assert (final.outcome, final.adjudication_outcome, final.pre_auth_ref is not None) == (
        "complete",
        "approved",
        True,
    )
    assert final.header.response_to == request.header_id
    assert (await _poll(gateway, case)).messages == ()


async def test_information_request_then_solicited_communication_releases_the_answer(
    gateway, provider
) -> None:
    case = scenario("official_priorauth-request_professional.json", provider=provider, priority="deferred")
    await _send(gateway, case.message())
    [request] = (await _poll(gateway, case, include=["communication-request"])).messages
    assert isinstance(request, CommunicationRequestResult) and request.about[0] == first_identifier(
        case.focus
    )
    assert (await _poll(gateway, case, include=["priorauth-response"])).messages == ()
    communication = {
        "resourceType": "Communication",
        "id": "c1",
        "identifier": [{"system": "http://provider.test/communication", "value": "c1"}],
        "basedOn": [{"type": "CommunicationRequest", "identifier": request.identifier.to_fhir()}],
        "status": "completed",
        "subject": case.focus["patient"],
        "about": [{"type": "Claim", "identifier": case.focus["identifier"][0]}],
        "recipient": [case.focus["insurer"]],
        "sender": case.focus["provider"],
        "payload": [{"contentString": "lab report attached"}],
    }
    acknowledgement = await _send(gateway, build_communication(communication, case.resolve, case.config))
    assert isinstance(acknowledgement, Acknowledgement) and acknowledgement.ok
    [final] = (await _poll(gateway, case)).messages
    assert final.event == "priorauth-response" and final.adjudication_outcome == "approved"


async def test_paid_claim_is_reconciled_on_poll_and_acknowledged_by_payment_notice(gateway, provider) -> None:
    case = scenario("official_claim-request_oral.json", provider=provider)
    answer = await _send(gateway, case.message())
    assert answer.adjudication_outcome == "approved" and answer.totals["benefit"] > 0
    [payment] = (await _poll(gateway, case, include=["payment-reconciliation"])).messages
    assert isinstance(payment, PaymentReconciliationResult)
    assert (
        payment.details[0].request == first_identifier(case.focus)
        and payment.amount == answer.totals["benefit"]
    )
    notice = {
        "resourceType": "PaymentNotice",
        "id": "n1",
        "identifier": [{"system": "http://provider.test/paymentnotice", "value": "n1"}],
        "status": "active",
        "created": "2025-01-01",
        "provider": case.focus["provider"],
        "payment": {"identifier": payment.identifier.to_fhir()},
        "paymentDate": "2025-01-01",
        "recipient": {
            "type": "Organization",
            "identifier": {"system": "http://nphies.sa/license/nphies", "value": "NPHIES"},
        },
        "amount": {"value": payment.amount, "currency": "SAR"},
        "paymentStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/paymentstatus", "code": "cleared"}]
        },
    }
    acknowledgement = await _send(gateway, build_payment_notice(notice, case.resolve, case.config))
    assert isinstance(acknowledgement, Acknowledgement) and acknowledgement.ok


async def test_status_check_and_cancel_of_a_claim(gateway, provider) -> None:
    case = scenario("official_claim-request_institutional.json", provider=provider, priority="deferred")
    await _send(gateway, case.message())
    status = await _send(gateway, build_status_check(case.focus, case.resolve, case.config))
    assert isinstance(status, TaskResult) and status.status == "complete"
    cancelled = await _send(gateway, build_cancel_request(case.focus, case.resolve, case.config, reason="WI"))
    assert (cancelled.event, cancelled.task_status, cancelled.ok) == ("cancel-response", "completed", True)
    again = await _send(gateway, build_cancel_request(case.focus, case.resolve, case.config, reason="WI"))
    assert (again.task_status, [e.code for e in again.errors]) == ("failed", ["BV-00445"])
    assert (
        await _send(gateway, build_status_check(case.focus, case.resolve, case.config))
    ).status == "cancelled"


async def test_unknown_claim_status_and_duplicate_claims_are_refused(gateway, provider) -> None:
    case = scenario("official_claim-request_vision.json", provider=provider)
    unknown = await _send(gateway, build_status_check(case.focus, case.resolve, case.config))
    assert [e.code for e in unknown.errors] == ["BV-00459"]
    await _send(gateway, case.message())
    duplicate = await _send(gateway, case.message())
    assert (duplicate.outcome, [e.code for e in duplicate.errors]) == ("error", ["BV-00163"])
