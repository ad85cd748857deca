"""Exchange records: each message sent to NPHIES, what came back, and how it went, stored as a Bundle.

A record is a `collection` Bundle written through FhirService: the request message Bundle, the answer
(message Bundle or OperationOutcome) when one came, and a Parameters entry summing the exchange up (event,
correlation id, outcome, HTTP status, timing, every attempt, the Task or resource it was for, and which
stored resource each fullUrl of the request stands for, so later answers can be related to them). A record
is written `sending` before a message whose loss would matter goes out, and completed when it is answered.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ..nphies import canonical
from ..nphies.gateway import Exchange
from ..nphies.messages import Message
from ..resources import audit
from ..resources.clock import fhir_instant
from ..resources.context import RequestContext
from ..resources.service import FhirService
from ..resources.store import StoreTransaction
from .codes import EXCHANGE_IDENTIFIER, EXCHANGE_OUTCOME

SENDING = "sending"
AUDIT_SUBTYPE = "nphies-exchange"


def _tags(event: str, outcome: str) -> list[dict]:
    return [
        {"system": canonical.MESSAGE_EVENTS, "code": event},
        {"system": EXCHANGE_OUTCOME, "code": outcome},
    ]


def _param(name: str, **value: object) -> dict:
    return {"name": name, **value}


def _sent_parts(full_urls: Mapping[str, str]) -> list[dict]:
    return [
        _param("sent", part=[_param("reference", valueString=ref), _param("fullUrl", valueUri=url)])
        for ref, url in full_urls.items()
    ]


def _summary(
    event: str,
    correlation: str,
    outcome: str,
    started: datetime,
    subject: str,
    full_urls: Mapping[str, str],
    exchange: Exchange | None,
) -> dict:
    parameters = [
        _param("event", valueCode=event),
        _param("correlationId", valueString=correlation),
        _param("outcome", valueCode=outcome),
        _param("startedAt", valueInstant=fhir_instant(started)),
        _param("subject", valueReference={"reference": subject}),
    ]
    if exchange is not None:
        parameters += _exchange_parameters(exchange)
    return {"resourceType": "Parameters", "parameter": parameters + _sent_parts(full_urls)}


def _exchange_parameters(exchange: Exchange) -> list[dict]:
    found = [_param("durationMs", valueDecimal=round(exchange.duration_ms, 1))]
    if exchange.status_code is not None:
        found.append(_param("statusCode", valueInteger=exchange.status_code))
    if exchange.error:
        found.append(_param("error", valueString=exchange.error))
    if exchange.response_text:
        found.append(_param("responseText", valueString=exchange.response_text[:2000]))
    for attempt in exchange.attempts:
        parts = [
            _param("number", valueInteger=attempt.number),
            _param("startedAt", valueInstant=fhir_instant(attempt.started_at)),
            _param("durationMs", valueDecimal=round(attempt.duration_ms, 1)),
        ]
        if attempt.status_code is not None:
            parts.append(_param("statusCode", valueInteger=attempt.status_code))
        if attempt.error:
            parts.append(_param("error", valueString=attempt.error))
        found.append(_param("attempt", part=parts))
    return found


def _record(
    request: dict,
    answer: dict | None,
    summary: dict,
    correlation: str,
    tags: list[dict],
    started: datetime,
) -> dict:
    entries = [{"fullUrl": f"urn:uuid:{request.get('id')}", "resource": request}]
    if answer is not None:
        entries.append({"resource": answer})
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": summary})
    return {
        "resourceType": "Bundle",
        "meta": {"tag": tags},
        "identifier": {"system": EXCHANGE_IDENTIFIER, "value": correlation},
        "type": "collection",
        "timestamp": fhir_instant(started),
        "entry": entries,
    }


@dataclass(frozen=True)
class ExchangeRecorder:
    """Writes exchange records (and their audit entries) as `ctx`, inside the caller's transaction."""

    service: FhirService
    ctx: RequestContext

    async def sending(self, message: Message, subject: str, started: datetime, tx: StoreTransaction) -> str:
        """The record of a message about to go out; returns its id."""
        summary = _summary(
            message.event, message.header_id, SENDING, started, subject, message.full_urls, None
        )
        tags = _tags(message.event, SENDING)
        record = _record(message.bundle, None, summary, message.header_id, tags, started)
        result = await self.service.create(self.ctx, record, tx=tx)
        assert result.version is not None
        return result.version.id

    async def finished(
        self,
        exchange: Exchange,
        subject: str,
        full_urls: Mapping[str, str],
        tx: StoreTransaction,
        record_id: str | None = None,
    ) -> str:
        """The record of an exchange that ended (a new one, or `record_id` completed); returns its id."""
        outcome = exchange.outcome.value
        summary = _summary(
            exchange.event,
            exchange.correlation_id,
            outcome,
            exchange.started_at,
            subject,
            full_urls,
            exchange,
        )
        tags = _tags(exchange.event, outcome)
        record = _record(
            exchange.request, exchange.response, summary, exchange.correlation_id, tags, exchange.started_at
        )
        if record_id is None:
            result = await self.service.create(self.ctx, record, tx=tx)
        else:
            record["id"] = record_id
            result = await self.service.update(self.ctx, "Bundle", record_id, record, tx=tx)
        assert result.version is not None
        await audit.record(
            self.service,
            self.ctx,
            action="E",
            subtype=AUDIT_SUBTYPE,
            entity=f"Bundle/{result.version.id}",
            payload=exchange.request,
            detail={k: v for k, v in exchange.summary().items() if k != "error"} | {"subject": subject},
            tx=tx,
        )
        return result.version.id


def sent_references(record: dict) -> dict[str, str]:
    """fullUrl -> `Type/id` of what the request in an exchange record carried."""
    entries = record.get("entry") or []
    summary = entries[-1].get("resource") if entries else None
    found: dict[str, str] = {}
    for parameter in (summary or {}).get("parameter") or []:
        if parameter.get("name") == "sent":
            parts = {p.get("name"): p for p in parameter.get("part") or []}
            url = parts.get("fullUrl", {}).get("valueUri")
            reference = parts.get("reference", {}).get("valueString")
            if url and reference:
                found[url] = reference.split("/_history/")[0]
    return found


def request_of(record: dict) -> dict | None:
    """The request message Bundle an exchange record holds."""
    entries = record.get("entry") or []
    return entries[0].get("resource") if entries else None
