"""Advancing a $submit Task one step: send the claim, check its status, ask again, poll for the answer.

Every step first takes the Task (an update with If-Match that marks the step in flight and sets a lease),
so two runners never perform one step twice; then it exchanges one message with NPHIES; then it writes
the exchange record, the answers and the Task's next step in one transaction. A step abandoned in flight
(the process died, or the step crashed) is taken up again when its lease ends: a send whose fate is
unknown becomes a status-check, never a blind resend.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from ..nphies.events import Event
from ..nphies.fhirjson import copy_json, first_identifier
from ..nphies.gateway import Exchange, NphiesGateway
from ..nphies.messages import (
    MessageBuildError,
    build_claim_message,
    build_poll_request,
    build_status_check,
)
from ..profiles import check_message, has_errors
from ..profiles import operation_outcome as profile_outcome
from ..resources.clock import Clock
from ..resources.context import RequestContext
from ..resources.errors import FhirError
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion, StoreTransaction
from ..workflows.metrics import NPHIES_SENDS, PREAUTH_APPROVAL
from .closure import load_closure
from .config import OperationsConfig
from .exchanges import ExchangeRecorder, count_resends, request_of, sent_references
from .settlements import Settlement, after_claim_sent, after_poll, after_status_check, failed, retry
from .tasks import (
    CHECKING,
    INFORMATION_REQUESTED,
    PENDED,
    POLLING,
    QUEUED,
    REPLAY,
    SENDING,
    STATUS_CHECK,
    TERMINAL,
    Step,
    add_errors,
    add_output,
    at,
    claim_input,
    deadline_of,
    finish,
    is_submit,
    outputs,
    start,
    step_of,
    with_step,
)
from .transactions import in_transaction

log = logging.getLogger("nphies_facade.operations")

# An in-flight step whose lease ended becomes this settled step.
RECOVERY = {SENDING: STATUS_CHECK, CHECKING: STATUS_CHECK, POLLING: PENDED}
CLAIM_EVENTS = (Event.CLAIM_REQUEST.value, Event.PRIORAUTH_REQUEST.value)
RESPONSE_EVENT = {"preauthorization": Event.PRIORAUTH_RESPONSE.value, "claim": Event.CLAIM_RESPONSE.value}


class StepTaken(Exception):
    """Another runner changed the Task first; this one leaves it alone."""


class SubmitSteps:
    def __init__(
        self, service: FhirService, gateway: NphiesGateway, config: OperationsConfig, clock: Clock
    ) -> None:
        self.service = service
        self.gateway = gateway
        self.config = config
        self.clock = clock
        self.ctx = RequestContext.system("operation:submit")
        self.recorder = ExchangeRecorder(service, self.ctx)
        self._handlers: dict[str, Callable[[StoredVersion, dict, Step], Awaitable[float | None]]] = {
            QUEUED: self._send,
            STATUS_CHECK: self._status_check,
            REPLAY: self._send,
            PENDED: self._poll,
            INFORMATION_REQUESTED: self._poll,
        }

    def _now(self) -> datetime:
        return self.clock()

    async def advance(self, task_id: str, force: bool = False) -> float | None:
        """Runs the Task's step when it is due (or now, with `force`); returns the seconds until the
        Task should be looked at again, or None when nothing is left to do."""
        stored = await self._task(task_id)
        if stored is None:
            return None
        task = resource_json(stored)
        if task.get("status") in TERMINAL or not is_submit(task):
            return None
        step, now = step_of(task), self._now().timestamp()
        if step.code in RECOVERY:
            if step.due > now:
                return step.due - now
            step = Step(RECOVERY[step.code], now, step.attempt + (step.code != POLLING))
        elif not force and step.due > now:
            return step.due - now
        handler = self._handlers.get(step.code)
        if handler is None:
            return None
        try:
            return await handler(stored, task, step)
        except StepTaken:
            return None
        except Exception as exc:  # the store is the truth: the Task goes back to a step that is safe to run
            log.error("step %s of Task/%s failed: %s", step.code, task_id, type(exc).__name__)
            return await self._after_crash(task_id, step, type(exc).__name__)

    async def _task(self, task_id: str) -> StoredVersion | None:
        try:
            return await self.service.read("Task", task_id, ctx=self.ctx)
        except FhirError as exc:
            if exc.status in (404, 410):
                return None
            raise

    # ----- the steps -----

    async def _send(self, stored: StoredVersion, task: dict, step: Step) -> float | None:
        """Sends the claim's recorded message (recorded by $submit, or by an earlier send: a resend is the
        same Bundle, byte for byte, so NPHIES answers one it has seen with the answer it gave); a Task
        without one gets its message built, checked and recorded first."""
        record_id, record = await self._last_claim_record(task)
        request = request_of(record) if record is not None else None
        if record is None or request is None:
            return await self._build_and_send(stored, task, step)
        unsent = record.get("docStatus") == "preliminary"
        claimed, _ = await self._take(stored, task, SENDING, step)
        exchange = await self.gateway.send(request)
        count_resends(exchange, step.attempt > 0)
        local = sent_references(record)
        settlement = self._after_claim_sent(exchange, step, task, local)
        full_urls = {ref: url for url, ref in local.items()}
        return await self._settle(claimed, settlement, exchange, full_urls, record_id if unsent else None)

    async def _build_and_send(self, stored: StoredVersion, task: dict, step: Step) -> float | None:
        claim_ref, claim = await self._claim(task)
        closure = await load_closure(self.service, self.ctx, claim, {claim_ref: claim})
        try:
            message = build_claim_message(claim, closure.resolve, self.config.provider)
        except MessageBuildError as exc:
            return await self._settle(stored, failed(f"No NPHIES message can be built: {exc}"))
        issues = check_message(message.bundle)
        if has_errors(issues):
            outcome = profile_outcome([i for i in issues if i.severity in ("error", "fatal")])
            return await self._settle(stored, failed("The message breaks NPHIES profiles", outcome))
        claimed, record_id = await self._take(stored, task, SENDING, step, message=message)
        exchange = await self.gateway.send(message)
        count_resends(exchange, step.attempt > 0)
        settlement = self._after_claim_sent(exchange, step, task, _local(message.full_urls))
        return await self._settle(claimed, settlement, exchange, message.full_urls, record_id)

    def _after_claim_sent(
        self, exchange: Exchange, step: Step, task: dict, local: Mapping[str, str]
    ) -> Settlement:
        claim = _unversioned(claim_input(task) or "")
        now = self._now().timestamp()
        settlement = after_claim_sent(exchange, step, self.config, local, claim, now, deadline_of(task))
        NPHIES_SENDS.labels(_submission_result(settlement)).inc()
        return settlement

    async def _status_check(self, stored: StoredVersion, task: dict, step: Step) -> float | None:
        claim_ref, claim = await self._claim(task)
        closure = await load_closure(self.service, self.ctx, claim, {claim_ref: claim})
        try:
            message = build_status_check(claim, closure.resolve, self.config.provider)
        except MessageBuildError as exc:
            return await self._settle(stored, failed(f"No status-check can be built: {exc}"))
        claimed, _ = await self._take(stored, task, CHECKING, step)
        exchange = await self.gateway.send(message)
        count_resends(exchange, step.attempt > 0)
        settlement = after_status_check(
            exchange, step, self.config, self._now().timestamp(), deadline_of(task)
        )
        return await self._settle(claimed, settlement, exchange, message.full_urls)

    async def _poll(self, stored: StoredVersion, task: dict, step: Step) -> float | None:
        claim_ref, claim = await self._claim(task)
        identifier = first_identifier(claim)
        if identifier is None:
            return await self._settle(stored, failed("The Claim has no identifier to poll for"))
        _, record = await self._last_claim_record(task)
        local = sent_references(record) if record is not None else {}
        message = build_poll_request(
            self.config.provider,
            include=(
                RESPONSE_EVENT.get(claim.get("use", ""), Event.CLAIM_RESPONSE.value),
                "communication-request",
            ),
            focus=identifier,
            count=10,
        )
        claimed, _ = await self._take(stored, task, POLLING, step)
        exchange = await self.gateway.send(message)
        count_resends(exchange, resent=False)
        settlement = after_poll(
            exchange,
            step,
            self.config,
            local,
            _unversioned(claim_ref),
            identifier,
            self._now().timestamp(),
            deadline_of(task),
        )
        return await self._settle(claimed, settlement, exchange, message.full_urls)

    # ----- reading what a step needs -----

    async def _claim(self, task: dict) -> tuple[str, dict]:
        reference = claim_input(task)
        if not reference:
            raise ValueError("a submit Task without its Claim input")
        resource_type, claim_id, _, version = reference.split("/")
        stored = await self.service.vread(resource_type, claim_id, version, ctx=self.ctx)
        return reference, resource_json(stored)

    async def _last_claim_record(self, task: dict) -> tuple[str | None, dict | None]:
        """The exchange record of the Task's last priorauth- or claim-request (its id, and itself)."""
        records = [r for r in outputs(task, "exchange") if r.get("display") in CLAIM_EVENTS]
        if not records:
            return None, None
        record_id = records[-1]["reference"].split("/", 1)[1]
        stored = await self.service.read("DocumentReference", record_id, ctx=self.ctx)
        return record_id, resource_json(stored)

    # ----- writing -----

    async def _take(
        self, stored: StoredVersion, task: dict, code: str, step: Step | None = None, message=None
    ) -> tuple[StoredVersion, str | None]:
        """Marks the step in flight until the lease ends (If-Match: only one runner gets it); a message about
        to be sent gets its exchange record in the same transaction."""
        now = self._now()
        changed = with_step(
            start(copy_json(task), now),
            code,
            now,
            now + timedelta(seconds=self.config.step_lease),
            step.attempt if step else 0,
        )

        async def write(tx: StoreTransaction) -> tuple[StoredVersion, str | None]:
            record_id = None
            if message is not None:
                subject = f"Task/{stored.id}"
                record_id = await self.recorder.sending(message, subject, now, tx, task.get("for"))
                add_output(changed, "exchange", f"DocumentReference/{record_id}", str(message.event))
            return await self._update(stored, changed, tx), record_id

        return await in_transaction(self.service, write)

    async def _update(
        self, stored: StoredVersion, task: dict, tx: StoreTransaction, trusted: bool = True
    ) -> StoredVersion:
        """`trusted` unless the Task now holds something NPHIES sent (an OperationOutcome it answered)."""
        try:
            result = await self.service.update(
                self.ctx, "Task", stored.id, task, if_match=f'W/"{stored.version}"', tx=tx, trusted=trusted
            )
        except FhirError as exc:
            if exc.status in (409, 412):
                raise StepTaken() from None
            raise
        assert result.version is not None
        return result.version

    async def _settle(
        self,
        stored: StoredVersion,
        settlement: Settlement,
        exchange: Exchange | None = None,
        full_urls: Mapping[str, str] | None = None,
        record_id: str | None = None,
    ) -> float | None:
        """Writes the exchange record, the answers and the Task's next step (or end) together. An answer
        the store refuses (it fails FHIR validation) ends the Task failed, recorded without the answer."""
        try:
            return await self._write_settlement(stored, settlement, exchange, full_urls, record_id)
        except FhirError as exc:
            if exc.status != 400 or exchange is None:
                raise
            reason = "The NPHIES answer could not be stored: " + "; ".join(
                i.diagnostics for i in exc.issues[:5]
            )
            exchange.response_text = (exchange.response_text or "") + " (answer not storable)"
            exchange.response = None
            return await self._write_settlement(
                stored, failed(reason, exc.outcome()), exchange, full_urls, record_id
            )

    async def _write_settlement(
        self,
        stored: StoredVersion,
        settlement: Settlement,
        exchange: Exchange | None,
        full_urls: Mapping[str, str] | None,
        record_id: str | None,
    ) -> float | None:
        now = self._now()
        task = resource_json(stored)
        subject = f"Task/{stored.id}"

        async def write(tx: StoreTransaction) -> None:
            if exchange is not None:
                written = await self.recorder.finished(
                    exchange, subject, full_urls or {}, tx, record_id, task.get("for")
                )
                if record_id is None:
                    add_output(task, "exchange", f"DocumentReference/{written}", str(exchange.event))
            for kind, resource in settlement.answers:
                result = await self.service.create(self.ctx, resource, tx=tx)
                assert result.version is not None
                add_output(task, kind, f"{resource['resourceType']}/{result.version.id}")
            _apply(task, settlement, now)
            await self._update(stored, task, tx, trusted=settlement.errors is None)

        await in_transaction(self.service, write)
        _observe_preauth(task, settlement, now)
        return settlement.delay if settlement.status is None else None

    async def _after_crash(self, task_id: str, step: Step, error: str) -> float | None:
        """The Task goes back to the step that is safe to run again (a send to a status-check), or fails
        when it crashed too often."""
        stored = await self._task(task_id)
        if stored is None:
            return None
        task = resource_json(stored)
        if task.get("status") in TERMINAL:
            return None
        current = step_of(task)
        code = RECOVERY.get(current.code, current.code)
        settlement = retry(
            Step(code, current.due, max(current.attempt, step.attempt)),
            code,
            self.config,
            f"internal error ({error})",
        )
        try:
            return await self._settle(stored, settlement)
        except StepTaken:
            return None


def _observe_preauth(task: dict, settlement: Settlement, now: datetime) -> None:
    """A prior authorisation's final answer: the time from its submission (the Task's authoredOn)."""
    final = settlement.status == "completed" and any(
        resource.get("resourceType") == "ClaimResponse" and resource.get("use") == "preauthorization"
        for _, resource in settlement.answers
    )
    authored = task.get("authoredOn")
    if final and authored:
        started = datetime.fromisoformat(authored.replace("Z", "+00:00"))
        PREAUTH_APPROVAL.observe(max((now - started).total_seconds(), 0.0))


def _submission_result(settlement: Settlement) -> str:
    """answered (final answer), queued (to be polled), failed, or retry (sent again later)."""
    if settlement.status == "completed":
        return "answered"
    if settlement.status is not None:
        return "failed"
    return "queued" if any(kind == "interim-response" for kind, _ in settlement.answers) else "retry"


def _apply(task: dict, settlement: Settlement, now: datetime) -> None:
    due = None if settlement.status is not None else now + timedelta(seconds=settlement.delay or 0.0)
    with_step(task, settlement.step, now, due, settlement.attempt, settlement.note)
    if settlement.status is not None:
        start(task, now)
        finish(task, settlement.status, now)
    if settlement.errors is not None:
        add_errors(task, settlement.reason or "failed", settlement.errors)


def _local(full_urls: Mapping[str, str]) -> dict[str, str]:
    return {url: reference.split("/_history/")[0] for reference, url in full_urls.items()}


def _unversioned(reference: str) -> str:
    return reference.split("/_history/")[0]


__all__ = ["StepTaken", "SubmitSteps", "at"]
