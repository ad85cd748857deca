"""The NPHIES gateway client: POSTs message Bundles to {base}/$process-message and records every exchange.

Retries only where a resend cannot do harm:
- a connection that failed before the request was sent (connect error or timeout, pool timeout): nothing
  reached NPHIES, so any message may be sent again;
- 502/503/504, read timeouts, dropped connections and unreadable bodies, for the idempotent events only
  (eligibility-request, poll-request, status-check): asking again returns the same facts (a poll's queued
  messages stay queued until delivered without error).
A claim-request, priorauth-request, communication, cancel-request or payment-notice whose answer is lost
may have been processed: a blind resend in a new Bundle would be refused as a duplicate (BV-00163 main
resource identifier reused) or, worse, counted twice. Such an exchange ends with outcome `unknown`; the
caller sends a status-check for the Claim.identifier and resends only if NPHIES does not know the claim.
"""

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from .. import exact_json
from ..resources.tracing import TRACEPARENT, current_trace_id, is_trace_id, traceparent
from .events import IDEMPOTENT_EVENTS
from .messages import Message
from .parsing import ParsedResponse, ParseError, event_of, header_id, parse_response

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class GatewaySettings:
    """base_url: NPHIES (or the simulator), without /$process-message.
    timeout: seconds to wait for an answer per attempt (NPHIES ends sessions at 60 s).
    retries: further attempts where a resend is safe; backoff doubles from `backoff` up to `max_backoff`.
    cert_file / key_file: the client certificate for mutual TLS; ca_file: the CA bundle to trust.
    headers: extra headers on every request (credentials NPHIES issued the provider, for instance).
    """

    base_url: str
    timeout: float = 60.0
    connect_timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 5.0
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    verify: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url.rstrip('/')}/$process-message"


class Outcome(StrEnum):
    ANSWERED = "answered"  # 2xx with a readable body: a business response, acknowledgement or errors
    REJECTED = "rejected"  # 4xx: NPHIES could not read or route the message (OperationOutcome)
    FAILED = "failed"  # no answer; nothing was processed, or resending is harmless
    UNKNOWN = "unknown"  # no answer, and the message may have been processed: status-check before resending
    MALFORMED = "malformed"  # 2xx with an unreadable body, for a message that is not resent


@dataclass(frozen=True)
class Attempt:
    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    error: str | None = None


@dataclass
class Exchange:
    """One message sent and what came back, for the caller to store with its Task."""

    event: str
    correlation_id: str  # the request MessageHeader.id; answers carry it in MessageHeader.response.identifier
    bundle_id: str
    request: dict
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    attempts: list[Attempt]
    status_code: int | None = None
    response: dict | None = None
    response_text: str | None = None
    error: str | None = None
    _parsed: ParsedResponse | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def answered(self) -> bool:
        return self.outcome is Outcome.ANSWERED

    def parsed(self) -> ParsedResponse | None:
        """The typed response; None when no FHIR answer (message Bundle or OperationOutcome) came back."""
        if self._parsed is None and self.response is not None:
            try:
                self._parsed = parse_response(self.response)
            except ParseError:
                return None
        return self._parsed

    def summary(self) -> dict[str, Any]:
        """The exchange without its bodies: what a Task output or an audit record keeps."""
        return {
            "event": self.event,
            "correlationId": self.correlation_id,
            "bundleId": self.bundle_id,
            "outcome": self.outcome.value,
            "statusCode": self.status_code,
            "startedAt": self.started_at.isoformat(),
            "durationMs": round(self.duration_ms, 1),
            "attempts": len(self.attempts),
            "error": self.error,
        }


@dataclass(frozen=True)
class _Failure:
    """Why an attempt got no usable answer, and whether the request had reached the server."""

    error: str
    sent: bool
    status_code: int | None = None
    body: dict | None = None
    text: str | None = None
    malformed: bool = False


def _trace() -> dict[str, str] | None:
    """The W3C trace context of the work that sends the message (a request or a job), if any."""
    trace_id = current_trace_id()
    return {TRACEPARENT: traceparent(trace_id)} if trace_id and is_trace_id(trace_id) else None


class NphiesGateway:
    """Async client for $process-message; use as `async with NphiesGateway(settings) as gateway`."""

    def __init__(self, settings: GatewaySettings, client: httpx.AsyncClient | None = None):
        self.settings = settings
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            verify=ssl_context(settings),
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **dict(settings.headers)},
        )

    async def __aenter__(self) -> "NphiesGateway":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: Message | dict) -> Exchange:
        """Sends one message Bundle, retrying where safe; never raises for transport or HTTP errors."""
        bundle = message.bundle if isinstance(message, Message) else message
        event, correlation = event_of(bundle), header_id(bundle)
        if not event or not correlation:
            raise ValueError("not a message Bundle: the first entry must be a MessageHeader with an event")
        content = exact_json.dumps(bundle)
        started, clock = datetime.now(UTC), time.perf_counter()
        attempts: list[Attempt] = []
        failure: _Failure | None = None
        for number in range(1, self.settings.retries + 2):
            if number > 1:
                await asyncio.sleep(min(self.settings.backoff * 2 ** (number - 2), self.settings.max_backoff))
            result, attempt = await self._attempt(number, content)
            attempts.append(attempt)
            if not isinstance(result, _Failure):
                status, body = result
                outcome = Outcome.ANSWERED if status < 400 else Outcome.REJECTED
                return self._exchange(
                    event, correlation, bundle, outcome, started, clock, attempts, status, body
                )
            failure = result
            if not _may_resend(event, failure):
                break
        assert failure is not None
        exchange = self._exchange(
            event,
            correlation,
            bundle,
            _outcome_of(event, failure),
            started,
            clock,
            attempts,
            failure.status_code,
            failure.body,
        )
        exchange.response_text, exchange.error = failure.text, failure.error
        return exchange

    async def _attempt(self, number: int, content: bytes) -> tuple[tuple[int, dict] | _Failure, Attempt]:
        started, clock = datetime.now(UTC), time.perf_counter()
        try:
            # httpx's read timeout is per read; this bounds the whole attempt as an NPHIES session is bounded.
            async with asyncio.timeout(self.settings.timeout + self.settings.connect_timeout):
                response = await self._client.post(self.settings.endpoint, content=content, headers=_trace())
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            result: tuple[int, dict] | _Failure = _Failure(f"{type(exc).__name__}: {exc}", sent=False)
        except httpx.TransportError as exc:
            result = _Failure(f"{type(exc).__name__}: {exc}", sent=True)
        except TimeoutError:
            result = _Failure("TimeoutError: no answer within the session time", sent=True)
        else:
            result = _read(response)
        status = result.status_code if isinstance(result, _Failure) else result[0]
        error = result.error if isinstance(result, _Failure) else None
        return result, Attempt(number, started, (time.perf_counter() - clock) * 1000, status, error)

    def _exchange(
        self,
        event: str,
        correlation: str,
        bundle: dict,
        outcome: Outcome,
        started: datetime,
        clock: float,
        attempts: list[Attempt],
        status: int | None,
        body: dict | None,
    ) -> Exchange:
        return Exchange(
            event=event,
            correlation_id=correlation,
            bundle_id=str(bundle.get("id")),
            request=bundle,
            outcome=outcome,
            started_at=started,
            finished_at=datetime.now(UTC),
            duration_ms=(time.perf_counter() - clock) * 1000,
            attempts=attempts,
            status_code=status,
            response=body,
        )


def _read(response: httpx.Response) -> tuple[int, dict] | _Failure:
    """(status, body) of a readable answer; a _Failure for 5xx and for bodies that are not JSON objects."""
    try:
        body = exact_json.loads(response.content)
    except exact_json.JSONDecodeError:
        body = None
    if response.status_code >= 500:
        return _Failure(
            f"HTTP {response.status_code}",
            True,
            response.status_code,
            body if isinstance(body, dict) else None,
        )
    if isinstance(body, dict):
        return response.status_code, body
    text = response.text[:2000]
    if response.status_code >= 400:
        return response.status_code, _outcome_for_text(text)
    return _Failure(
        f"unreadable body (HTTP {response.status_code})", True, response.status_code, None, text, True
    )


def _outcome_for_text(text: str) -> dict:
    """An OperationOutcome standing for a 4xx answer whose body is not JSON."""
    issue = {"severity": "error", "code": "processing", "diagnostics": text[:500] or "no body"}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _may_resend(event: str, failure: _Failure) -> bool:
    if not failure.sent:
        return True
    if event not in IDEMPOTENT_EVENTS:
        return False
    return failure.malformed or failure.status_code is None or failure.status_code in RETRY_STATUSES


def _outcome_of(event: str, failure: _Failure) -> Outcome:
    if not failure.sent or event in IDEMPOTENT_EVENTS:
        return Outcome.FAILED
    return Outcome.MALFORMED if failure.malformed else Outcome.UNKNOWN


def ssl_context(settings: GatewaySettings) -> ssl.SSLContext:
    """The TLS context: the trusted CAs and, for mutual TLS, the provider's client certificate."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.cert_file:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    return context
