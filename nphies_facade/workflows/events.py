"""Workflow events: `emit` records a named event about a focus resource, atomically with the write that
caused it, so Subscriptions on the event's topic are notified (see subscriptions/topics.py).

Every event is a `Basic` event record written through FhirService: it goes through the outbox like any
change, it is readable and searchable (`GET Basic?code=http://nphies-facade.org/fhir/CodeSystem/
workflow-event|claim.paid`), and a rolled-back transaction emits nothing.
"""

from datetime import UTC

from ..resources.clock import fhir_instant
from ..resources.context import RequestContext
from ..resources.service import FhirService
from ..resources.store import StoreTransaction
from ..subscriptions.topics import (
    DATA_EXTENSION,
    EVENT_RESOURCE,
    EVENT_SYSTEM,
    EVENTS,
    FOCUS_EXTENSION,
    TIME_EXTENSION,
    TOPIC_BASE,
    TOPIC_EXTENSION,
    TRACE_EXTENSION,
    topic_url,
)

EVENTS_ACTOR = "nphies-facade:workflow-events"

__all__ = ["EVENTS", "TOPIC_BASE", "TRACE_EXTENSION", "emit", "event_record", "topic_url", "trace_extension"]


def trace_extension(trace_id: str) -> dict:
    """The extension that carries the W3C trace id on the resources a traced request writes."""
    return {"url": TRACE_EXTENSION, "valueString": trace_id}


def _data_value(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"url": key, "valueBoolean": value}
    if isinstance(value, int):
        return {"url": key, "valueInteger": value}
    if isinstance(value, float):
        return {"url": key, "valueDecimal": value}
    return {"url": key, "valueString": str(value)}


def event_record(name: str, focus: str, version: int | None, at: str, trace_id: str, data: dict) -> dict:
    """The Basic resource that stores one event."""
    versioned = f"{focus}/_history/{version}" if version else focus
    extensions = [
        {"url": TOPIC_EXTENSION, "valueUri": topic_url(name)},
        {"url": FOCUS_EXTENSION, "valueReference": {"reference": versioned}},
        {"url": TIME_EXTENSION, "valueInstant": at},
        trace_extension(trace_id),
    ]
    if data:
        extensions.append(
            {
                "url": DATA_EXTENSION,
                "extension": [_data_value(str(k), v) for k, v in data.items() if v is not None],
            }
        )
    return {
        "resourceType": EVENT_RESOURCE,
        "extension": extensions,
        "code": {"coding": [{"system": EVENT_SYSTEM, "code": name, "display": EVENTS[name]}]},
        "subject": {"reference": focus},
        "created": at[:10],
    }


def _check(name: str, focus: str) -> None:
    if name not in EVENTS:
        raise ValueError(f"unknown workflow event {name!r}; known: {', '.join(EVENTS)}")
    resource_type, _, resource_id = focus.partition("/")
    if not resource_type or not resource_id or "/" in resource_id:
        raise ValueError(f"an event's focus is a reference Type/id, not {focus!r}")


async def emit(
    service: FhirService,
    name: str,
    focus: str,
    *,
    ctx: RequestContext,
    tx: StoreTransaction | None = None,
    data: dict | None = None,
) -> None:
    """Records event `name` about `focus` ("Claim/1"): in `tx` when given, so it commits (or rolls back)
    with the write that causes it. The focus version current in that transaction is the one notified.
    The record is written by the server's events actor, keeping the caller's trace id."""
    _check(name, focus)
    actor = RequestContext(actor=EVENTS_ACTOR, scopes=("system/*.*",), trace_id=ctx.trace_id)
    at = fhir_instant(service.clock().astimezone(UTC))
    async with service.transaction(tx) as t:
        resource_type, _, resource_id = focus.partition("/")
        current = await t.current(resource_type, resource_id)
        version = current.version if current is not None and not current.deleted else None
        record = event_record(name, focus, version, at, ctx.trace_id, dict(data or {}))
        await service.create(actor, record, tx=t)
