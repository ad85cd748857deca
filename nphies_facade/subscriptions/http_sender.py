"""One rest-hook request: the R4 notification shapes, channel headers, event headers and the signature."""

import time
from dataclasses import dataclass

import httpx

from .criteria import SubscriptionSpec
from .signing import (
    EVENT_NUMBER_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    SUBSCRIPTION_HEADER,
    TIMESTAMP_HEADER,
    signature,
)

FHIR_JSON = "application/fhir+json"
HANDSHAKE, EVENT = "handshake", "event-notification"


@dataclass(frozen=True, slots=True)
class Notification:
    """What to send: `number` 0 with kind handshake, or an event with the version's body if any."""

    kind: str
    number: int
    body: bytes = b""
    resource_type: str | None = None
    resource_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status_code: int | None
    detail: str | None
    duration_ms: float


class RestHookSender:
    def __init__(self, http: httpx.AsyncClient, secret: str | None) -> None:
        self._http = http
        self._secret = secret

    def request_for(self, spec: SubscriptionSpec, note: Notification, now: float) -> tuple[str, str, dict]:
        """(method, url, headers). With a payload an event is a PUT of the resource to
        [endpoint]/[type]/[id]; everything else is a POST to the endpoint."""
        endpoint = spec.channel.endpoint or ""
        headers = dict(spec.channel.headers)
        timestamp = str(int(now))
        headers[SUBSCRIPTION_HEADER] = spec.id
        headers[EVENT_NUMBER_HEADER] = str(note.number)
        headers[EVENT_TYPE_HEADER] = note.kind
        headers[TIMESTAMP_HEADER] = timestamp
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, timestamp, spec.id, note.number, note.body)
        if note.body:
            headers["Content-Type"] = FHIR_JSON
        if spec.channel.payload and note.kind == EVENT:
            return "PUT", f"{endpoint.rstrip('/')}/{note.resource_type}/{note.resource_id}", headers
        return "POST", endpoint, headers

    async def send(self, spec: SubscriptionSpec, note: Notification, now: float) -> SendResult:
        method, url, headers = self.request_for(spec, note, now)
        started = time.perf_counter()
        try:
            response = await self._http.request(method, url, content=note.body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(False, None, _transport_error(exc), _ms(started))
        ok = 200 <= response.status_code < 300
        return SendResult(
            ok, response.status_code, None if ok else f"HTTP {response.status_code}", _ms(started)
        )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _transport_error(exc: httpx.HTTPError) -> str:
    """The kind of failure, without the message (which may quote the endpoint and its credentials)."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    return type(exc).__name__
