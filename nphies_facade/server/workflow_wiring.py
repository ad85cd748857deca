"""Builds the workflow engine of one process from its settings.

In the embedded mode (no Redis) `serve` runs the step jobs in process and sweeps the instances. With
Redis, API servers only enqueue step jobs on the arq queue; `nphies-facade worker` runs and sweeps them.
"""

from typing import Any

from ..resources.clock import Clock
from ..resources.service import FhirService
from ..subscriptions.queue import JobQueue
from ..workflows.engine import STEP_PREFIX, Engine, EngineConfig
from .settings import Settings

WORKFLOW_JOB_KIND = STEP_PREFIX.rstrip(":")  # the job kind (id prefix) of workflow steps


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        sweep_interval=settings.workflow_sweep_interval, concurrency=settings.workflow_concurrency
    )


def workflow_engine(
    settings: Settings, service: FhirService, clock: Clock, operations: Any, *, runs_jobs: bool
) -> Engine:
    queue: JobQueue | None = None
    if settings.redis_url:
        from ..subscriptions.arq_queue import ArqQueue  # arq is needed with a Redis URL only

        queue = ArqQueue(settings.redis_url)
    return Engine(
        service,
        clock,
        engine_config(settings),
        queue=queue,
        runs_jobs=runs_jobs,
        settings=settings,
        operations=operations,
    )
