"""Every example message parses; the requests NPHIES rejected get the same errors from the simulator."""

import hashlib
import json

import pytest

from nphies_facade.nphies.events import PROVIDER_EVENTS
from nphies_facade.nphies.parsing import (
    ClaimResponseResult,
    EligibilityResponse,
    OperationOutcomeResult,
    PollResponse,
    TaskResult,
    UnknownMessage,
    parse_response,
)
from nphies_facade.nphies.simulator import Payer, SimulatorSettings, validate_message

from .samples import example, example_names

# request -> NPHIES's answer to it (MessageHeader.response.identifier = request MessageHeader.id), SOURCES.md
REJECTED_PAIRS = [
    ("oba_claim-request_pair-D.json", "oba_claim-response_error_BV-00221_pair-D.json"),
    ("oba_communication_pair-E.json", "oba_acknowledgement_fatal-error_BV-00148_pair-E.json"),
    ("oba_status-check_invalid_pair-G.json", "oba_status-response_fatal-error_pair-G.json"),
]
ACCEPTED_PAIRS = [
    ("oba_priorauth-request_pair-A.json", "oba_priorauth-response_approved_pair-A.json"),
    ("oba_priorauth-request_pair-B.json", "oba_priorauth-response_queued_pair-B.json"),
    ("oba_claim-request_pair-C.json", "oba_claim-response_approved_pair-C.json"),
    ("oba_poll-request_pair-F.json", "oba_poll-response_empty_pair-F.json"),
]


def _answer(payer: Payer, name: str):
    raw = json.dumps(example(name)).encode()
    return payer.process(json.loads(raw), hashlib.sha256(raw).hexdigest())


@pytest.mark.parametrize("name", example_names())
def test_every_example_parses_into_a_typed_result(name: str) -> None:
    parsed = parse_response(example(name))
    if isinstance(parsed, OperationOutcomeResult):
        assert parsed.errors
        return
    assert parsed.header.id and parsed.event
    if parsed.event in PROVIDER_EVENTS:
        assert isinstance(parsed, UnknownMessage) and parsed.focus_type
    else:
        assert not isinstance(parsed, UnknownMessage)


def test_the_requests_nphies_accepted_pass_the_simulators_validation() -> None:
    for request, _ in ACCEPTED_PAIRS:
        verdict = validate_message(example(request))
        assert not verdict.fatal and not verdict.errors, request


@pytest.mark.parametrize(("request_name", "response_name"), REJECTED_PAIRS)
def test_requests_nphies_rejected_get_the_same_errors_from_the_simulator(
    request_name: str, response_name: str
) -> None:
    nphies = parse_response(example(response_name))
    reply = _answer(Payer(SimulatorSettings()), request_name)
    simulated = parse_response(reply.body)
    assert reply.status == 200
    assert simulated.event == nphies.event
    assert simulated.header.response_code == nphies.header.response_code
    assert {e.code for e in simulated.errors} == {e.code for e in nphies.errors}
    where = {e.code: e.expression.lower() for e in nphies.errors if e.expression}
    assert {e.code: e.expression.lower() for e in simulated.errors if e.code in where} == where


@pytest.mark.parametrize(("request_name", "response_name"), ACCEPTED_PAIRS)
def test_requests_nphies_accepted_get_the_same_kind_of_answer(request_name: str, response_name: str) -> None:
    nphies = parse_response(example(response_name))
    simulated = parse_response(_answer(Payer(SimulatorSettings()), request_name).body)
    assert (simulated.event, simulated.errors) == (nphies.event, ())
    assert simulated.header.response_to == example(request_name)["entry"][0]["resource"]["id"]
    if isinstance(nphies, ClaimResponseResult):
        assert (simulated.outcome, simulated.adjudication_outcome) == (
            nphies.outcome,
            nphies.adjudication_outcome,
        )
        assert simulated.request == nphies.request


def test_the_bare_operation_outcome_carries_its_nphies_code() -> None:
    parsed = parse_response(example("oba_operationoutcome_only_BV-00167.json"))
    assert isinstance(parsed, OperationOutcomeResult)
    assert [e.code for e in parsed.errors] == ["BV-00167"]


def test_eligibility_answers_parse_to_eligible_out_of_network_and_member_not_found() -> None:
    eligible = parse_response(example("oba_eligibility-response_complete_eligible.json"))
    out = parse_response(example("official_eligibility-response_discovery_out-network.json"))
    missing = parse_response(example("official_eligibility-response_discovery_error.json"))
    assert isinstance(eligible, EligibilityResponse) and eligible.eligible and eligible.inforce
    assert any(b.allowed == 500000 for b in eligible.insurances[0].benefits)
    assert (out.outcome, out.site_eligibility, out.eligible) == ("complete", "out-network", False)
    assert (missing.outcome, [e.code for e in missing.errors]) == ("error", ["1658"])


def test_claim_responses_parse_items_totals_and_the_claim_they_answer() -> None:
    partial = parse_response(example("oba_priorauth-response_complete_partial.json"))
    assert isinstance(partial, ClaimResponseResult)
    assert (partial.outcome, partial.adjudication_outcome, partial.final) == ("complete", "partial", True)
    assert [i.outcome for i in partial.items] == ["rejected", "approved", "approved"]
    assert partial.items[0].reasons == ("AD-1-9",) and partial.totals["benefit"] == 20
    assert partial.request.value == "DUP-1766047159290" and partial.pre_auth_ref
    queued = parse_response(example("oba_claim-response_queued_pended.json"))
    assert queued.queued and not queued.final


def test_poll_responses_carry_their_nested_messages() -> None:
    kinds = {
        "official_poll-response.json": "claim-response",
        "oba_poll-response_priorauth-response.json": "priorauth-response",
        "oba_poll-response_communication-request.json": "communication-request",
        "oba_poll-response_payment-reconciliation.json": "payment-reconciliation",
        "oba_poll-response_advanced-authorization.json": "advanced-authorization",
    }
    for name, event in kinds.items():
        parsed = parse_response(example(name))
        assert isinstance(parsed, PollResponse) and parsed.task_status == "completed"
        assert [m.event for m in parsed.messages] == [event], name
    empty = parse_response(example("oba_poll-response_empty_pair-F.json"))
    failed = parse_response(example("oba_poll-response_fatal-error_task-errors.json"))
    assert empty.messages == () and empty.ok
    assert failed.task_status == "failed" and {e.code for e in failed.errors} >= {"RE-00169", "RE-00170"}


def test_status_and_cancel_responses_parse_to_task_results() -> None:
    status = parse_response(example("official_status-response.json"))
    cancel = parse_response(example("official_cancel-response.json"))
    assert isinstance(status, TaskResult) and (status.code, status.status) == ("status", "complete")
    assert isinstance(cancel, TaskResult) and (cancel.code, cancel.task_status) == ("cancel", "completed")
    assert cancel.focus.value == "req_00112482930"
