"""Reindexing: the index values of existing resources extracted again with the parameters now active.

A job runs as an asyncio task of the server process that started it, one type after another, in batches:
each batch is one store write transaction that reads the current versions and replaces their index rows
(no new version, no outbox event). Writes of other requests interleave between batches, and since each
batch reads under the write lock, a resource written meanwhile is indexed either by its own write or by
the batch that comes after it.
"""

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .. import exact_json
from .clock import Clock, fhir_instant
from .search.extraction import Extractor
from .store import Store, StoreTransaction

log = logging.getLogger("nphies_facade.search")

BATCH = 100


@dataclass
class ReindexJob:
    id: int
    types: tuple[str, ...]
    status: str = "queued"  # queued, running, completed, failed, cancelled
    processed: int = 0
    current_type: str | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None

    def parameters(self) -> dict:
        """The job as the part of a Parameters resource."""
        parts: list[dict] = [
            {"name": "id", "valueString": str(self.id)},
            {"name": "status", "valueCode": self.status},
            {"name": "processed", "valueInteger": self.processed},
        ]
        parts += [{"name": "type", "valueCode": t} for t in self.types]
        optional = {"currentType": self.current_type, "started": self.started, "finished": self.finished}
        parts += [{"name": n, "valueString": v} for n, v in optional.items() if v is not None]
        if self.error:
            parts.append({"name": "error", "valueString": self.error})
        return {"name": "job", "part": parts}


class Reindexer:
    """Starts and tracks reindex jobs; `sync` brings the registry up to date inside each batch."""

    def __init__(
        self,
        store: Store,
        extractor: Callable[[], Extractor],
        sync: Callable[[StoreTransaction], Awaitable[object]],
        clock: Clock,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self._extractor = extractor
        self._sync = sync
        self._clock = clock
        self._batch = batch
        self._ids = itertools.count(1)
        self._jobs: list[ReindexJob] = []
        self._tasks: set[asyncio.Task] = set()

    def start(self, types: tuple[str, ...]) -> ReindexJob:
        job = ReindexJob(next(self._ids), types)
        self._jobs.append(job)
        task = asyncio.create_task(self._run(job), name=f"reindex-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def jobs(self) -> list[ReindexJob]:
        return list(self._jobs)

    async def wait(self) -> None:
        """Until every job started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, job: ReindexJob) -> None:
        job.status, job.started = "running", fhir_instant(self._clock())
        try:
            for resource_type in job.types:
                job.current_type = resource_type
                await self._reindex_type(job, resource_type)
            job.status = "completed"
        except asyncio.CancelledError:
            job.status = "cancelled"
            raise
        except Exception as exc:  # the job reports it; the server keeps serving
            log.error("reindex job %d failed: %s", job.id, type(exc).__name__)
            job.status, job.error = "failed", type(exc).__name__
        finally:
            job.current_type, job.finished = None, fhir_instant(self._clock())

    async def _reindex_type(self, job: ReindexJob, resource_type: str) -> None:
        after = 0
        while True:
            async with self.store.transaction() as tx:
                await self._sync(tx)
                versions = await tx.scan(resource_type, after, self._batch)
                extractor = self._extractor()
                await tx.replace_index([(v, extractor.extract(exact_json.loads(v.body))) for v in versions])
            job.processed += len(versions)
            if len(versions) < self._batch:
                return
            after = versions[-1].position
            await asyncio.sleep(0)
