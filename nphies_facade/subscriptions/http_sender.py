"""One rest-hook request: the R4 notification shapes, channel headers, event headers and the signature."""

import ssl
import time
from dataclasses import dataclass

from .criteria import SubscriptionSpec
from .hook_client import HookClient, HookError
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
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status_code: int | None
    detail: str | None
    duration_ms: float


class RestHookSender:
    """Sends one Subscription's notifications over its own keep-alive connection."""

    def __init__(self, secret: str | None, timeout: float, tls: ssl.SSLContext) -> None:
        self._client = HookClient(timeout, tls)
        self._secret = secret

    async def aclose(self) -> None:
        await self._client.aclose()

    def request_for(
        self, spec: SubscriptionSpec, note: Notification, now: float
    ) -> tuple[str, str, list[tuple[str, str]]]:
        """(method, url, headers). With a payload an event is a PUT of the resource to
        [endpoint]/[type]/[id] (a DELETE there for a deletion); everything else is a POST to the endpoint."""
        endpoint = spec.channel.endpoint or ""
        headers = {name.lower(): value for name, value in spec.channel.headers}
        timestamp = str(int(now))
        headers[SUBSCRIPTION_HEADER.lower()] = spec.id
        headers[EVENT_NUMBER_HEADER.lower()] = str(note.number)
        headers[EVENT_TYPE_HEADER.lower()] = note.kind
        headers[TIMESTAMP_HEADER.lower()] = timestamp
        if self._secret:
            headers[SIGNATURE_HEADER.lower()] = signature(
                self._secret, timestamp, spec.id, note.number, note.body
            )
        if note.body:
            headers["content-type"] = FHIR_JSON
        headers.pop("content-length", None)
        headers.pop("host", None)
        if spec.channel.payload and note.kind == EVENT and spec.topic is None:
            return (
                "DELETE" if note.deleted else "PUT",
                f"{endpoint.rstrip('/')}/{note.resource_type}/{note.resource_id}",
                list(headers.items()),
            )
        return "POST", endpoint, list(headers.items())

    async def send(self, spec: SubscriptionSpec, note: Notification, now: float) -> SendResult:
        method, url, headers = self.request_for(spec, note, now)
        started = time.perf_counter()
        try:
            status = await self._client.request(method, url, headers, note.body)
        except HookError as exc:
            return SendResult(False, None, exc.kind, _ms(started))
        ok = 200 <= status < 300
        return SendResult(ok, status, None if ok else f"HTTP {status}", _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
