"""$submit on a Claim: send it to NPHIES as a priorauth-request or claim-request, asynchronously.

Answers at once with a Task (code `submit`, focus the Claim, for its patient) that a job advances:
requested -> in-progress -> completed (the ClaimResponse in Task.output) or failed (statusReason and an
OperationOutcome output). One Task per Claim version: the Task identifier is `Claim/{id}/_history/{v}`
and the Task is created conditionally on it, so submitting a version again returns its Task. The message
is built and checked against the NPHIES profiles first (one NPHIES would reject gets a 422 and no Task),
and recorded with the Task, so what goes out, and any resend of it, is that Bundle byte for byte.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from ..nphies.messages import Message, MessageBuildError, build_claim_message
from ..profiles import check_message, has_errors
from ..resources.access import Interaction
from ..resources.clock import Clock
from ..resources.context import RequestContext
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion, StoreTransaction
from . import errors
from .closure import load_closure
from .config import OperationsConfig
from .eligibility import operation_context
from .exchanges import ExchangeRecorder
from .parameters import check_names, read_parameters
from .tasks import add_output, submit_criteria, submit_identifier, submit_task
from .transactions import in_transaction

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
        message = await self._message(claim, claim_id, stored.version, system)
        created = await self._create(claim_id, stored.version, claim, message, ctx, system)
        if created.created:
            await self.schedule(created.task.id)
        return created

    async def _create(
        self,
        claim_id: str,
        version: int,
        claim: dict,
        message: Message,
        ctx: RequestContext,
        system: RequestContext,
    ) -> Submitted:
        """The Task and the record of its message, together; the Task of a concurrent $submit if it won."""
        now = self.clock()
        deadline = now + timedelta(seconds=self.config.answer_deadline)
        task = submit_task(claim_id, version, claim, now, deadline, ctx.fhir_user)
        task_id, record_id = str(uuid.uuid4()), str(uuid.uuid4())
        add_output(task, "exchange", f"DocumentReference/{record_id}", str(message.event))
        recorder = ExchangeRecorder(self.service, system)

        async def write(tx: StoreTransaction) -> Submitted:
            criteria = submit_criteria(claim_id, version)
            result = await self.service.create(
                system, task, if_none_exist=criteria, tx=tx, resource_id=task_id, trusted=True
            )
            assert result.version is not None
            if result.created:
                await recorder.sending(message, f"Task/{task_id}", now, tx, task.get("for"), record_id)
            return Submitted(result.version, result.created)

        return await in_transaction(self.service, write)

    async def _message(self, claim: dict, claim_id: str, version: int, ctx: RequestContext) -> Message:
        """The message for the Claim; 422 unless it is one NPHIES could accept."""
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
        return message
