"""Journey 1, registration and eligibility: a Patient with an active Coverage is checked and asked for.

validate (NPHIES demographics and the Coverage; an active Consent that lets the data go to the payer,
else the instance fails with consent-missing) -> eligibility ($eligibility, the answer stored and
linked) -> verified (event eligibility.verified); a payer that does not confirm the coverage opens a
manual review Task (event eligibility.failed, SLA NPHIES_FACADE_ELIGIBILITY_REVIEW_SLA_HOURS); the
reviewer's approval continues to verified, a rejection ends the instance failed (not-eligible).
"""

from datetime import datetime

from ...nphies import canonical
from ...nphies.fhirjson import code_of, extension_value
from ...resources.errors import FhirError
from ...resources.service import resource_json
from ...resources.store import version_number
from ..context import StepContext
from ..dsl import AskPerson, End, Next, Outcome, Retry, Step, StepFailed, Trigger, Workflow
from ..metrics import ELIGIBILITY_TURNAROUND
from . import common
from .settings import JourneySettings, from_environment
from .validation import coverage_findings, patient_findings

NAME = "eligibility"
ELIGIBLE = "eligible"


async def validate(step: StepContext) -> Outcome:
    patient_ref = step.subject
    patient = await common.require(step, patient_ref, "patient")
    coverage = await _active_coverage(step, patient_ref)
    if coverage is None:
        raise StepFailed("coverage-missing", f"{patient_ref} has no active Coverage")
    payer_ref = common.referenced((coverage.get("payor") or [None])[0])
    payer = await step.read(payer_ref) if payer_ref else None
    today = common.today(step)
    findings = patient_findings(patient, today) + coverage_findings(coverage, payer, patient_ref, today)
    if findings:
        raise StepFailed("invalid-registration", "; ".join(findings[:20]))
    given = await common.require_consent(step, patient_ref, payer_ref)
    coverage_ref = f"Coverage/{coverage['id']}"
    step.emit("patient.registered", {"patient": patient_ref, "coverage": coverage_ref})
    found = {"coverage": {"reference": coverage_ref}, "payer": {"reference": payer_ref}}
    return Next("eligibility", output=found | {"consent": {"reference": given}})


async def _active_coverage(step: StepContext, patient: str) -> dict | None:
    """The Coverage that started the instance, while active; else the patient's latest active one."""
    trigger = (common.referenced(step.input("trigger")) or "").split("/_history/")[0]
    if trigger.startswith("Coverage/"):
        coverage = await step.read(trigger)
        if coverage is not None and coverage.get("status") == "active":
            return coverage
    found = await step.search("Coverage", [("beneficiary", patient), ("status", "active")])
    found.sort(key=lambda c: (c.get("meta") or {}).get("lastUpdated", ""), reverse=True)
    return found[0] if found else None


async def eligibility(step: StepContext) -> Outcome:
    coverage_ref = common.referenced(step.output("coverage")) or ""
    await common.require_consent(step, step.subject, common.referenced(step.output("payer")))
    try:
        answer = await step.operations.eligibility(step.ctx, coverage_ref.partition("/")[2], None)
    except FhirError as exc:
        failed = common.refused(exc, "eligibility-refused")
        if failed is None:
            raise
        raise failed from exc
    response = resource_json(answer.response)
    verdict = eligibility_verdict(response, coverage_ref)
    found = {
        "eligibility-response": {"reference": f"CoverageEligibilityResponse/{answer.response.id}"},
        "eligibility": verdict,
    }
    if verdict == ELIGIBLE:
        return Next("verified", output=found)
    journey = common.settings(step)
    step.emit("eligibility.failed", {"patient": step.subject, "coverage": coverage_ref, "verdict": verdict})
    return AskPerson(
        owner=journey.eligibility_review_owner,
        description=f"Review eligibility of {step.subject}: the payer answered {verdict}",
        on_approve="verified",
        on_reject="not-eligible",
        sla=journey.review_sla,
        input=found,
        output=found,
    )


def eligibility_verdict(response: dict, coverage: str) -> str:
    """`eligible`, or why not: the site eligibility code (not-active, out-network ...), `not-inforce`,
    or `error` (with the NPHIES error codes) when the payer could not answer."""
    if response.get("outcome") != "complete" or response.get("error"):
        codes = [code_of(e.get("code")) for e in response.get("error") or []]
        return "error" + (f": {', '.join(c for c in codes if c)}" if any(codes) else "")
    insurances = response.get("insurance") or []
    ours = [i for i in insurances if (i.get("coverage") or {}).get("reference") == coverage] or insurances
    if not ours:
        return "no-insurance"
    for insurance in ours:
        site = code_of(extension_value(insurance, canonical.SITE_ELIGIBILITY_EXT))
        site = site or code_of(extension_value(response, canonical.SITE_ELIGIBILITY_EXT))
        if site not in (None, ELIGIBLE):
            return site
        if insurance.get("inforce") is False:
            return "not-inforce"
    return ELIGIBLE


async def verified(step: StepContext) -> Outcome:
    started = await _registered_at(step)
    if started is not None:
        ELIGIBILITY_TURNAROUND.observe(max((step.now() - started).total_seconds(), 0.0))
    response = common.referenced(step.output("eligibility-response"))
    step.emit("eligibility.verified", {"patient": step.subject, "eligibility-response": response})
    return End("completed")


async def _registered_at(step: StepContext) -> datetime | None:
    """When the Coverage version that started the instance was written (else when the instance began)."""
    trigger = common.referenced(step.input("trigger")) or ""
    resource_type, _, rest = trigger.partition("/")
    resource_id, _, version = rest.partition("/_history/")
    number = version_number(version)
    if number is not None:
        stored = await step.service.store.vread(resource_type, resource_id, number)
        if stored is not None:
            return common.instant(stored.last_updated)
    return common.instant(step.task.get("authoredOn"))


async def not_eligible(step: StepContext) -> Outcome:
    return End("failed", reason="not-eligible")


def coverage_subject(resource: dict) -> str | None:
    """An active Coverage starts the journey of its beneficiary."""
    if resource.get("resourceType") != "Coverage" or resource.get("status") != "active":
        return None
    return common.referenced(resource.get("beneficiary"))


def workflow(journey: JourneySettings | None = None) -> Workflow:
    journey = journey or from_environment()
    return Workflow(
        name=NAME,
        title="Patient registration and eligibility",
        start="validate",
        triggers=(Trigger("Coverage?status=active"),),
        subject=coverage_subject,
        steps=(
            Step("validate", validate, Retry(attempts=3, initial=1.0)),
            Step(
                "eligibility",
                eligibility,
                Retry(attempts=5, initial=2.0, maximum=120.0),
                timeout=90.0,
                escalate_to=journey.eligibility_escalation_owner,
            ),
            Step("verified", verified),
            Step("not-eligible", not_eligible),
        ),
    )
