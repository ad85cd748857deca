"""Background sweeps over stored Tasks: paging through a search, and repeating a sweep on an interval."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from .context import RequestContext
from .searching import SearchOptions
from .store import StoredVersion

if TYPE_CHECKING:  # service.py imports this package's modules
    from .service import FhirService


async def search_pages(
    service: "FhirService",
    resource_type: str,
    params: list[tuple[str, str]],
    page_size: int,
    ctx: RequestContext,
) -> AsyncIterator[list[StoredVersion]]:
    """Every page of a search, following its cursor to the end."""
    params = [*params, ("_count", str(page_size))]
    options = SearchOptions(max_count=page_size)
    cursor: str | None = None
    while True:
        page = params + ([("_cursor", cursor)] if cursor else [])
        result = await service.search((resource_type,), page, options, ctx=ctx)
        yield result.matches
        cursor = result.next_cursor
        if not cursor:
            return


async def repeat_sweep(
    sweep: Callable[[bool], Awaitable[int]],
    interval: float,
    stop: asyncio.Event,
    log: logging.Logger,
    what: str,
    wakeup: asyncio.Event | None = None,
) -> None:
    """Runs `sweep(True)` once, then `sweep(False)` every `interval` seconds (sooner when `wakeup` is
    set) until `stop`. A failed sweep is logged; the next one tries again."""
    woken = wakeup or stop
    everything = True
    while not stop.is_set():
        if wakeup is not None:
            wakeup.clear()
        try:
            count = await sweep(everything)
            everything = False
            if count:
                log.debug("%s: %d", what, count)
        except Exception as exc:  # the next sweep tries again
            log.warning("%s failed: %s", what, type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await woken.wait()
