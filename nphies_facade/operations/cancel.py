"""$cancel on a Claim: ask NPHIES to cancel (or nullify) a prior authorization or claim, in real time.

The answer is recorded as a Task (code `cancel`, focus the Claim): completed when NPHIES cancelled the
claim (or had already: BV-00445), failed with NPHIES's errors otherwise. After a cancellation the Claim's
open $submit Tasks end `cancelled`, so nobody polls for an answer that will not come. NPHIES unreachable:
the failed Task is stored and the caller gets 502/504.
"""

import logging
import uuid
from dataclasses import dataclass

from ..nphies.gateway import Exchange, NphiesGateway, Outcome
from ..nphies.messages import MessageBuildError, build_cancel_request
from ..nphies.messages.tasks import CANCEL_REASONS
from ..nphies.parsing import TaskResult
from ..profiles import check_message, has_errors
from ..resources.access import Interaction
from ..resources.clock import Clock, fhir_instant
from ..resources.context import RequestContext
from ..resources.errors import FhirError
from ..resources.searching import SearchOptions
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion
from . import errors
from .closure import load_closure
from .codes import CANCEL, INPUT_TYPES, OPERATION_CODES, SUBMIT
from .config import OperationsConfig
from .eligibility import operation_context
from .exchanges import ExchangeRecorder
from .parameters import check_names, codes, read_parameters, single
from .tasks import CANCELLED, add_errors, add_output, concept, finish, with_step
from .transactions import in_transaction

log = logging.getLogger("nphies_facade.operations")

ALREADY_CANCELLED = "BV-00445"
PARAMETERS = {"reason", "nullify"}
OPEN = "requested,received,accepted,ready,in-progress,on-hold"


@dataclass(frozen=True)
class Cancelled:
    task: StoredVersion
    failure: errors.OutcomeError | None  # NPHIES unreachable: the caller answers 502/504


class CancelOperation:
    def __init__(
        self, service: FhirService, gateway: NphiesGateway, config: OperationsConfig, clock: Clock
    ) -> None:
        self.service = service
        self.gateway = gateway
        self.config = config
        self.clock = clock

    async def run(self, ctx: RequestContext, claim_id: str, body: object | None) -> Cancelled:
        parameters = read_parameters(body)
        check_names(parameters, PARAMETERS, "$cancel")
        reason = codes(parameters, "reason", CANCEL_REASONS, ("WI",))
        if len(reason) > 1:
            raise errors.OutcomeError(400, body=errors.outcome([_issue("reason may be given once")]))
        nullify = single(parameters, "nullify") is True
        stored = await self.service.read("Claim", claim_id, ctx=ctx)
        claim = resource_json(stored)
        await self.service.authorize(ctx, Interaction.OPERATION, "Claim", claim)
        system = operation_context(ctx, "cancel")
        closure = await load_closure(self.service, system, claim, {f"Claim/{claim_id}": claim})
        try:
            message = build_cancel_request(
                claim, closure.resolve, self.config.provider, reason=reason[0], nullify=nullify
            )
        except MessageBuildError as exc:
            raise errors.unbuildable(str(exc)) from None
        issues = check_message(message.bundle)
        if has_errors(issues):
            raise errors.refused_by_profiles(issues)
        exchange = await self.gateway.send(message)
        task = self._task(claim_id, claim, reason[0], nullify)
        failure = _judge(task, exchange, self.clock)
        written = await self._store(task, exchange, message.full_urls, system)
        if task["status"] == "completed":
            await self._end_submissions(claim_id, system)
        return Cancelled(written, failure)

    def _task(self, claim_id: str, claim: dict, reason: str, nullify: bool) -> dict:
        now = fhir_instant(self.clock())
        task: dict = {
            "resourceType": "Task",
            "status": "in-progress",
            "intent": "order",
            "code": concept(OPERATION_CODES, CANCEL, "Cancel a claim or prior authorization at NPHIES"),
            "focus": {"reference": f"Claim/{claim_id}"},
            "authoredOn": now,
            "lastModified": now,
            "executionPeriod": {"start": now},
            "input": [{"type": concept(INPUT_TYPES, "reason"), "valueCode": reason}],
        }
        if nullify:
            task["input"].append({"type": concept(INPUT_TYPES, "nullify"), "valueBoolean": True})
        if isinstance(claim.get("patient"), dict):
            task["for"] = claim["patient"]
        return task

    async def _store(
        self, task: dict, exchange: Exchange, full_urls: dict[str, str], ctx: RequestContext
    ) -> StoredVersion:
        recorder = ExchangeRecorder(self.service, ctx)

        task_id = str(uuid.uuid4())

        async def write(tx) -> StoredVersion:
            record = await recorder.finished(
                exchange, f"Task/{task_id}", full_urls, tx, patient=task.get("for")
            )
            add_output(task, "exchange", f"DocumentReference/{record}", str(exchange.event))
            created = await self.service.create(ctx, task, tx=tx, resource_id=task_id, trusted=True)
            assert created.version is not None
            return created.version

        return await in_transaction(self.service, write)

    async def _end_submissions(self, claim_id: str, ctx: RequestContext) -> None:
        """Ends the Claim's open $submit Tasks as cancelled (a runner changing one meanwhile: asked again)."""
        params = [("focus", f"Claim/{claim_id}"), ("code", f"{OPERATION_CODES}|{SUBMIT}"), ("status", OPEN)]
        result = await self.service.search(("Task",), params, SearchOptions(max_count=1000), ctx=ctx)
        for stored in result.matches:
            await self._end_one(stored, ctx)

    async def _end_one(self, stored: StoredVersion, ctx: RequestContext) -> None:
        for _ in range(5):
            task = resource_json(stored)
            if task.get("status") not in OPEN.split(","):
                return
            now = self.clock()
            with_step(task, CANCELLED, now, None, 0, "cancelled with $cancel")
            finish(task, "cancelled", now)
            try:
                await self.service.update(
                    ctx, "Task", stored.id, task, if_match=f'W/"{stored.version}"', trusted=True
                )
                return
            except FhirError as exc:
                if exc.status != 412:
                    raise
            stored = await self.service.read("Task", stored.id, ctx=ctx)
        log.warning("Task/%s kept changing; it was not marked cancelled", stored.id)


def _judge(task: dict, exchange: Exchange, clock: Clock) -> errors.OutcomeError | None:
    """Ends the cancel Task by NPHIES's answer; returns the 502/504 to answer when there was none."""
    parsed = exchange.parsed()
    now = clock()
    if exchange.outcome is Outcome.ANSWERED and isinstance(parsed, TaskResult):
        found = [e for e in parsed.errors if e.code != ALREADY_CANCELLED]
        if not found:
            finish(task, "completed", now)
            task["businessStatus"] = {"text": "already cancelled" if parsed.errors else "cancelled"}
            return None
        add_errors(
            task, "NPHIES refused the cancellation: " + ", ".join(e.code for e in found), _outcome(found)
        )
        finish(task, "failed", now)
        return None
    if exchange.outcome in (Outcome.ANSWERED, Outcome.REJECTED):
        found = list(parsed.errors) if parsed is not None else []
        failure = errors.refused_by_nphies(found, exchange.status_code)
    else:
        failure = errors.unreachable(exchange)
    add_errors(task, failure.body["issue"][0]["diagnostics"], failure.body)
    finish(task, "failed", now)
    return failure


def _outcome(found) -> dict:
    return errors.outcome([_issue("NPHIES refused the cancellation"), *errors.nphies_issues(found)])


def _issue(diagnostics: str) -> dict:
    return {"severity": "error", "code": "processing", "diagnostics": diagnostics}
