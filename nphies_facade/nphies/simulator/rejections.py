"""NPHIES-generated answers carrying errors, shaped per event as in the rejected samples (pairs D, E, G)."""

from .. import canonical
from ..events import RESPONSE_TO, Event
from .adjudication import claim_response
from .catalog import Member, RuleError
from .eligibility import eligibility_response
from .request import Reply, Request, echo_task
from .responses import Party, coded_error, error_output, message, operation_outcome

TASK_REQUESTS = (Event.CANCEL_REQUEST, Event.STATUS_CHECK, Event.POLL_REQUEST)


def rejection(request: Request, errors: list[RuleError], queued_messages: bool = False) -> Reply:
    """eligibility-/claim-response outcome error, a failed Task (fatal-error), or a fatal acknowledgement."""
    nphies, event = Party.nphies(), request.event
    if event == Event.ELIGIBILITY_REQUEST:
        return _answer(
            request,
            _eligibility_error(request, nphies, errors),
            request.entries(request.focus.get("patient"), request.focus.get("insurer")),
            queued_messages,
        )
    if (
        event in (Event.PRIORAUTH_REQUEST, Event.CLAIM_REQUEST)
        and request.focus.get("resourceType") == "Claim"
    ):
        response = claim_response(
            request.focus, request.parties(), nphies.base_url, outcome="error", errors=errors
        )
        return _answer(
            request, nphies.new_entry(response, "claim-response"), request.party_entries(), queued_messages
        )
    if event in TASK_REQUESTS and request.focus:
        task = echo_task(request.focus, "failed")
        task["id"] = request.focus.get("id")
        meta = request.focus.get("meta")
        task["meta"] = {
            **(meta if isinstance(meta, dict) else {}),
            "tag": [dict(canonical.NPHIES_GENERATED_TAG)],
        }
        task["output"] = [error_output(e) for e in errors]
        index = request.verdict.index
        focus = (index.entries[request.verdict.focus_index].get("fullUrl"), task)
        return _answer(request, focus, request.task_entries(), queued_messages, "fatal-error")
    outcome = nphies.new_entry(operation_outcome(errors), None)
    body = message(
        Event.ACKNOWLEDGEMENT,
        nphies,
        request.addressee,
        None,
        [outcome],
        response_to=request.header_id,
        response_code="fatal-error",
        details=outcome[0],
    )
    return Reply(200, body, Event.ACKNOWLEDGEMENT)


def _eligibility_error(request: Request, nphies: Party, errors: list[RuleError]) -> tuple[str, dict]:
    patient = request.entry(request.focus.get("patient"))
    insurer = request.entry(request.focus.get("insurer"))
    response, _ = eligibility_response(
        request.focus,
        Member(None, "not-found"),
        nphies,
        patient and patient[0],
        insurer and insurer[0],
        [],
        [],
    )
    response["error"] = [coded_error(e) for e in errors]
    response.pop("disposition", None)
    return nphies.new_entry(response, "eligibility-response")


def _answer(
    request: Request, focus: tuple[str, dict], entries: list, queued_messages: bool, code: str = "ok"
) -> Reply:
    event = RESPONSE_TO.get(request.event, Event.ACKNOWLEDGEMENT)
    body = message(
        event,
        Party.nphies(),
        request.addressee,
        focus,
        entries,
        response_to=request.header_id,
        response_code=code,
        queued_messages=queued_messages,
    )
    return Reply(200, body, event)
