"""Waking the relay across processes through Redis: API servers publish "committed", workers listen.

Only a shortcut for the relay's poll: it still reads the outbox by sequence from the store, so a lost or
late message costs at most one poll interval, and a Redis outage only makes the relay poll.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("nphies_facade.subscriptions")

CHANNEL = "nphies-facade:outbox"
RETRY_AFTER = 2.0


class CommitSignal:
    """Publishes one message per burst of commits (the relay reads everything new when it wakes)."""

    def __init__(self, url: str) -> None:
        self._redis = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._pending: asyncio.Task | None = None

    def committed(self) -> None:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._publish())

    async def _publish(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.publish(CHANNEL, b"1")

    async def close(self) -> None:
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._pending
        await self._redis.aclose()


async def follow_commits(url: str, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Calls `wake` for each commit message until `stop`; reconnects after Redis errors."""
    while not stop.is_set():
        redis = Redis.from_url(url, socket_connect_timeout=1)
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                while not stop.is_set():
                    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5):
                        wake()
        except (RedisError, OSError) as exc:
            log.info("commit signal unavailable (%s); the relay polls", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETRY_AFTER):
                    await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await redis.aclose()
