"""Waking the outbox relay early: a change stream on `outbox` calls `wake` for each new event.

The relay still reads events by seq (`outbox_after`) and still polls; the stream only shortens its wait.
A stream that fails or misses an event loses nothing: it is opened again after a pause.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

log = logging.getLogger("nphies_facade.mongo")

INSERTS = [{"$match": {"operationType": "insert"}}]
MAX_AWAIT_MS = 1000


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def follow_outbox(
    outbox: AsyncCollection, wake: Callable[[], None], stop: asyncio.Event, retry_after: float = 5.0
) -> None:
    """Calls `wake` on each insert into `outbox` until `stop` is set."""
    while not stop.is_set():
        try:
            async with await outbox.watch(INSERTS, max_await_time_ms=MAX_AWAIT_MS) as stream:
                while not stop.is_set():
                    if await stream.try_next() is not None:
                        wake()
        except PyMongoError as exc:
            log.warning("outbox change stream stopped (%s); the relay polls meanwhile", type(exc).__name__)
            await _pause(stop, retry_after)
