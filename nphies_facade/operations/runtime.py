"""NphiesOperations: the operations of one process, wired to the gateway, the cache and the step runner."""

import logging

from ..nphies.gateway import NphiesGateway
from ..resources import audit
from ..resources.access import Interaction
from ..resources.clock import Clock, system_clock
from ..resources.context import RequestContext
from ..resources.errors import error
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion
from ..subscriptions.queue import JobQueue
from .cancel import Cancelled, CancelOperation
from .config import OperationsConfig
from .eligibility import EligibilityAnswer, EligibilityOperation
from .eligibility_cache import EligibilityCache, RedisEligibilityCache, StoreEligibilityCache
from .parameters import check_names, read_parameters
from .provider import ProviderOrganization
from .scheduler import StepScheduler
from .steps import SubmitSteps
from .submit import SubmitOperation, Submitted
from .tasks import is_submit

log = logging.getLogger("nphies_facade.operations")


class NphiesOperations:
    def __init__(
        self,
        service: FhirService,
        gateway: NphiesGateway,
        config: OperationsConfig,
        clock: Clock = system_clock,
        redis_url: str | None = None,
        *,
        runs_steps: bool = True,
    ) -> None:
        """With `redis_url`, $submit steps are jobs on the arq queue: `runs_steps` False (API servers)
        only enqueues them; True (the worker) also sweeps, and its arq consumer calls `run_step_job`."""
        self.service = service
        self.gateway = gateway
        self.config = config
        self.cache = _cache(service, config, clock, redis_url)
        self.provider = ProviderOrganization(service, config.provider)
        self.steps = SubmitSteps(service, gateway, config, clock)
        self.scheduler = StepScheduler(service, self.steps, config, _step_queue(redis_url), sweeps=runs_steps)
        self._eligibility = EligibilityOperation(service, gateway, config, self.cache, self.provider, clock)
        self._submit = SubmitOperation(service, config, self.scheduler.schedule, clock)
        self._cancel = CancelOperation(service, gateway, config, clock)

    async def start(self) -> None:
        await self.scheduler.start()

    async def run_step_job(self, job_id: str) -> float | None:
        return await self.scheduler.run_job(job_id)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.cache.close()
        await self.gateway.aclose()

    async def eligibility(
        self, ctx: RequestContext, coverage_id: str, body: object | None, use_cache: bool = True
    ) -> EligibilityAnswer:
        answer = await self._eligibility.run(ctx, coverage_id, body, use_cache)
        result = f"CoverageEligibilityResponse/{answer.response.id}"
        await self._audit(
            ctx, "eligibility", f"Coverage/{coverage_id}", result, cache="hit" if answer.cached else "miss"
        )
        return answer

    async def submit(self, ctx: RequestContext, claim_id: str, body: object | None) -> Submitted:
        submitted = await self._submit.run(ctx, claim_id, body)
        await self._audit(
            ctx, "submit", f"Claim/{claim_id}", f"Task/{submitted.task.id}", new=submitted.created
        )
        return submitted

    async def cancel(self, ctx: RequestContext, claim_id: str, body: object | None) -> Cancelled:
        cancelled = await self._cancel.run(ctx, claim_id, body)
        await self._audit(ctx, "cancel", f"Claim/{claim_id}", f"Task/{cancelled.task.id}")
        return cancelled

    async def _audit(self, ctx: RequestContext, operation: str, entity: str, result: str, **detail) -> None:
        """Who ran which operation on what, and what came of it (the writes it caused are audited too)."""
        await audit.record(
            self.service,
            ctx,
            action="E",
            subtype="operation",
            entity=entity,
            detail={"operation": f"${operation}", "result": result, **detail},
        )

    async def poll(self, ctx: RequestContext, task_id: str, body: object | None) -> StoredVersion:
        """Runs a $submit Task's step now (a poll, when it waits for a queued answer); returns the Task."""
        check_names(read_parameters(body), set(), "$poll")
        stored = await self.service.read("Task", task_id, ctx=ctx)
        task = resource_json(stored)
        await self.service.authorize(ctx, Interaction.OPERATION, "Task", task)
        if not is_submit(task):
            raise error(422, "business-rule", "$poll works on the Tasks $submit created (code submit)")
        await self.steps.advance(task_id, force=True)
        await self.scheduler.schedule(task_id)
        await self._audit(ctx, "poll", f"Task/{task_id}", f"Task/{task_id}")
        return await self.service.read("Task", task_id, ctx=ctx)


def _cache(
    service: FhirService, config: OperationsConfig, clock: Clock, redis_url: str | None
) -> EligibilityCache:
    if redis_url:
        return RedisEligibilityCache(service, config.eligibility_ttl, clock, redis_url)
    return StoreEligibilityCache(service, config.eligibility_ttl, clock)


def _step_queue(redis_url: str | None) -> JobQueue | None:
    if not redis_url:
        return None
    from ..subscriptions.arq_queue import ArqQueue  # arq is needed with a Redis URL only

    return ArqQueue(redis_url)
