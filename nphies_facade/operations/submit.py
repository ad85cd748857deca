"""$submit on a Claim: send it to NPHIES as a priorauth-request or claim-request, asynchronously.

Answers at once with a Task (code `submit`, focus the Claim, for its patient) that a job advances:
requested -> in-progress -> completed (the ClaimResponse in Task.output) or failed (statusReason and an
OperationOutcome output). One Task per Claim version: the Task identifier is `Claim/{id}/_history/{v}`
and the Task is created conditionally on it, so submitting a version again returns its Task. The message
is built and checked against the NPHIES profiles first; one NPHIES would reject gets a 422 and no Task.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from ..nphies.messages import MessageBuildError, build_claim_message
from ..profiles import check_message, has_errors
from ..resources.access import Interaction
from ..resources.clock import Clock
from ..resources.context import RequestContext
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion
from . import errors
from .closure import load_closure
from .config import OperationsConfig
from .eligibility import operation_context
from .parameters import check_names, read_parameters
from .tasks import submit_criteria, submit_identifier, submit_task

Schedule = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Submitted:
    task: StoredVersion
    created: bool


class SubmitOperation:
    def __init__(
        self, service: FhirService, config: OperationsConfig, schedule: Schedule, clock: Clock
    ) -> None:
        self.service = service
        self.config = config
        self.schedule = schedule
        self.clock = clock

    async def run(self, ctx: RequestContext, claim_id: str, body: object | None) -> Submitted:
        check_names(read_parameters(body), set(), "$submit")
        stored = await self.service.read("Claim", claim_id, ctx=ctx)
        claim = resource_json(stored)
        await self.service.authorize(ctx, Interaction.OPERATION, "Claim", claim)
        system = operation_context(ctx, "submit")
        existing = await self.service.find_ids(
            "Task", [("identifier", submit_criteria(claim_id, stored.version).removeprefix("identifier="))]
        )
        if existing:
            return Submitted(await self.service.read("Task", existing[0], ctx=system), False)
        await self._check(claim, claim_id, stored.version, system)
        now = self.clock()
        task = submit_task(
            claim_id,
            stored.version,
            claim,
            now,
            now + timedelta(seconds=self.config.answer_deadline),
            ctx.fhir_user,
        )
        result = await self.service.create(
            system, task, if_none_exist=submit_criteria(claim_id, stored.version)
        )
        assert result.version is not None
        if result.created:
            await self.schedule(result.version.id)
        return Submitted(result.version, result.created)

    async def _check(self, claim: dict, claim_id: str, version: int, ctx: RequestContext) -> None:
        """422 unless the Claim makes a message NPHIES could accept."""
        if not claim.get("identifier"):
            raise errors.unbuildable("Claim.identifier is required: NPHIES matches its answers by it")
        reference = submit_identifier(claim_id, version)
        closure = await load_closure(self.service, ctx, claim, {reference: claim})
        try:
            message = build_claim_message(claim, closure.resolve, self.config.provider)
        except MessageBuildError as exc:
            raise errors.unbuildable(str(exc)) from None
        issues = check_message(message.bundle)
        if has_errors(issues):
            raise errors.refused_by_profiles(issues)
