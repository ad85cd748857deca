"""Running a unit of writes in one FhirService transaction, again from its start after a transient conflict.

Because the unit runs again from its start, the store may defer its writes to the commit (on SQLite the
group commit applies it with other units; see FhirService.transaction)."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..resources.errors import conflict
from ..resources.service import FhirService
from ..resources.store import StoreTransaction, TransientConflict

T = TypeVar("T")
ATTEMPTS = 8


async def in_transaction(service: FhirService, work: Callable[[StoreTransaction], Awaitable[T]]) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with service.transaction(retried=True) as tx:
                return await work(tx)
        except TransientConflict:
            if attempt == ATTEMPTS:
                raise conflict("Concurrent writes kept conflicting with this one; try again") from None
            await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise AssertionError("unreachable")
