"""The websocket channel (R4): clients `bind {id}`, the server answers `bound {id}` and sends `ping {id}`
for each event of that Subscription.

Each server process keeps its own bindings and follows the ledger's websocket events (recorded by the
relay, wherever it runs); the relay wakes it when it runs in the same process. Many clients may bind one
Subscription; a client that goes away is forgotten and the Subscription stays active.
"""

import asyncio
import contextlib
import logging
from typing import Protocol

from ..resources.ledger import Ledger
from .criteria import WEBSOCKET

log = logging.getLogger("nphies_facade.subscriptions")

SEND_TIMEOUT = 5.0


class Socket(Protocol):
    async def send_text(self, data: str) -> None: ...


class WebsocketHub:
    def __init__(self, ledger: Ledger, poll_interval: float) -> None:
        self._ledger = ledger
        self._poll_interval = poll_interval
        self._bindings: dict[str, set[Socket]] = {}
        self._cursor = 0
        self._wakeup = asyncio.Event()

    @property
    def bound(self) -> int:
        return sum(len(sockets) for sockets in self._bindings.values())

    def bind(self, subscription_id: str, socket: Socket) -> None:
        self._bindings.setdefault(subscription_id, set()).add(socket)

    def unbind(self, socket: Socket) -> None:
        for subscription_id in list(self._bindings):
            sockets = self._bindings[subscription_id]
            sockets.discard(socket)
            if not sockets:
                del self._bindings[subscription_id]

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._cursor = await self._ledger.last_event_id()
        while not stop.is_set():
            self._wakeup.clear()
            try:
                await self._forward()
            except Exception as exc:  # keep following; the next poll retries
                log.warning("websocket hub could not read events: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wakeup.wait()

    async def _forward(self) -> None:
        while True:
            events = await self._ledger.events_after(self._cursor, WEBSOCKET)
            if not events:
                return
            self._cursor = events[-1].eid
            for event in events:
                await self._ping(event.subscription_id)

    async def _ping(self, subscription_id: str) -> None:
        for socket in list(self._bindings.get(subscription_id, ())):
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await socket.send_text(f"ping {subscription_id}")
            except Exception:  # a client that went away
                self.unbind(socket)
