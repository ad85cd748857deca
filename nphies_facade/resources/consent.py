"""Consent: may a patient's data be used for a purpose (by an actor)? And what revoking consent stops.

Workflows and NPHIES exchanges call `check` (or `require`, which raises `ConsentRequired`, code
`consent-missing`) before they use a patient's data. A patient's Consent resources (`Consent.patient`) are
evaluated as R4 describes: only `active` ones whose period covers now count; the base provision's `type`
(permit by default) holds for what it applies to (purpose, actor, period), nested provisions are the
exceptions, and any applicable deny wins over a permit.

When a Consent becomes `inactive` or `rejected` (or is deleted), the revocation hooks run after the change
commits. The default hook cancels the patient's pending Tasks (Task.for), so no workflow step runs on
after the revocation; `on_revoked(service, hook)` adds more (e.g. to drop queued jobs).
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from .. import exact_json
from .clock import fhir_instant
from .compartment import resources_referring
from .context import RequestContext
from .errors import FhirError, Issue
from .references import codes_at, relative
from .store import StoredVersion

if TYPE_CHECKING:
    from .service import FhirService

log = logging.getLogger("nphies_facade.consent")

REVOKED = frozenset({"inactive", "rejected"})
PENDING_TASK_STATUSES = frozenset(
    {"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"}
)
MISSING, GRANTED, DENIED = "consent-missing", "consent-granted", "consent-denied"
REVOKED_REASON = "consent-revoked"

RevocationHook = Callable[["FhirService", RequestContext, str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    permitted: bool
    code: str
    consent: str | None = None

    @property
    def reason(self) -> str:
        return {
            GRANTED: "an active Consent permits it",
            DENIED: "an active Consent denies it",
            MISSING: "no active Consent of the patient permits it",
        }[self.code]


class ConsentRequired(FhirError):
    """A 403 whose diagnostics start with the decision code (consent-missing / consent-denied)."""

    def __init__(self, decision: ConsentDecision) -> None:
        super().__init__(403, [Issue("forbidden", f"{decision.code}: {decision.reason}")])
        self.decision = decision


def _within(period: object, now: str) -> bool:
    if not isinstance(period, dict):
        return True
    start, end = period.get("start"), period.get("end")
    return (not isinstance(start, str) or _instant(start) <= now) and (
        not isinstance(end, str) or now <= _instant(end)
    )


def _instant(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return fhir_instant(moment)


def _applies(provision: dict, purpose: str | None, actor: str | None, now: str, exception: bool) -> bool:
    """Whether a provision covers this use. A purpose or actor the caller leaves out does not narrow the
    base provision, but an exception limited to some purposes or actors applies only to those named."""
    if not _within(provision.get("period"), now):
        return False
    if provision.get("purpose"):
        if purpose is None:
            return not exception
        if purpose not in codes_at(provision, "purpose"):
            return False
    actors = [relative(r) for r in _actor_references(provision)]
    if not actors:
        return True
    return not exception if actor is None else relative(actor) in actors


def _actor_references(provision: dict) -> list[str]:
    found = []
    for item in provision.get("actor") or []:
        reference = item.get("reference") if isinstance(item, dict) else None
        if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
            found.append(reference["reference"])
    return found


def evaluate(consent: dict, purpose: str | None, actor: str | None, now: str) -> str | None:
    """'permit', 'deny' or None (the Consent says nothing about this use)."""
    if consent.get("status") != "active":
        return None
    provision = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
    if not _applies(provision, purpose, actor, now, exception=False):
        return None
    decision = provision.get("type", "permit")
    for nested in provision.get("provision") or []:
        if isinstance(nested, dict) and _applies(nested, purpose, actor, now, exception=True):
            decision = nested.get("type", decision)
    return decision if decision in ("permit", "deny") else None


async def patient_consents(service: "FhirService", patient: str) -> list[dict]:
    return await resources_referring(service, "Consent", ["patient"], relative(patient))


async def check(
    service: "FhirService", patient: str, purpose: str | None = None, actor: str | None = None
) -> ConsentDecision:
    """Whether the patient's Consents permit using their data for `purpose` (a v3-ActReason code such as
    HPAYMT, or 'system|code') by `actor` ("Organization/1"); time from the service's clock."""
    now = fhir_instant(service.clock())
    permitted_by = None
    for consent in await patient_consents(service, patient):
        decision = evaluate(consent, purpose, actor, now)
        if decision == "deny":
            return ConsentDecision(False, DENIED, f"Consent/{consent.get('id')}")
        if decision == "permit" and permitted_by is None:
            permitted_by = f"Consent/{consent.get('id')}"
    if permitted_by is not None:
        return ConsentDecision(True, GRANTED, permitted_by)
    return ConsentDecision(False, MISSING)


async def require(
    service: "FhirService", patient: str, purpose: str | None = None, actor: str | None = None
) -> ConsentDecision:
    decision = await check(service, patient, purpose, actor)
    if not decision.permitted:
        raise ConsentRequired(decision)
    return decision


# ----- revocation -----


class ConsentWatch:
    """Runs the revocation hooks after a Consent of a patient is revoked (committed)."""

    def __init__(self, service: "FhirService") -> None:
        self.service = service
        self.hooks: list[RevocationHook] = [cancel_pending_tasks]
        service.commit_hooks.append(self._committed)

    async def _committed(self, ctx: RequestContext, stored: StoredVersion) -> None:
        if stored.resource_type != "Consent":
            return
        patient = await self._revoked_patient(stored)
        if patient is None:
            return
        consent = f"Consent/{stored.id}"
        for hook in self.hooks:
            await hook(self.service, ctx, patient, consent)

    async def _revoked_patient(self, stored: StoredVersion) -> str | None:
        if stored.body is not None:
            consent = exact_json.loads(stored.body)
            if consent.get("status") not in REVOKED:
                return None
        else:
            previous = await self.service.store.vread("Consent", stored.id, stored.version - 1)
            if previous is None or previous.body is None:
                return None
            consent = exact_json.loads(previous.body)
        reference = (consent.get("patient") or {}).get("reference")
        return relative(reference) if isinstance(reference, str) else None


_watches: "WeakKeyDictionary[FhirService, ConsentWatch]" = WeakKeyDictionary()


def watch(service: "FhirService") -> ConsentWatch:
    """The service's ConsentWatch, installed on first use."""
    existing = _watches.get(service)
    if existing is None:
        existing = _watches[service] = ConsentWatch(service)
    return existing


def on_revoked(service: "FhirService", hook: RevocationHook) -> None:
    """Adds `hook(service, ctx, patient_ref, consent_ref)`, run after a revocation commits."""
    watch(service).hooks.append(hook)


async def cancel_pending_tasks(
    service: "FhirService", ctx: RequestContext, patient: str, consent: str
) -> None:
    """Cancels the patient's Tasks that have not finished (status cancelled, statusReason consent-revoked)."""
    actor = RequestContext(actor="consent-revocation", scopes=("system/Task.rus",), trace_id=ctx.trace_id)
    cancelled = 0
    for task in await resources_referring(service, "Task", ["subject"], patient):
        cancelled += await _cancel(service, actor, task)
    log.info("consent revocation cancelled %d pending Task(s) trace=%s", cancelled, ctx.trace_id)


async def _cancel(service: "FhirService", actor: RequestContext, task: dict, tries: int = 5) -> int:
    """Cancels the Task unless it finished; a workflow step that moved it on meanwhile (412) makes it
    read the Task again and retry. 1 when it cancelled it."""
    for _ in range(tries):
        if task.get("status") not in PENDING_TASK_STATUSES:
            return 0
        version = task.get("meta", {}).get("versionId")
        task["status"] = "cancelled"
        task["statusReason"] = {"text": REVOKED_REASON}
        try:
            await service.update(actor, "Task", task["id"], task, if_match=f'W/"{version}"')
            return 1
        except FhirError as exc:
            if exc.status != 412:
                log.warning("could not cancel a pending Task after a consent revocation: %s", exc.status)
                return 0
        stored = await service.store.read("Task", task["id"])
        if stored is None or stored.body is None:
            return 0
        task = exact_json.loads(stored.body)
    log.warning("could not cancel a pending Task after a consent revocation: it kept changing")
    return 0
