"""Replays the NPHIES conformance cases (conformance.py) through the gateway against the simulator."""

import httpx
import pytest

from nphies_facade.nphies import canonical
from nphies_facade.nphies.fhirjson import first_identifier
from nphies_facade.nphies.gateway import NphiesGateway, Outcome
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
    answers,
)

from .conformance import CASES, Case
from .samples import Scenario, scenario


def _params() -> list:
    return [
        pytest.param(case, id=case.id, marks=[] if case.supported else [pytest.mark.skip(reason=case.note)])
        for case in CASES
    ]


def _prepare(case: Case, provider: str) -> Scenario:
    prepared = scenario(
        case.sample,
        provider=provider,
        member=case.member,
        priority=case.priority,
        item_codes=case.item_codes,
        item_count=case.item_count,
        related_prior=case.related_prior,
    )
    focus = prepared.focus
    if case.purposes:
        focus["purpose"] = list(case.purposes)
    if case.newborn:
        focus.setdefault("extension", []).append(
            {"url": canonical.extension_url("newborn"), "valueBoolean": True}
        )
        prepared.patient()["identifier"] = [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
                "system": "http://provider.test/identifiers/mrn",
                "value": "MRN-0001",
            }
        ]
    if case.transfer:
        focus.setdefault("extension", []).append(
            {"url": canonical.extension_url("transfer"), "valueBoolean": True}
        )
    return prepared


class Run:
    """One case being replayed: the provider's side of the conversation."""

    def __init__(self, case: Case, gateway: NphiesGateway, prepared: Scenario):
        self.case, self.gateway, self.prepared = case, gateway, prepared
        self.information_request: CommunicationRequestResult | None = None
        self.payment: PaymentReconciliationResult | None = None

    async def send(self, message):
        exchange = await self.gateway.send(message)
        assert exchange.outcome is Outcome.ANSWERED, exchange.error
        parsed = exchange.parsed()
        assert answers(parsed, message.bundle)
        return parsed

    async def poll(self, event: str):
        polled = await self.send(build_poll_request(self.prepared.config, include=[event]))
        assert len(polled.messages) == 1, f"{self.case.id}: expected one {event}, got {polled.messages}"
        return polled.messages[0]

    def communication(self, based_on: CommunicationRequestResult | None) -> dict:
        focus = self.prepared.focus
        communication = {
            "resourceType": "Communication",
            "id": "comm-1",
            "identifier": [{"system": "http://provider.test/communication", "value": f"comm-{focus['id']}"}],
            "status": "completed",
            "subject": focus["patient"],
            "about": [{"type": "Claim", "identifier": focus["identifier"][0]}],
            "recipient": [focus["insurer"]],
            "sender": focus["provider"],
            "payload": [
                {
                    "extension": [{"url": canonical.CLAIM_ITEM_SEQUENCE_EXT, "valuePositiveInt": 1}],
                    "contentString": "supporting information",
                }
            ],
        }
        if based_on:
            communication["basedOn"] = [
                {"type": "CommunicationRequest", "identifier": based_on.identifier.to_fhir()}
            ]
        return communication

    async def step(self, step: str) -> None:
        action, _, detail = step.partition(" ")
        prepared = self.prepared
        if action == "communication" or action == "reply":
            based_on = self.information_request if action == "reply" else None
            acknowledgement = await self.send(
                build_communication(self.communication(based_on), prepared.resolve, prepared.config)
            )
            assert isinstance(acknowledgement, Acknowledgement) and acknowledgement.ok
        elif action == "poll" and detail == "communication-request":
            self.information_request = await self.poll(detail)
            assert self.information_request.about == (first_identifier(prepared.focus),)
        elif action == "poll" and detail == "payment-reconciliation":
            self.payment = await self.poll(detail)
            assert self.payment.details[0].request == first_identifier(prepared.focus)
        elif action == "poll" and detail == "advanced-authorization":
            apa = await self.poll(detail)
            assert isinstance(apa, ClaimResponseResult) and apa.outcome == "complete"
        elif action == "poll":
            event = (
                "priorauth-response" if prepared.focus.get("use") == "preauthorization" else "claim-response"
            )
            final = await self.poll(event)
            assert isinstance(final, ClaimResponseResult) and final.request == first_identifier(
                prepared.focus
            )
            assert (final.outcome, final.adjudication_outcome) == ("complete", detail)
        elif action == "payment-notice":
            notice = _payment_notice(prepared, self.payment)
            acknowledgement = await self.send(build_payment_notice(notice, prepared.resolve, prepared.config))
            assert isinstance(acknowledgement, Acknowledgement) and acknowledgement.ok
        elif action == "cancel":
            answer = await self.send(build_cancel_request(prepared.focus, prepared.resolve, prepared.config))
            assert (answer.event, answer.task_status, answer.ok) == ("cancel-response", "completed", True)
        elif action == "status":
            answer = await self.send(build_status_check(prepared.focus, prepared.resolve, prepared.config))
            assert answer.status == detail
        else:
            raise AssertionError(f"unknown step {step!r}")


def _payment_notice(prepared: Scenario, payment: PaymentReconciliationResult | None) -> dict:
    assert payment is not None, "payment-notice needs a polled payment-reconciliation"
    return {
        "resourceType": "PaymentNotice",
        "id": "notice-1",
        "identifier": [{"system": "http://provider.test/paymentnotice", "value": prepared.focus["id"]}],
        "status": "active",
        "created": str(payment.payment_date),
        "provider": prepared.focus["provider"],
        "payment": {"identifier": payment.identifier.to_fhir()},
        "paymentDate": str(payment.payment_date),
        "recipient": {
            "type": "Organization",
            "identifier": {"system": canonical.NPHIES_LICENSE, "value": "NPHIES"},
        },
        "amount": {"value": payment.amount, "currency": "SAR"},
        "paymentStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/paymentstatus", "code": "cleared"}]
        },
    }


def _check_answer(case: Case, answer) -> None:
    expected, _, code = case.answer.partition(" ")
    if expected == "error":
        assert (answer.outcome, [e.code for e in answer.errors]) == ("error", [code])
    elif isinstance(answer, EligibilityResponse):
        assert (answer.outcome, answer.site_eligibility) == ("complete", expected)
        assert answer.inforce is (expected == "eligible")
        assert len(answer.insurances) == (2 if code == "x2" else 1)
    elif expected == "queued":
        assert (answer.outcome, answer.adjudication_outcome) == ("queued", "pended")
    else:
        assert (answer.outcome, answer.adjudication_outcome) == ("complete", expected)


@pytest.mark.parametrize("case", _params())
async def test_conformance_case(
    case: Case, gateway: NphiesGateway, provider: str, control: httpx.AsyncClient
) -> None:
    prepared = _prepare(case, provider)
    run = Run(case, gateway, prepared)
    if case.answer == "apa":
        response = await control.post("/__simulator/advanced-authorization", json={"provider": provider})
        response.raise_for_status()
    else:
        _check_answer(case, await run.send(prepared.message()))
    for step in case.steps:
        await run.step(step)
    remaining = await run.send(build_poll_request(prepared.config, count=100))
    assert [m.event for m in remaining.messages if m.event != "payment-reconciliation"] == []
