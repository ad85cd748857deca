"""The worker process (`nphies-facade worker`): the relay (when it holds the lease), rest-hook deliveries,
the reconciler, and an arq consumer running workflow jobs from Redis."""

import asyncio
import logging
from collections.abc import Mapping

from ..resources.clock import Clock, system_clock
from ..resources.service import FhirService
from .arq_queue import ArqQueue, run_arq_worker
from .config import SubscriptionConfig
from .queue import RunJob
from .runtime import SubscriptionRuntime

log = logging.getLogger("nphies_facade.subscriptions")


async def run_worker(
    service: FhirService,
    config: SubscriptionConfig,
    stop: asyncio.Event,
    clock: Clock = system_clock,
    jobs: Mapping[str, RunJob] | None = None,
) -> None:
    """`jobs`: runners of other job kinds (the id's part before ':') this worker consumes too."""
    if config.redis_url is None:
        raise ValueError("the worker needs NPHIES_FACADE_REDIS_URL; without it `serve` runs the jobs itself")
    runtime = SubscriptionRuntime(
        service, config, clock, relay=True, websockets=False, queue=ArqQueue(config.redis_url)
    )
    for kind, run in (jobs or {}).items():
        runtime.jobs.add(kind, run)
    await runtime.start()
    log.info("worker %s started", runtime.name)
    try:
        await run_arq_worker(runtime.jobs.run, config, stop)
    finally:
        await runtime.stop()
        log.info("worker %s stopped", runtime.name)
