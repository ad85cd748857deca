"""What both journeys do: read their resources, require the patient's consent, treat operation errors,
and pace the waits for an answer that comes later."""

from datetime import date, datetime, timedelta, timezone

from ...resources import consent
from ...resources.errors import FhirError
from ..context import StepContext
from ..dsl import StepFailed
from .settings import JourneySettings, settings_of

SAUDI_TIME = timezone(timedelta(hours=3))
FIRST_WAIT, LONGEST_WAIT = 0.2, 3600.0


def settings(step: StepContext) -> JourneySettings:
    return settings_of(step.settings)


def today(step: StepContext) -> date:
    """The date in Saudi Arabia, which is what NPHIES compares coverage periods with."""
    return step.now().astimezone(SAUDI_TIME).date()


def reference(resource: dict) -> dict:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def referenced(value: object) -> str | None:
    """`Type/id` from a Task input/output value (a Reference) or a plain string."""
    if isinstance(value, dict):
        found = value.get("reference")
        return found if isinstance(found, str) else None
    return value if isinstance(value, str) else None


async def require(step: StepContext, ref: str | None, what: str) -> dict:
    """The stored resource, or the step fails with `<what>-missing`."""
    found = await step.read(ref) if ref else None
    if found is None:
        raise StepFailed(f"{what}-missing", f"{ref or what} is not stored")
    return found


async def require_consent(step: StepContext, patient: str, payer: str | None) -> str:
    """The Consent that lets the patient's data go to the payer; else the step fails (consent-missing,
    or consent-denied), so a journey never shares data without it. Steps that send to NPHIES call it
    again right before sending: a revocation since validation stops them."""
    decision = await consent.check(step.service, patient, settings(step).consent_purpose, payer)
    if not decision.permitted:
        raise StepFailed(decision.code, f"{decision.reason} (sharing {patient} with {payer})")
    assert decision.consent is not None
    return decision.consent


def refused(exc: FhirError, reason: str) -> StepFailed | None:
    """A 4xx from an operation is for a person to fix (the step fails); a 5xx is retried (None)."""
    if exc.status >= 500:
        return None
    return StepFailed(reason, str(exc) or f"HTTP {exc.status}")


def next_look(step: StepContext, since: datetime | None) -> datetime:
    """When to look again for an answer that comes later: after as long again as waited so far (between
    200 ms and an hour), so a wait of any length costs a few looks (each one a write of the Task)."""
    now = step.now()
    waited = (now - since).total_seconds() if since is not None else 0.0
    return now + timedelta(seconds=min(max(waited, FIRST_WAIT), LONGEST_WAIT))


def instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
