"""Journey 2, the claims lifecycle: an active Claim is checked, submitted, adjudicated and paid.

validate (NPHIES profile rules of the message it makes, business rules, consent) -> submit (a $submit,
whose Task sends, retries and polls; event claim.submitted) -> submitted (waits for that Task to end;
event claim.adjudicated) -> adjudicated (polls for the PaymentReconciliation) -> paid | partially-paid;
a rejected claim goes to denied, with the denial reasons and the appeal deadline
(NPHIES_FACADE_CLAIM_APPEAL_DAYS after adjudication) recorded on the Task.
"""

from ...nphies import canonical
from ...nphies.fhirjson import code_of, codings, extension_value, money
from ...nphies.messages import MessageBuildError, build_claim_message
from ...operations.closure import load_closure
from ...operations.codes import OUTPUT_TYPES
from ...profiles import check_message
from ...resources.clock import fhir_instant
from ...resources.errors import FhirError
from ..context import StepContext
from ..dsl import End, Next, Outcome, Retry, Step, StepFailed, Trigger, Wait, Workflow
from ..metrics import CLAIM_SUBMISSIONS
from . import common, payments
from .settings import JourneySettings, from_environment
from .validation import claim_findings, focal_coverage

NAME = "claims"
ENDED = frozenset({"completed", "failed", "cancelled", "rejected", "entered-in-error"})


async def validate(step: StepContext) -> Outcome:
    claim = await common.require(step, step.subject, "claim")
    if claim.get("status") != "active":
        return End("cancelled", reason=f"claim-{claim.get('status', 'without-status')}")
    coverage_ref = focal_coverage(claim)
    coverage = await step.read(coverage_ref) if coverage_ref else None
    findings = claim_findings(claim, coverage, common.settings(step)) + await _message_findings(step, claim)
    if findings:
        raise StepFailed("claim-invalid", "; ".join(findings[:20]))
    patient = common.referenced(claim.get("patient")) or ""
    given = await common.require_consent(step, patient, common.referenced(claim.get("insurer")))
    return Next("submit", output={"consent": {"reference": given}})


async def _message_findings(step: StepContext, claim: dict) -> list[str]:
    """What the NPHIES profile rules find in the message this Claim makes (what $submit would refuse)."""
    claim_ref = f"Claim/{claim['id']}"
    closure = await load_closure(step.service, step.ctx, claim, {claim_ref: claim})
    try:
        message = build_claim_message(claim, closure.resolve, step.operations.config.provider)
    except MessageBuildError as exc:
        return [f"no NPHIES message can be built: {exc}"]
    return [
        f"{i.expression}: {i.message}" + (f" ({i.rule})" if i.rule else "")
        for i in check_message(message.bundle)
        if i.severity in ("error", "fatal")
    ]


async def submit(step: StepContext) -> Outcome:
    claim = await common.require(step, step.subject, "claim")
    await common.require_consent(
        step, common.referenced(claim.get("patient")) or "", common.referenced(claim.get("insurer"))
    )
    claim_id = step.subject.partition("/")[2]
    try:
        submitted = await step.operations.submit(step.ctx, claim_id, None)
    except FhirError as exc:
        failed = common.refused(exc, "claim-refused")
        if failed is None:
            raise
        raise failed from exc
    task_ref = f"Task/{submitted.task.id}"
    step.emit("claim.submitted", {"claim": step.subject, "submission": task_ref})
    return Wait(
        "submitted",
        until=common.next_look(step, None),
        reason="waiting for NPHIES to adjudicate",
        output={"submission": {"reference": task_ref}, "submitted-at": fhir_instant(step.now())},
    )


async def submitted(step: StepContext) -> Outcome:
    """Follows the $submit Task until it ends; reads the adjudication from its ClaimResponse."""
    submission = await common.require(step, common.referenced(step.output("submission")), "submission")
    if submission.get("status") not in ENDED:
        since = common.instant(step.output("submitted-at"))
        return Wait("submitted", until=common.next_look(step, since), reason="waiting for NPHIES")
    response_ref = _final_response(submission)
    if submission.get("status") != "completed" or response_ref is None:
        CLAIM_SUBMISSIONS.labels(result="failure").inc()
        reason = (submission.get("statusReason") or {}).get("text") or submission.get("status")
        return End("failed", reason="submission-failed", output={"submission-error": str(reason)})
    CLAIM_SUBMISSIONS.labels(result="success").inc()
    response = await common.require(step, response_ref, "claim-response")
    outcome = adjudication(response)
    step.emit(
        "claim.adjudicated", {"claim": step.subject, "claim-response": response_ref, "outcome": outcome}
    )
    found = {
        "claim-response": {"reference": response_ref},
        "adjudication": outcome,
        "adjudicated-at": fhir_instant(step.now()),
        "benefit": benefit(response),
    }
    if outcome in ("approved", "partial"):
        if outcome == "partial":
            found |= _denial(step, response)
        return Next("adjudicated", output=found)
    return Next("denied", output=found | _denial(step, response))


def _final_response(submission: dict) -> str | None:
    for output in reversed(submission.get("output") or []):
        if any(
            c.get("system") == OUTPUT_TYPES and c.get("code") == "claim-response"
            for c in (output.get("type") or {}).get("coding") or []
        ):
            return common.referenced(output.get("valueReference"))
    return None


def adjudication(response: dict) -> str:
    """approved | partial | rejected, from the adjudication-outcome extension (else the items)."""
    found = code_of(extension_value(response, canonical.ADJUDICATION_OUTCOME_EXT))
    if found:
        return found
    outcomes = {
        code_of(extension_value(i, canonical.ADJUDICATION_OUTCOME_EXT)) for i in response.get("item") or []
    }
    if outcomes == {"approved"}:
        return "approved"
    return "rejected" if outcomes <= {"rejected", None} else "partial"


def benefit(response: dict) -> float:
    for total in response.get("total") or []:
        if code_of(total.get("category")) == "benefit":
            return money(total.get("amount")) or 0.0
    return 0.0


def denial_reasons(response: dict) -> list[str]:
    """The payer's reasons: item adjudication reasons (code and display) and NPHIES errors."""
    reasons = []
    for item in response.get("item") or []:
        for entry in item.get("adjudication") or []:
            for coding in codings(entry.get("reason")):
                text = f"item {item.get('itemSequence')}: {coding.get('code')}"
                reasons.append(text + (f" {coding['display']}" if coding.get("display") else ""))
    for error in response.get("error") or []:
        reasons += [f"error: {c.get('code')}" for c in codings(error.get("code"))]
    return reasons


def _denial(step: StepContext, response: dict) -> dict:
    deadline = step.now() + common.settings(step).appeal_window
    return {
        "denial-reasons": "; ".join(denial_reasons(response)) or "no reason given",
        "appeal-deadline": fhir_instant(deadline),
    }


async def adjudicated(step: StepContext) -> Outcome:
    """Polls for the payment of an approved (or partly approved) claim."""
    claim = await common.require(step, step.subject, "claim")
    try:
        paid = await payments.collect(step, claim)
    except payments.PollFailed:
        paid = []
    since = common.instant(step.output("adjudicated-at"))
    if not paid:
        if since is not None and step.now() - since > common.settings(step).payment_wait:
            return End("failed", reason="payment-overdue")
        return Wait("adjudicated", until=common.next_look(step, since), reason="waiting for the payment")
    amount = sum(p.amount for p in paid)
    found = {"payment": {"reference": paid[0].reference}, "paid-amount": amount}
    partial = step.output("adjudication") == "partial" or amount + 0.005 < (money(claim.get("total")) or 0.0)
    return Next("partially-paid" if partial else "paid", output=found)


async def paid(step: StepContext) -> Outcome:
    step.emit("claim.paid", _paid_event(step))
    return End("completed")


async def partially_paid(step: StepContext) -> Outcome:
    step.emit("claim.partially-paid", _paid_event(step))
    return End("completed")


def _paid_event(step: StepContext) -> dict:
    return {
        "claim": step.subject,
        "payment": common.referenced(step.output("payment")),
        "amount": step.output("paid-amount"),
    }


async def denied(step: StepContext) -> Outcome:
    step.emit(
        "claim.denied",
        {
            "claim": step.subject,
            "reasons": step.output("denial-reasons"),
            "appeal-deadline": step.output("appeal-deadline"),
        },
    )
    return End("completed")


def claim_subject(resource: dict) -> str | None:
    """An active Claim (a claim, not a prior authorization) starts its own journey."""
    if resource.get("resourceType") != "Claim" or resource.get("status") != "active":
        return None
    if resource.get("use", "claim") != "claim":
        return None
    return f"Claim/{resource['id']}"


def claim_patient(resource: dict) -> str | None:
    """The Claim's patient: the instance is for them, so revoking their consent cancels it."""
    return common.referenced(resource.get("patient"))


def workflow(journey: JourneySettings | None = None) -> Workflow:
    journey = journey or from_environment()
    return Workflow(
        name=NAME,
        title="Claims lifecycle",
        start="validate",
        triggers=(Trigger("Claim?status=active"),),
        subject=claim_subject,
        patient=claim_patient,
        steps=(
            Step("validate", validate, Retry(attempts=3, initial=1.0)),
            Step("submit", submit, Retry(attempts=5, initial=2.0, maximum=120.0)),
            Step("submitted", submitted, Retry(attempts=5, initial=1.0)),
            Step("adjudicated", adjudicated, Retry(attempts=5, initial=5.0, maximum=600.0), timeout=90.0),
            Step("paid", paid),
            Step("partially-paid", partially_paid),
            Step("denied", denied),
        ),
    )
