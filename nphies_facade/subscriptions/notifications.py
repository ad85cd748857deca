"""FHIR payloads of the Subscriptions R5 Backport IG for R4: SubscriptionStatus Parameters and the
notification Bundles that carry them (handshake, $status, $events)."""

import uuid
from collections.abc import Sequence

import orjson

from ..resources.ledger import DeliveryAttempt, SubscriptionEvent, SubscriptionState

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
NOTIFICATION_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"
METHODS = {"create": ("POST", "201"), "update": ("PUT", "200"), "delete": ("DELETE", "204")}


def _event_parameter(event: SubscriptionEvent) -> dict:
    parts = [
        {"name": "event-number", "valueString": str(event.number)},
        {"name": "timestamp", "valueInstant": event.at},
        {"name": "focus", "valueReference": {"reference": event.focus}},
    ]
    return {"name": "notification-event", "part": parts}


def _attempt_parameter(attempt: DeliveryAttempt) -> dict:
    parts: list[dict] = [
        {"name": "event-number", "valueString": str(attempt.number)},
        {"name": "timestamp", "valueInstant": attempt.at},
        {"name": "channel", "valueCode": attempt.channel},
        {"name": "outcome", "valueCode": attempt.outcome},
        {"name": "actor", "valueString": attempt.actor},
    ]
    if attempt.status_code is not None:
        parts.append({"name": "http-status", "valueInteger": attempt.status_code})
    if attempt.duration_ms is not None:
        parts.append({"name": "duration-ms", "valueDecimal": round(attempt.duration_ms, 1)})
    if attempt.detail:
        parts.append({"name": "detail", "valueString": attempt.detail})
    if attempt.job_id:
        parts.append({"name": "job", "valueString": attempt.job_id})
    return {"name": "delivery-attempt", "part": parts}


def status_parameters(
    subscription_id: str,
    status: str,
    kind: str,
    events_total: int,
    *,
    error: str | None = None,
    events: Sequence[SubscriptionEvent] = (),
    state: SubscriptionState | None = None,
    attempts: Sequence[DeliveryAttempt] = (),
) -> dict:
    """A SubscriptionStatus; `kind` is handshake, event-notification, query-status or query-event."""
    parameters: list[dict] = [
        {"name": "subscription", "valueReference": {"reference": f"Subscription/{subscription_id}"}},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_total)},
    ]
    parameters += [_event_parameter(event) for event in events]
    if error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": error}})
    if state is not None:
        parameters.append({"name": "events-pending", "valueInteger": state.pending})
        parameters.append({"name": "events-dead", "valueInteger": state.dead})
        parameters.append({"name": "consecutive-failures", "valueInteger": state.failures})
    parameters += [_attempt_parameter(attempt) for attempt in attempts]
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def _status_entry(parameters: dict, subscription_id: str) -> dict:
    return {
        "fullUrl": f"urn:uuid:{parameters['id']}",
        "resource": parameters,
        "request": {"method": "GET", "url": f"Subscription/{subscription_id}/$status"},
        "response": {"status": "200"},
    }


def notification_bundle(parameters: dict, subscription_id: str, timestamp: str) -> dict:
    """A history Bundle whose first entry is the SubscriptionStatus (handshake and $events)."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": timestamp,
        "entry": [_status_entry(parameters, subscription_id)],
    }


def handshake_body(subscription_id: str, status: str, timestamp: str) -> bytes:
    parameters = status_parameters(subscription_id, status, "handshake", 0)
    return orjson.dumps(notification_bundle(parameters, subscription_id, timestamp))


def add_focus(bundle: dict, base: str, event: SubscriptionEvent, body: bytes | None) -> None:
    """Appends the resource an event is about, as it was written (a deletion has no resource)."""
    method, status = METHODS.get(event.action, ("PUT", "200"))
    entry: dict = {"fullUrl": f"{base}/{event.resource_type}/{event.resource_id}"}
    if body is not None:
        entry["resource"] = orjson.Fragment(body)
    url = event.resource_type if method == "POST" else f"{event.resource_type}/{event.resource_id}"
    entry["request"] = {"method": method, "url": url}
    entry["response"] = {"status": status}
    bundle["entry"].append(entry)


def status_bundle(parameters: dict, timestamp: str) -> dict:
    """$status answers a searchset Bundle of SubscriptionStatus resources."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": timestamp,
        "total": 1,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{parameters['id']}",
                "resource": parameters,
                "search": {"mode": "match"},
            }
        ],
    }
