"""The `nphies-facade worker` process: the same store, security (audit, access policy) and FhirService
as an API server, running the subscription worker (relay when it holds the lease, rest-hook deliveries,
reconciler, arq consumer) until SIGTERM or SIGINT."""

import asyncio
import signal

from ..resources.clock import system_clock
from ..resources.search.definitions import SearchRegistry
from ..resources.search.extraction import Extractor
from ..resources.service import FhirService
from .app import store_for
from .auth.runtime import SecurityRuntime
from .settings import Settings


async def run(settings: Settings) -> None:
    from ..subscriptions.worker import run_worker  # arq is needed by the worker only

    store = store_for(settings)
    await store.open()
    extractor = Extractor(SearchRegistry())
    security = SecurityRuntime(settings, store, extractor, system_clock)
    service = FhirService(store, extractor, system_clock, security.authorizer, security.auditor)
    security.start(service)
    await service.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_worker(service, settings.subscription_config(), stop)
    finally:
        await security.stop()
        await service.close()
        await store.close()
