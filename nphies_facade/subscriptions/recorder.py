"""Delivery records written in batches: one ledger transaction for many deliveries.

Deliveries are recorded after they happened, so batching costs nothing in latency; a crash loses at
most the last interval's records, and those events are delivered again (at least once). A delivery
task that is about to read the ledger flushes first, so it never sees its own delivered events as
pending.
"""

import asyncio
import contextlib
import logging

from ..resources.ledger import DeliveryRecord, Ledger

log = logging.getLogger("nphies_facade.subscriptions")

INTERVAL = 0.02
MAX_RECORDS = 500


class DeliveryRecorder:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._buffer: list[DeliveryRecord] = []
        self._lock = asyncio.Lock()
        self._full = asyncio.Event()

    def add(self, record: DeliveryRecord) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= MAX_RECORDS:
            self._full.set()

    async def flush(self) -> None:
        async with self._lock:
            records, self._buffer = self._buffer, []
            if not records:
                return
            try:
                await self._ledger.record_deliveries(records)
            except Exception:
                self._buffer[:0] = records  # kept for the next flush, in order
                raise

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INTERVAL):
                    await self._full.wait()
            try:
                await self.flush()
            except Exception as exc:  # retried on the next tick
                log.warning("delivery records not written yet: %s", type(exc).__name__)
        await self.flush()
