"""Workflow events as subscription topics (Subscriptions R5 Backport IG for R4).

A workflow event is stored as a `Basic` event record (code = the event, subject = its focus) written in
the transaction of the change that caused it, so it rides the outbox like any other write. A
Subscription whose `criteria` is a topic's canonical URL (optionally `?focus=Type/id`) is matched
against those records, and its notifications are backport notification Bundles: a SubscriptionStatus
Parameters entry naming the topic and the focus, then the focus as the event saw it.
"""

import uuid
from urllib.parse import parse_qsl, quote

import orjson

from .. import exact_json
from ..resources.errors import FhirError, Issue
from .notifications import NOTIFICATION_PROFILE, status_parameters

TOPIC_BASE = "http://nphies-facade.org/fhir/SubscriptionTopic/"
EVENT_SYSTEM = "http://nphies-facade.org/fhir/CodeSystem/workflow-event"
EXTENSION_BASE = "http://nphies-facade.org/fhir/StructureDefinition/"
TOPIC_EXTENSION = f"{EXTENSION_BASE}workflow-event-topic"
FOCUS_EXTENSION = f"{EXTENSION_BASE}workflow-event-focus"
TIME_EXTENSION = f"{EXTENSION_BASE}workflow-event-time"
DATA_EXTENSION = f"{EXTENSION_BASE}workflow-event-data"
TRACE_EXTENSION = f"{EXTENSION_BASE}trace-id"
EVENT_RESOURCE = "Basic"
TOPIC_FILTERS = {"focus": "subject"}  # topic filter -> search parameter of the event record

EVENTS: dict[str, str] = {
    "patient.registered": "A Patient with an active Coverage was registered; eligibility starts",
    "eligibility.verified": "The payer confirmed the coverage is eligible",
    "eligibility.failed": "Eligibility could not be confirmed; a manual review was opened",
    "claim.submitted": "A Claim was sent to NPHIES",
    "claim.adjudicated": "The payer adjudicated a Claim (ClaimResponse received)",
    "claim.paid": "A payment reconciliation marked a Claim paid",
    "claim.denied": "The payer denied a Claim",
    "claim.partially-paid": "The payer approved part of a Claim",
    "sla.breached": "A workflow step passed its SLA deadline and was escalated",
    "task.escalated": "An escalation Task was created for the next owner",
    "workflow.completed": "A workflow instance completed",
    "workflow.failed": "A workflow instance failed",
}


def topic_url(name: str) -> str:
    if name not in EVENTS:
        raise ValueError(f"unknown workflow event {name!r}")
    return f"{TOPIC_BASE}{name}"


def is_topic(criteria: object) -> bool:
    return isinstance(criteria, str) and criteria.strip().startswith(TOPIC_BASE)


def _invalid(diagnostics: str, code: str = "invalid") -> FhirError:
    return FhirError(400, [Issue(code, diagnostics, expression="Subscription.criteria")])


def topic_search(criteria: str) -> tuple[str, str]:
    """(topic name, the event-record search the topic criteria stands for); 400 when unknown."""
    url, _, query = criteria.strip().partition("?")
    name = url.removeprefix(TOPIC_BASE)
    if name not in EVENTS:
        raise _invalid(
            f"Subscription.criteria names an unknown topic {url!r}; the topics are "
            f"{TOPIC_BASE}{{{', '.join(EVENTS)}}}",
            "not-supported",
        )
    params = [f"code={EVENT_SYSTEM}|{name}"]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in TOPIC_FILTERS or not value:
            raise _invalid(
                f"A topic's criteria can only be filtered by {', '.join(TOPIC_FILTERS)} (e.g. ?focus=Claim/1), "
                f"not {key!r}",
                "not-supported",
            )
        params.append(f"{TOPIC_FILTERS[key]}={quote(value, safe='/:|,')}")
    return name, f"{EVENT_RESOURCE}?{'&'.join(params)}"


def with_topic(parameters: dict, subscription: dict) -> dict:
    """Names the topic in a SubscriptionStatus ($status, $events) of a Subscription on a topic."""
    criteria = subscription.get("criteria")
    if is_topic(criteria):
        topic = str(criteria).strip().partition("?")[0]
        parameters["parameter"].insert(1, {"name": "topic", "valueCanonical": topic})
    return parameters


def _extension(resource: dict, url: str) -> dict:
    for extension in resource.get("extension") or []:
        if extension.get("url") == url:
            return extension
    return {}


def event_focus(record: dict) -> tuple[str, int | None]:
    """The focus of an event record as (Type/id, version or None)."""
    reference = (_extension(record, FOCUS_EXTENSION).get("valueReference") or {}).get("reference") or ""
    if not reference:
        reference = (record.get("subject") or {}).get("reference") or ""
    path, _, version = reference.partition("/_history/")
    return path, int(version) if version.isdigit() else None


def notification(
    subscription_id: str,
    status: str,
    topic: str,
    number: int,
    record: dict,
    focus_body: bytes | None,
    timestamp: str,
    base: str,
) -> bytes:
    """The backport notification Bundle (type history) of one event; `focus_body` None leaves the
    focus resource out (a payload-less Subscription, or a focus that cannot be read)."""
    focus, version = event_focus(record)
    versioned = f"{focus}/_history/{version}" if version else focus
    event_parts = [
        {"name": "event-number", "valueString": str(number)},
        {
            "name": "timestamp",
            "valueInstant": _extension(record, TIME_EXTENSION).get("valueInstant", timestamp),
        },
        {"name": "focus", "valueReference": {"reference": versioned}},
        {"name": "additional-context", "valueReference": {"reference": f"Basic/{record.get('id')}"}},
    ]
    parameters = status_parameters(subscription_id, status, "event-notification", number)
    parameters["parameter"].insert(1, {"name": "topic", "valueCanonical": topic})
    parameters["parameter"].append({"name": "notification-event", "part": event_parts})
    entries = [
        {
            "fullUrl": f"urn:uuid:{parameters['id']}",
            "resource": parameters,
            "request": {"method": "GET", "url": f"Subscription/{subscription_id}/$status"},
            "response": {"status": "200"},
        }
    ]
    if focus_body is not None:
        entries.append(
            {
                "fullUrl": f"{base.rstrip('/')}/{focus}",
                "resource": orjson.Fragment(focus_body),
                "request": {"method": "PUT", "url": focus},
                "response": {"status": "200"},
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": timestamp,
        "entry": entries,
    }
    return exact_json.dumps(bundle)


def capability_extensions() -> list[dict]:
    """The topics a CapabilityStatement's Subscription entry lists (backport IG extension)."""
    url = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
    return [{"url": url, "valueCanonical": f"{TOPIC_BASE}{name}"} for name in EVENTS]
