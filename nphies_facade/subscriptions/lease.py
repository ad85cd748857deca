"""Leadership: only the holder of the store lease relays, so outbox events are matched once."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..resources.clock import Clock
from ..resources.ledger import Ledger

log = logging.getLogger("nphies_facade.subscriptions")

LEASE = "relay"


class Leadership:
    def __init__(self, ledger: Ledger, holder: str, ttl: float, clock: Clock) -> None:
        self._ledger = ledger
        self.holder = holder
        self._ttl = ttl
        self._clock = clock
        self.leading = False

    async def _acquire(self) -> bool:
        try:
            return await self._ledger.acquire_lease(LEASE, self.holder, self._clock().timestamp(), self._ttl)
        except Exception as exc:  # a busy or unreachable store: not leading this round
            log.warning("relay lease check failed: %s", type(exc).__name__)
            return False

    async def _start(
        self, on_gain: Callable[[], Awaitable[None]], on_loss: Callable[[], Awaitable[None]]
    ) -> bool:
        """Starts the leader's work; on failure undoes it and gives the lease up for another process."""
        try:
            await on_gain()
        except Exception as exc:
            log.error("%s could not start relaying: %s", self.holder, type(exc).__name__)
            with contextlib.suppress(Exception):
                await on_loss()
            with contextlib.suppress(Exception):
                await self._ledger.release_lease(LEASE, self.holder)
            return False
        return True

    async def run(
        self,
        stop: asyncio.Event,
        on_gain: Callable[[], Awaitable[None]],
        on_loss: Callable[[], Awaitable[None]],
    ) -> None:
        """Renews (or tries to take) the lease every ttl/3; starts and stops the leader's work with it."""
        try:
            while not stop.is_set():
                held = await self._acquire()
                if held and not self.leading:
                    self.leading = True
                    log.info("%s leads the relay", self.holder)
                    if not await self._start(on_gain, on_loss):
                        self.leading = False
                elif not held and self.leading:
                    self.leading = False
                    log.warning("%s lost the relay lease", self.holder)
                    await on_loss()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._ttl / 3):
                        await stop.wait()
        finally:
            if self.leading:
                self.leading = False
                await on_loss()
                with contextlib.suppress(Exception):
                    await self._ledger.release_lease(LEASE, self.holder)
