"""A rest-hook receiver on loopback: a raw ASGI app under uvicorn in a thread, recording every request.

It answers `status` (200 by default; set 500 to fail), can be stopped and started again on the same port
(the endpoint is down meanwhile), and checks HMAC signatures when given the secret.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import uvicorn

from nphies_facade.subscriptions.signing import verify


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    signature_ok: bool | None

    @property
    def subscription(self) -> str:
        return self.headers.get("x-nphies-subscription", "")

    @property
    def number(self) -> int:
        return int(self.headers.get("x-nphies-event-number", "-1"))

    @property
    def kind(self) -> str:
        return self.headers.get("x-nphies-event-type", "")

    def json(self) -> dict:
        return orjson.loads(self.body)


class Receiver:
    def __init__(self, secret: str | None = None, port: int | None = None, keep_alive: float = 5.0) -> None:
        self.port = port or free_port()
        self.secret = secret
        self.keep_alive = keep_alive
        self.status = 200
        self._requests: list[Received] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _app(self, scope: dict, receive: Callable, send: Callable) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        checked = verify(self.secret, headers, body) if self.secret else None
        status = self.status
        if status < 300:
            with self._lock:
                self._requests.append(
                    Received(scope["method"], scope["path"], headers, body, time.time(), checked)
                )
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> "Receiver":
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            lifespan="off",
            interface="asgi3",
            timeout_keep_alive=self.keep_alive,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def requests(
        self, subscription: str | None = None, kind: str | None = "event-notification"
    ) -> list[Received]:
        with self._lock:
            found = list(self._requests)
        return [
            r
            for r in found
            if (subscription is None or r.subscription == subscription) and (kind is None or r.kind == kind)
        ]

    def numbers(self, subscription: str) -> list[int]:
        """Event numbers in order of first arrival (duplicates from retries dropped)."""
        seen: dict[int, None] = {}
        for r in self.requests(subscription):
            seen.setdefault(r.number, None)
        return list(seen)

    async def wait_for(self, condition: Callable[[], bool], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("receiver: condition not met in time")
            await asyncio.sleep(0.02)
