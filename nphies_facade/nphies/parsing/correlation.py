"""Matching responses to requests: MessageHeader.response.identifier and ClaimResponse.request.identifier."""

from ..events import FOCAL_TYPE
from ..fhirjson import Identifier, first_identifier
from ..references import BundleIndex
from .results import ClaimResponseResult, ParsedResponse, Response


def header_id(bundle: dict) -> str | None:
    """The MessageHeader.id of a message Bundle: the correlation key of its answers."""
    entries = bundle.get("entry") or []
    resource = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    return (
        resource.get("id")
        if isinstance(resource, dict) and resource.get("resourceType") == "MessageHeader"
        else None
    )


def event_of(bundle: dict) -> str | None:
    entries = bundle.get("entry") or []
    resource = entries[0].get("resource") if entries and isinstance(entries[0], dict) else {}
    coding = (resource or {}).get("eventCoding") or {}
    return coding.get("code")


def focus_of(bundle: dict) -> dict | None:
    """The focal resource of a message (MessageHeader.focus[0] resolved in the bundle)."""
    index = BundleIndex(bundle)
    if not index.entries:
        return None
    focus = (index.resource(0).get("focus") or [{}])[0]
    reference = focus.get("reference") if isinstance(focus, dict) else None
    return index.resolve_resource(reference, 0) if isinstance(reference, str) else None


def request_identifier(bundle: dict) -> Identifier | None:
    """The business identifier of a request's focus (Claim.identifier, Task.identifier ...)."""
    focus = focus_of(bundle)
    event = event_of(bundle)
    if focus is None or (event in FOCAL_TYPE and focus.get("resourceType") != FOCAL_TYPE[event]):
        return None
    return first_identifier(focus)


def answers(response: ParsedResponse, request_bundle: dict) -> bool:
    """True when a response's MessageHeader.response.identifier names the request's MessageHeader.id."""
    return isinstance(response, Response) and response.header.response_to == header_id(request_bundle)


def answers_claim(response: ClaimResponseResult, claim_identifier: Identifier) -> bool:
    """True when ClaimResponse.request.identifier is the Claim's identifier (system compared when both set)."""
    found = response.request
    if found is None or found.value != claim_identifier.value:
        return False
    return found.system is None or claim_identifier.system is None or found.system == claim_identifier.system


def claim_responses_for(
    messages: tuple[Response, ...], claim_identifier: Identifier
) -> list[ClaimResponseResult]:
    """The claim or prior-auth responses among (e.g. polled) messages that answer one Claim."""
    return [m for m in messages if isinstance(m, ClaimResponseResult) and answers_claim(m, claim_identifier)]
