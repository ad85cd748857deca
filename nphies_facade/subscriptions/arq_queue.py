"""The job queue on Redis with arq: enqueueing by deterministic job id, and the worker loop.

arq drops an enqueue whose `_job_id` is already queued or running, and retries only on its Retry
exception, so the arq function wraps JobRunner.run: our retry policy decides, arq only reschedules.
Results are not kept (keep_result=0), so a job put back by `$resend` is not mistaken for a duplicate.
A Redis outage or flush loses nothing: the worker loop reconnects, and the reconciler enqueues from the
store's job records again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from arq import Retry
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import Worker, func
from redis.exceptions import RedisError

from .config import SubscriptionConfig
from .queue import JobQueue, QueueUnavailable, RunJob

log = logging.getLogger("nphies_facade.subscriptions")

FUNCTION = "run_job"
QUEUE_NAME = "nphies-facade:jobs"
MAX_TRIES = 1_000_000_000
ENQUEUE_CONCURRENCY = 32


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 1
    return settings


class ArqQueue(JobQueue):
    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._pool: ArqRedis | None = None

    async def start(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            self._pool = await self._connect()

    async def _connect(self) -> ArqRedis:
        return await create_pool(redis_settings(self._url), default_queue_name=QUEUE_NAME)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def enqueue(self, job_ids: Sequence[str], *, recover: bool = False) -> None:
        try:
            if self._pool is None:
                self._pool = await self._connect()
            limit = asyncio.Semaphore(ENQUEUE_CONCURRENCY)

            async def one(job_id: str) -> None:
                async with limit:
                    if recover:
                        await self._pool.delete(in_progress_key_prefix + job_id)
                    await self._pool.enqueue_job(FUNCTION, job_id, _job_id=job_id, _queue_name=QUEUE_NAME)

            await asyncio.gather(*(one(job_id) for job_id in job_ids))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(type(exc).__name__) from None


def _worker(run: RunJob, config: SubscriptionConfig) -> Worker:
    async def run_job(ctx: dict, job_id: str) -> None:
        delay = await run(job_id)
        if delay is not None:
            raise Retry(defer=delay)

    function = func(
        run_job,
        name=FUNCTION,
        timeout=config.job_timeout + config.job_lease_grace,
        keep_result=0,
        max_tries=MAX_TRIES,
    )
    return Worker(
        functions=[function],
        redis_settings=redis_settings(config.redis_url or ""),
        queue_name=QUEUE_NAME,
        handle_signals=False,
        max_jobs=config.job_concurrency,
        poll_delay=config.queue_poll_interval,
        keep_result=0,
        max_tries=MAX_TRIES,
        job_timeout=config.job_timeout + config.job_lease_grace,
    )


async def run_arq_worker(run: RunJob, config: SubscriptionConfig, stop: asyncio.Event) -> None:
    """Consumes jobs until `stop`; a lost Redis connection restarts the consumer after a pause."""
    pause = 0.5
    while not stop.is_set():
        worker = _worker(run, config)
        main = asyncio.create_task(worker.async_run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if main.done() and not main.cancelled() and main.exception() is not None:
            log.warning("job consumer lost Redis (%s); reconnecting", type(main.exception()).__name__)
        # close() cancels running jobs (they give themselves back to the store) and gathers them.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await worker.close()
        main.cancel()
        with contextlib.suppress(BaseException):
            await main
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await stop.wait()
            pause = min(pause * 2, 5.0)
