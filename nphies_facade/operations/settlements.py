"""What an exchange of a $submit Task means for the Task: the next step, or its end, and what to store.

Pure functions: an Exchange (and the Task's step) in, a Settlement out. The gateway's outcome decides:
answered -> read the answer; rejected -> the Task fails with NPHIES's errors; failed (nothing reached
NPHIES, or an idempotent poll/status-check) -> try again later, then fail; unknown or malformed (a claim
that may have been processed) -> ask NPHIES with a status-check before anything is sent again.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..nphies.fhirjson import Identifier
from ..nphies.gateway import Exchange, Outcome
from ..nphies.parsing import (
    ClaimResponseResult,
    CommunicationRequestResult,
    NphiesError,
    PollResponse,
    Response,
    TaskResult,
    claim_responses_for,
    focus_of,
)
from . import errors
from .answers import localize
from .config import OperationsConfig
from .tasks import (
    ANSWERED,
    CANCELLED,
    ERROR,
    FAILED,
    INFORMATION_REQUESTED,
    PENDED,
    QUEUED,
    REPLAY,
    STATUS_CHECK,
    Step,
)

UNKNOWN_CLAIM = "BV-00459"  # status-check: NPHIES does not know the claim


@dataclass
class Settlement:
    """step: the new businessStatus; status: the Task's end (None: it goes on, `delay` seconds from now);
    answers: (output kind, resource) to store and link; reason/errors: why it failed."""

    step: str
    status: str | None = None
    delay: float | None = None
    attempt: int = 0
    answers: list[tuple[str, dict]] = field(default_factory=list)
    reason: str | None = None
    errors: dict | None = None
    note: str | None = None


def failed(reason: str, outcome: dict | None = None, step: str = FAILED, answers=None) -> Settlement:
    body = outcome or errors.outcome([{"severity": "error", "code": "processing", "diagnostics": reason}])
    return Settlement(step, "failed", answers=list(answers or []), reason=reason, errors=body)


def with_errors(reason: str, found: Sequence[NphiesError], answers=None) -> Settlement:
    issues = [{"severity": "error", "code": "processing", "diagnostics": reason}] + errors.nphies_issues(
        found
    )
    codes = ", ".join(e.code for e in found)
    return failed(f"{reason}: {codes}" if codes else reason, errors.outcome(issues), ERROR, answers)


def retry(step: Step, code: str, config: OperationsConfig, why: str) -> Settlement:
    """The same kind of step again after the retry backoff, or failed when the attempts are used up."""
    attempt = step.attempt + 1
    if attempt >= config.send_attempts:
        return failed(f"{why}; gave up after {attempt} attempts")
    return Settlement(code, delay=config.retry_delay(step.attempt), attempt=attempt, note=why)


def next_poll(
    step: Step,
    config: OperationsConfig,
    now: float,
    deadline: float | None,
    code: str = PENDED,
    answers: list[tuple[str, dict]] | None = None,
    first: bool = False,
) -> Settlement:
    attempt = 0 if first else step.attempt + 1
    delay = config.poll_delay(attempt)
    if deadline is not None and now + delay > deadline:
        return failed("NPHIES gave no final answer before the deadline", answers=answers)
    return Settlement(code, delay=delay, attempt=attempt, answers=list(answers or []))


def stored_answer(bundle: dict, resource: dict, local: Mapping[str, str], claim: str) -> dict:
    """An answer resource made ready to store, its `request` pointing at our Claim."""
    answer = localize(resource, bundle, local)
    if answer.get("resourceType") == "ClaimResponse":
        answer.setdefault("request", {})["reference"] = claim
    return answer


def after_claim_sent(
    exchange: Exchange,
    step: Step,
    config: OperationsConfig,
    local: Mapping[str, str],
    claim: str,
    now: float,
    deadline: float | None,
) -> Settlement:
    """After a priorauth-request or claim-request (or the same Bundle sent again)."""
    parsed = exchange.parsed()
    if exchange.outcome is Outcome.ANSWERED and isinstance(parsed, ClaimResponseResult):
        focus = focus_of(parsed.bundle)
        if focus is None:
            return with_errors("NPHIES answered without a ClaimResponse", parsed.errors)
        answer = stored_answer(parsed.bundle, focus, local, claim)
        if parsed.errors or parsed.outcome == "error":
            return with_errors("NPHIES answered with errors", parsed.errors, [("claim-response", answer)])
        if parsed.queued:
            return next_poll(step, config, now, deadline, answers=[("interim-response", answer)], first=True)
        return Settlement(
            ANSWERED, "completed", answers=[("claim-response", answer)], note=_adjudicated(parsed)
        )
    if exchange.outcome in (Outcome.ANSWERED, Outcome.REJECTED):
        found = tuple(parsed.errors) if parsed is not None else ()
        return with_errors(f"NPHIES refused the message (HTTP {exchange.status_code})", found)
    if exchange.outcome is Outcome.FAILED:
        return retry(step, QUEUED, config, f"NPHIES could not be reached ({exchange.error})")
    return Settlement(STATUS_CHECK, delay=0.0, note=f"the answer was lost ({exchange.error})")


def after_status_check(
    exchange: Exchange, step: Step, config: OperationsConfig, now: float, deadline: float | None
) -> Settlement:
    """After a status-check sent because the answer to a claim was lost."""
    parsed = exchange.parsed()
    if exchange.outcome is Outcome.ANSWERED and isinstance(parsed, TaskResult):
        codes = {e.code for e in parsed.errors}
        if UNKNOWN_CLAIM in codes:
            return retry(step, QUEUED, config, "NPHIES never received the claim")
        if parsed.errors:
            return with_errors("NPHIES refused the status check", parsed.errors)
        if parsed.status == "complete":
            return Settlement(REPLAY, delay=0.0, attempt=step.attempt)
        if parsed.status == "cancelled":
            return Settlement(CANCELLED, "cancelled", note="NPHIES reports the claim cancelled")
        return next_poll(step, config, now, deadline, first=True)
    if exchange.outcome is Outcome.REJECTED:
        found = tuple(parsed.errors) if parsed is not None else ()
        return with_errors(f"NPHIES refused the status check (HTTP {exchange.status_code})", found)
    return retry(step, STATUS_CHECK, config, f"the status check got no answer ({exchange.error})")


def after_poll(
    exchange: Exchange,
    step: Step,
    config: OperationsConfig,
    local: Mapping[str, str],
    claim: str,
    identifier: Identifier,
    now: float,
    deadline: float | None,
) -> Settlement:
    """After a poll-request for the answers about one claim."""
    parsed = exchange.parsed()
    if exchange.outcome is Outcome.REJECTED or (
        exchange.outcome is Outcome.ANSWERED and isinstance(parsed, PollResponse) and parsed.errors
    ):
        found = tuple(parsed.errors) if parsed is not None else ()
        return with_errors(f"NPHIES refused the poll (HTTP {exchange.status_code})", found)
    if exchange.outcome is not Outcome.ANSWERED or not isinstance(parsed, PollResponse):
        return next_poll(step, config, now, deadline, step_code_of(step))
    return _polled(parsed, step, config, local, claim, identifier, now, deadline)


def step_code_of(step: Step) -> str:
    return step.code if step.code in (PENDED, INFORMATION_REQUESTED) else PENDED


def _polled(
    poll: PollResponse,
    step: Step,
    config: OperationsConfig,
    local: Mapping[str, str],
    claim: str,
    identifier: Identifier,
    now: float,
    deadline: float | None,
) -> Settlement:
    requests = [
        m for m in poll.messages if isinstance(m, CommunicationRequestResult) and _about(m, identifier)
    ]
    responses = claim_responses_for(poll.messages, identifier)
    answers = [("communication-request", _stored(m, local, claim)) for m in requests]
    for response in responses:
        stored = _stored(response, local, claim)
        if response.errors or response.outcome == "error":
            return with_errors(
                "NPHIES answered with errors", response.errors, [*answers, ("claim-response", stored)]
            )
        if not response.queued:
            answers.append(("claim-response", stored))
            return Settlement(ANSWERED, "completed", answers=answers, note=_adjudicated(response))
        answers.append(("interim-response", stored))
    code = INFORMATION_REQUESTED if requests else step_code_of(step)
    return next_poll(step, config, now, deadline, code, answers)


def _stored(message: Response, local: Mapping[str, str], claim: str) -> dict:
    focus = focus_of(message.bundle) or {}
    return stored_answer(message.bundle, focus, local, claim)


def _about(request: CommunicationRequestResult, identifier: Identifier) -> bool:
    return any(i.value == identifier.value for i in request.about)


def _adjudicated(response: ClaimResponseResult) -> str | None:
    return response.adjudication_outcome or response.outcome


__all__ = [
    "Settlement",
    "after_claim_sent",
    "after_poll",
    "after_status_check",
    "failed",
    "next_poll",
    "retry",
    "with_errors",
]
