"""Retention: purge or anonymise PHI past its retention period, history included; legal holds respected.

Rules are configuration, per resource type: `{"Patient": {"days": 3650, "action": "anonymise"},
"Claim": {"days": 2555, "action": "purge"}}`. A resource is past its period when its current version
(a deletion included) was last updated more than `days` ago. `purge` removes the resource with every
version and index value; `anonymise` writes a new version without the identifying elements (through
FhirService, so index and subscribers follow) and rewrites every earlier version the same way. A resource
whose latest content carries the legal-hold tag (meta.tag system `urn:nphies-facade:retention`, code
`legal-hold`) is never touched. Every action writes an audit record in its own transaction.

`sweep` is the function a worker calls; `run_periodically` is the embedded server's asyncio task.
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .. import exact_json
from .audit import AuditEntry, payload_digest
from .clock import fhir_instant
from .context import RequestContext
from .security_store import SecurityStore
from .store import StoredVersion, StoreTransaction
from .types import is_supported

if TYPE_CHECKING:
    from .service import FhirService

log = logging.getLogger("nphies_facade.retention")

RETENTION_SYSTEM = "urn:nphies-facade:retention"
LEGAL_HOLD = "legal-hold"
ANONYMISED = "anonymised"
ACTIONS = frozenset({"purge", "anonymise"})

# Elements that identify a person; removed wherever they appear at the top of a resource.
IDENTIFYING = ("text", "identifier", "name", "telecom", "address", "photo", "contact", "note", "link")
DATE_ELEMENTS = ("birthDate",)


class RetentionError(ValueError):
    """Retention configuration that cannot be used."""


@dataclass(frozen=True, slots=True)
class RetentionRule:
    resource_type: str
    days: float
    action: str


@dataclass(slots=True)
class SweepReport:
    purged: int = 0
    anonymised: int = 0
    held: int = 0
    errors: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def parse_rules(raw: dict) -> list[RetentionRule]:
    rules = []
    for resource_type, spec in sorted(raw.items()):
        if not is_supported(resource_type):
            raise RetentionError(f"retention: {resource_type!r} is not a resource type this server keeps")
        if not isinstance(spec, dict) or not isinstance(spec.get("days"), int | float) or spec["days"] <= 0:
            raise RetentionError(f"retention.{resource_type} needs a positive number of days")
        action = spec.get("action", "purge")
        if action not in ACTIONS:
            raise RetentionError(
                f"retention.{resource_type}.action must be purge or anonymise, not {action!r}"
            )
        rules.append(RetentionRule(resource_type, float(spec["days"]), action))
    return rules


def load_rules(inline: dict, path: Path | None) -> list[RetentionRule]:
    """Rules from a JSON file (when given) overlaid with inline ones (the NPHIES_FACADE_RETENTION setting)."""
    raw: dict = {}
    if path is not None:
        try:
            raw.update(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise RetentionError(f"cannot read the retention file {path}: {exc}") from None
    raw.update(inline)
    return parse_rules(raw)


def _tags(resource: dict) -> list[dict]:
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    return [t for t in meta.get("tag") or [] if isinstance(t, dict)]


def has_tag(resource: dict, code: str) -> bool:
    return any(t.get("system") == RETENTION_SYSTEM and t.get("code") == code for t in _tags(resource))


def _strip_reference_displays(node: object) -> None:
    if isinstance(node, dict):
        if "reference" in node or "identifier" in node:
            node.pop("display", None)
        for value in node.values():
            _strip_reference_displays(value)
    elif isinstance(node, list):
        for item in node:
            _strip_reference_displays(item)


def anonymise(resource: dict) -> dict:
    """A copy without identifying elements; dates of birth keep their year; tagged `anonymised`."""
    copy = exact_json.copy(resource)
    for name in IDENTIFYING:
        copy.pop(name, None)
    for name in DATE_ELEMENTS:
        if isinstance(copy.get(name), str):
            copy[name] = copy[name][:4]
    _strip_reference_displays(copy)
    meta = copy.setdefault("meta", {})
    tags = [
        t for t in meta.get("tag") or [] if not (isinstance(t, dict) and t.get("system") == RETENTION_SYSTEM)
    ]
    meta["tag"] = [*tags, {"system": RETENTION_SYSTEM, "code": ANONYMISED}]
    return copy


def _latest_content(versions: list[StoredVersion]) -> dict | None:
    for version in reversed(versions):
        if version.body is not None:
            return exact_json.loads(version.body)
    return None


class Retention:
    def __init__(self, service: "FhirService", rules: list[RetentionRule], batch: int = 200) -> None:
        self.service = service
        self.rules = rules
        self.batch = batch

    @property
    def security(self) -> SecurityStore:
        return self.service.store.security()

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        """One pass over every rule; `now` defaults to the service's (injectable) clock."""
        now = now or self.service.clock()
        report = SweepReport()
        ctx = RequestContext(actor="retention", scopes=("system/*.*",))
        for rule in self.rules:
            await self._sweep_rule(ctx, rule, fhir_instant(now - timedelta(days=rule.days)), report)
        return report

    async def _sweep_rule(
        self, ctx: RequestContext, rule: RetentionRule, cutoff: str, report: SweepReport
    ) -> None:
        after: tuple[str, str] | None = None
        while True:
            page = await self.security.expired(rule.resource_type, cutoff, after, self.batch)
            for current in page:
                try:
                    await self._apply(ctx, rule, current, report)
                except Exception as exc:  # one resource's failure must not stop the sweep
                    report.errors += 1
                    log.error(
                        "retention %s failed on a %s: %s", rule.action, rule.resource_type, type(exc).__name__
                    )
            if len(page) < self.batch:
                return
            after = (page[-1].last_updated, page[-1].id)

    async def _apply(
        self, ctx: RequestContext, rule: RetentionRule, current: StoredVersion, report: SweepReport
    ) -> None:
        async with self.service.transaction() as tx:
            versions = await self.security.versions(tx, current.resource_type, current.id)
            latest = _latest_content(versions)
            if latest is not None and has_tag(latest, LEGAL_HOLD):
                report.held += 1
                return
            if rule.action == "purge":
                removed = await self.security.purge(tx, current.resource_type, current.id)
                await self._audit(ctx, tx, "D", "retention-purge", current, latest, {"versions": removed})
                report.purged += 1
            else:
                if latest is not None and has_tag(latest, ANONYMISED) and versions[-1].body is not None:
                    return
                await self._anonymise(ctx, tx, current, versions)
                await self._audit(
                    ctx, tx, "U", "retention-anonymise", current, latest, {"versions": len(versions)}
                )
                report.anonymised += 1
        report.by_type[rule.resource_type] = report.by_type.get(rule.resource_type, 0) + 1

    async def _anonymise(
        self, ctx: RequestContext, tx: StoreTransaction, current: StoredVersion, versions: list[StoredVersion]
    ) -> None:
        rewritten = [
            (v.version, exact_json.dumps(anonymise(exact_json.loads(v.body))))
            for v in versions
            if v.body is not None
        ]
        await self.security.replace_bodies(tx, current.resource_type, current.id, rewritten)
        if current.body is not None:
            fresh = anonymise(exact_json.loads(current.body))
            await self.service.update(ctx, current.resource_type, current.id, fresh, tx=tx)

    async def _audit(
        self,
        ctx: RequestContext,
        tx: StoreTransaction,
        action: str,
        subtype: str,
        current: StoredVersion,
        latest: dict | None,
        detail: dict,
    ) -> None:
        auditor = self.service.audit
        entry = AuditEntry(
            action,
            subtype,
            entity=f"{current.resource_type}/{current.id}",
            patient=auditor.patient_of(latest) if latest is not None else None,
            digest=payload_digest(latest),
            detail=detail,
        )
        await auditor.record(ctx, entry, tx)


async def sweep(
    service: "FhirService", rules: list[RetentionRule], now: datetime | None = None
) -> SweepReport:
    """One retention pass (for a worker's schedule)."""
    return await Retention(service, rules).sweep(now)


async def run_periodically(service: "FhirService", rules: list[RetentionRule], interval: float) -> None:
    """The embedded server's task: a sweep every `interval` seconds until cancelled."""
    retention = Retention(service, rules)
    while True:
        await asyncio.sleep(interval)
        try:
            report = await retention.sweep()
        except Exception as exc:
            log.error("retention sweep failed: %s", type(exc).__name__)
            continue
        if report.purged or report.anonymised or report.errors:
            log.info(
                "retention: purged %d, anonymised %d, held %d, errors %d",
                report.purged,
                report.anonymised,
                report.held,
                report.errors,
            )
