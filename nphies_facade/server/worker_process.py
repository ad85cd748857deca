"""The `nphies-facade worker` process: the same store, security (audit, access policy) and FhirService
as an API server, running the subscription worker (relay when it holds the lease, rest-hook deliveries,
reconciler, arq consumer), the $submit steps and the workflow steps until SIGTERM or SIGINT.

In the sandbox (no NPHIES_FACADE_NPHIES_URL) the worker has its own simulator, so the claims it sends
are known to it, not to the API server's; point both at `nphies-facade simulator` to share one."""

import asyncio
import signal

from ..operations.scheduler import STEP_JOB_KIND
from ..resources.clock import system_clock
from ..resources.search.definitions import SearchRegistry
from ..resources.search.extraction import Extractor
from ..resources.service import FhirService
from . import nphies_wiring, workflow_wiring
from .app import settle_garbage_collection, store_for
from .auth.runtime import SecurityRuntime
from .settings import Settings


async def run(settings: Settings) -> None:
    from ..subscriptions.worker import run_worker  # arq is needed by the worker only

    store = store_for(settings)
    await store.open()
    extractor = Extractor(SearchRegistry())
    security = SecurityRuntime(settings, store, extractor, system_clock)
    service = FhirService(
        store,
        extractor,
        system_clock,
        security.authorizer,
        security.auditor,
        validate_own=settings.validate_own_resources,
        referential_integrity=settings.referential_integrity == "strict",
    )
    security.start(service)
    await service.open()
    nphies_wiring.log_target(settings, worker=True)
    operations = nphies_wiring.nphies_operations(
        settings, service, system_clock, nphies_wiring.simulator_app(settings), runs_steps=True
    )
    await operations.start()
    engine = workflow_wiring.workflow_engine(settings, service, system_clock, operations, runs_jobs=True)
    await engine.start()
    if settings.gc_tuning:
        settle_garbage_collection()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        jobs = {STEP_JOB_KIND: operations.run_step_job, workflow_wiring.WORKFLOW_JOB_KIND: engine.run}
        await run_worker(service, settings.subscription_config(), stop, jobs=jobs)
    finally:
        await engine.stop()
        await operations.stop()
        await security.stop()
        await service.close()
        await store.close()
