"""Exchange records: each message sent to NPHIES, what came back, and how it went, as a DocumentReference.

A record is written through FhirService like any resource and linked from the Task (or request) it
belongs to. Its `type` is the message event, its `category` the gateway outcome (sending, answered,
rejected, failed, unknown, malformed), `identifier` the correlation id (request MessageHeader.id),
`date` when it was sent, `subject` the patient, `context.related` the Task or CoverageEligibilityRequest
it was for. Its attachments hold the request message Bundle, the answer (FHIR JSON, or the text of an
unreadable body) and a JSON summary: status, timing, every attempt, and which stored resource each fullUrl
of the request stands for, so later answers (polled ones) can be related to our resources.

A DocumentReference, not a Bundle of the messages: the bodies are kept byte for byte (a lost answer is
asked for again by sending the same Bundle), and a message is not validated resource by resource a second
time when it is recorded (that cost a third of a $submit's CPU).

A record is written `sending` before a message whose loss would matter goes out, and completed when the
exchange ends.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .. import exact_json
from ..nphies import canonical
from ..nphies.gateway import Exchange
from ..nphies.messages import Message
from ..resources import audit
from ..resources.clock import fhir_instant
from ..resources.context import RequestContext
from ..resources.service import FhirService
from ..resources.store import StoreTransaction
from ..workflows.metrics import NPHIES_RETRIES
from .codes import EXCHANGE_IDENTIFIER, EXCHANGE_OUTCOME

SENDING = "sending"
AUDIT_SUBTYPE = "nphies-exchange"
FHIR_JSON = "application/fhir+json"
REQUEST, RESPONSE, SUMMARY = "request", "response", "summary"


def _attachment(title: str, content_type: str, data: bytes) -> dict:
    return {
        "attachment": {
            "contentType": content_type,
            "title": title,
            "size": len(data),
            "data": base64.b64encode(data).decode(),
        }
    }


def _record(
    event: str,
    outcome: str,
    correlation: str,
    started: datetime,
    subject: str,
    patient: dict | None,
    contents: list[dict],
    description: str,
) -> dict:
    record: dict = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": EXCHANGE_IDENTIFIER, "value": correlation}],
        "status": "current",
        "docStatus": "preliminary" if outcome == SENDING else "final",
        # str(): events may be StrEnum members, which the search extraction does not take for strings
        "type": {"coding": [{"system": canonical.MESSAGE_EVENTS, "code": str(event)}]},
        "category": [{"coding": [{"system": EXCHANGE_OUTCOME, "code": outcome}]}],
        "date": fhir_instant(started),
        "description": description,
        "content": contents,
        "context": {"related": [{"reference": subject}]},
    }
    if patient and patient.get("reference"):
        record["subject"] = {"reference": patient["reference"]}
    return record


def _summary(
    event: str, correlation: str, bundle_id: str, subject: str, full_urls: Mapping[str, str]
) -> dict:
    return {
        "event": str(event),
        "correlationId": correlation,
        "bundleId": bundle_id,
        "subject": subject,
        "sent": dict(full_urls),
    }


def _finished_summary(exchange: Exchange, subject: str, full_urls: Mapping[str, str]) -> dict:
    summary = _summary(exchange.event, exchange.correlation_id, exchange.bundle_id, subject, full_urls)
    summary.update(exchange.summary())
    summary["event"] = str(exchange.event)
    summary["attempts"] = [
        {
            "number": a.number,
            "startedAt": fhir_instant(a.started_at),
            "durationMs": round(a.duration_ms, 1),
            "statusCode": a.status_code,
            "error": a.error,
        }
        for a in exchange.attempts
    ]
    summary["startedAt"] = fhir_instant(exchange.started_at)
    return summary


def _description(exchange: Exchange) -> str:
    status = f"HTTP {exchange.status_code}" if exchange.status_code is not None else "no HTTP answer"
    return (
        f"{exchange.event} to NPHIES: {exchange.outcome.value} ({status}) in {exchange.duration_ms:.0f} ms, "
        f"{len(exchange.attempts)} attempt(s)"
    )


@dataclass(frozen=True)
class ExchangeRecorder:
    """Writes exchange records (and their audit entries) as `ctx`, inside the caller's transaction."""

    service: FhirService
    ctx: RequestContext

    async def sending(
        self,
        message: Message,
        subject: str,
        started: datetime,
        tx: StoreTransaction,
        patient: dict | None = None,
        record_id: str | None = None,
    ) -> str:
        """The record of a message about to go out; returns its id."""
        summary = _summary(message.event, message.header_id, message.bundle_id, subject, message.full_urls)
        contents = [
            _attachment(REQUEST, FHIR_JSON, exact_json.dumps(message.bundle)),
            _attachment(SUMMARY, "application/json", exact_json.dumps(summary)),
        ]
        record = _record(
            message.event,
            SENDING,
            message.header_id,
            started,
            subject,
            patient,
            contents,
            f"{message.event} to NPHIES: not sent yet",
        )
        result = await self.service.create(self.ctx, record, tx=tx, resource_id=record_id, trusted=True)
        assert result.version is not None
        return result.version.id

    async def finished(
        self,
        exchange: Exchange,
        subject: str,
        full_urls: Mapping[str, str],
        tx: StoreTransaction,
        record_id: str | None = None,
        patient: dict | None = None,
    ) -> str:
        """The record of an exchange that ended (a new one, or `record_id` completed); returns its id."""
        contents = [_attachment(REQUEST, FHIR_JSON, exact_json.dumps(exchange.request))]
        if exchange.response is not None:
            contents.append(_attachment(RESPONSE, FHIR_JSON, exact_json.dumps(exchange.response)))
        elif exchange.response_text:
            contents.append(_attachment(RESPONSE, "text/plain", exchange.response_text.encode()))
        summary = _finished_summary(exchange, subject, full_urls)
        contents.append(_attachment(SUMMARY, "application/json", exact_json.dumps(summary)))
        record = _record(
            exchange.event,
            exchange.outcome.value,
            exchange.correlation_id,
            exchange.started_at,
            subject,
            patient,
            contents,
            _description(exchange),
        )
        if record_id is None:
            result = await self.service.create(self.ctx, record, tx=tx, trusted=True)
        else:
            record["id"] = record_id
            result = await self.service.update(
                self.ctx, "DocumentReference", record_id, record, tx=tx, trusted=True
            )
        assert result.version is not None
        await audit.record(
            self.service,
            self.ctx,
            action="E",
            subtype=AUDIT_SUBTYPE,
            entity=f"DocumentReference/{result.version.id}",
            payload=exchange.request,
            detail={k: v for k, v in exchange.summary().items() if k != "error"} | {"subject": subject},
            tx=tx,
        )
        return result.version.id


def attachment(record: dict, title: str) -> bytes | None:
    """The decoded content of one attachment of an exchange record."""
    for content in record.get("content") or []:
        found = content.get("attachment") or {}
        if found.get("title") == title and isinstance(found.get("data"), str):
            return base64.b64decode(found["data"])
    return None


def request_of(record: dict) -> dict | None:
    """The request message Bundle an exchange record holds."""
    data = attachment(record, REQUEST)
    return exact_json.loads(data) if data is not None else None


def response_of(record: dict) -> dict | None:
    data = attachment(record, RESPONSE)
    try:
        return exact_json.loads(data) if data is not None else None
    except exact_json.JSONDecodeError:
        return None


def summary_of(record: dict) -> dict:
    data = attachment(record, SUMMARY)
    return exact_json.loads(data) if data is not None else {}


def sent_references(record: dict) -> dict[str, str]:
    """fullUrl -> `Type/id` of what the request in an exchange record carried."""
    sent = summary_of(record).get("sent") or {}
    return {url: reference.split("/_history/")[0] for reference, url in sent.items()}


def count_resends(exchange: Exchange, resent: bool = False) -> None:
    """Messages sent again: by the gateway within the exchange, and the exchange itself when a step
    sends its message again (`resent`)."""
    again = len(exchange.attempts) - 1 + int(resent)
    if again > 0:
        NPHIES_RETRIES.labels(str(exchange.event)).inc(again)
