"""The audit trail: an AuditEvent-shaped record of every interaction and change, chained by hash.

FhirService records each interaction in the transaction of the change it made (reads in a small
transaction of their own). Other parts record theirs with `record(service, ctx, ...)`: bundle entries,
jobs, workflow steps, NPHIES exchanges, retention. A record holds the actor (client, user, roles), the
time from the injectable clock, the action (C/R/U/D/E), the outcome, the resource reference, the patient
and provider identifiers as keyed HMACs (never in clear), a SHA-256 digest of the canonical payload and the
trace id. Each record's hash covers the previous record's hash, so `verify_chain` finds the first record
that was altered, removed or reordered.

Denials and failures inside a transaction that will roll back must survive it: they are deferred while a
FhirService transaction is open and written in a transaction of their own once it ends.
"""

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Protocol

import orjson

from .. import exact_json
from .clock import Clock, fhir_instant, system_clock
from .compartment import PatientCompartment
from .context import RequestContext
from .references import references_at
from .security_store import GENESIS_HASH, AuditBuilder, AuditHead, AuditRow, SecurityStore
from .store import Store, StoreTransaction

log = logging.getLogger("nphies_facade.audit")

SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = "0", "4", "8", "12"
FLUSH_DELAY = 0.05
FLUSH_SIZE = 500
ACTIONS = frozenset("CRUDE")

PROVIDER_PATHS = (
    "provider",
    "serviceProvider",
    "requestor",
    "requester",
    "managingOrganization",
    "organization",
    "issuer",
    "performer",
)
PROVIDER_TYPES = ("Organization/", "Practitioner/", "PractitionerRole/")

PATIENT_ID_SYSTEM = "urn:nphies-facade:audit:hmac-sha256:patient"
PROVIDER_ID_SYSTEM = "urn:nphies-facade:audit:hmac-sha256:provider"
ACTOR_SYSTEM = "urn:nphies-facade:audit:actor"
SUBTYPE_SYSTEM = "urn:nphies-facade:audit:subtype"
RESTFUL_SYSTEM = "http://hl7.org/fhir/restful-interaction"
RESTFUL_CODES = frozenset(
    "read vread update patch delete history history-instance history-type history-system create "
    "search search-type search-system capabilities transaction batch operation".split()
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What a caller records; the Auditor adds actor, time, hashes and the chain."""

    action: str
    subtype: str
    outcome: str = SUCCESS
    entity: str | None = None
    patient: str | None = None
    provider: str | None = None
    digest: str | None = None
    detail: dict | None = None


@dataclass(frozen=True, slots=True)
class ChainReport:
    records: int
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


@dataclass(slots=True)
class _Open:
    tx: StoreTransaction
    deferred: list[tuple[RequestContext, AuditEntry]] = field(default_factory=list)


_open: ContextVar[_Open | None] = ContextVar("nphies_facade_open_transaction", default=None)


def outcome_for(status: int) -> str:
    if status < 400:
        return SUCCESS
    return MINOR_FAILURE if status < 500 else SERIOUS_FAILURE


def canonical(payload: object) -> bytes:
    return exact_json.dumps(payload, option=orjson.OPT_SORT_KEYS)


def payload_digest(payload: dict | bytes | None) -> str | None:
    if payload is None:
        return None
    document = exact_json.loads(payload) if isinstance(payload, bytes) else payload
    return hashlib.sha256(canonical(document)).hexdigest()


def _chained_fields(row: AuditRow) -> dict:
    fields = asdict(row)
    del fields["hash"]
    return fields


def chain_hash(fields: dict) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def provider_of(resource: dict) -> str | None:
    for path in PROVIDER_PATHS:
        for reference in references_at(resource, path):
            if reference.startswith(PROVIDER_TYPES):
                return reference
    return None


class Auditor:
    """Builds, chains and stores audit records; `key` is the HMAC key for identifiers (never logged)."""

    def __init__(
        self,
        store: Store,
        key: bytes,
        clock: Clock = system_clock,
        compartment: PatientCompartment | None = None,
    ) -> None:
        self.store = store
        self._key = key
        self.clock = clock
        self.compartment = compartment
        self._pending: list[AuditBuilder] = []
        self._flusher: asyncio.Task | None = None

    def __repr__(self) -> str:
        return "Auditor(key=***)"

    @property
    def security(self) -> SecurityStore:
        return self.store.security()

    def pseudonym(self, identifier: str | None) -> str | None:
        """The keyed HMAC that stands for a patient or provider identifier in the trail."""
        if not identifier:
            return None
        return hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()

    def patient_of(self, resource: dict) -> str | None:
        if self.compartment is None:
            return f"Patient/{resource.get('id')}" if resource.get("resourceType") == "Patient" else None
        patients = sorted(self.compartment.patients(resource))
        return patients[0] if patients else None

    def entry(
        self,
        action: str,
        subtype: str,
        entity: str | None,
        resource: dict | None = None,
        outcome: str = SUCCESS,
        detail: dict | None = None,
    ) -> AuditEntry:
        """An entry about one resource: its patient, provider and payload digest come from the resource."""
        if resource is None:
            return AuditEntry(action, subtype, outcome, entity, detail=detail)
        return AuditEntry(
            action,
            subtype,
            outcome,
            entity,
            patient=self.patient_of(resource),
            provider=provider_of(resource),
            digest=payload_digest(resource),
            detail=detail,
        )

    # ----- writing -----

    async def record(
        self, ctx: RequestContext, entry: AuditEntry, tx: StoreTransaction | None = None
    ) -> None:
        """Records in `tx`, else in the FhirService transaction open in this task, else in a batch.

        Entries with no transaction to join (reads, searches) are appended in batches, at most
        FLUSH_DELAY seconds later, so a read never waits for the write lock; `drain` writes them now.
        """
        opened = _open.get()
        target = tx or (opened.tx if opened is not None else None)
        if target is not None:
            await self.security.append_audit(target, self._builder(ctx, entry))
            return
        self._pending.append(self._builder(ctx, entry))
        if len(self._pending) >= FLUSH_SIZE:
            await self.drain()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_DELAY)
        await self.drain()

    async def drain(self) -> None:
        """Appends every batched entry now (before audit queries, and at shutdown)."""
        while self._pending:
            batch, self._pending = self._pending, []
            await self.security.append_audit_alone(batch)

    async def record_failure(
        self, ctx: RequestContext, entry: AuditEntry, tx: StoreTransaction | None = None
    ) -> None:
        """Records an entry that must outlive a rollback of the transaction it happened in."""
        opened = _open.get()
        if opened is not None:
            opened.deferred.append((ctx, entry))
        elif tx is not None:
            await self.security.append_audit(tx, self._builder(ctx, entry))
        else:
            await self.security.append_audit_alone([self._builder(ctx, entry)])

    @contextmanager
    def bound(self, tx: StoreTransaction, deferred: list) -> Iterator[None]:
        """Marks `tx` as this task's open FhirService transaction; `deferred` collects failures."""
        token = _open.set(_Open(tx, deferred))
        try:
            yield
        finally:
            _open.reset(token)

    async def flush(self, deferred: list[tuple[RequestContext, AuditEntry]]) -> None:
        if deferred:
            await self.security.append_audit_alone([self._builder(ctx, entry) for ctx, entry in deferred])

    def _builder(self, ctx: RequestContext, entry: AuditEntry) -> AuditBuilder:
        """The row for `entry`, to be chained to whatever record is last when it is appended."""
        if entry.action not in ACTIONS:
            raise ValueError(f"audit action must be one of C, R, U, D, E, not {entry.action!r}")
        fields = {
            "recorded": fhir_instant(self.clock()),
            "action": entry.action,
            "subtype": entry.subtype,
            "outcome": entry.outcome,
            "actor": ctx.actor,
            "client": ctx.client_id,
            "role": ",".join(ctx.roles) or None,
            "entity": entry.entity,
            "patient_hash": self.pseudonym(entry.patient),
            "provider_hash": self.pseudonym(entry.provider),
            "digest": entry.digest,
            "trace_id": ctx.trace_id,
            "detail": canonical(entry.detail).decode() if entry.detail else None,
        }

        def build(head: AuditHead | None) -> AuditRow:
            chained = {
                "seq": head.seq + 1 if head else 1,
                **fields,
                "prev_hash": head.hash if head else GENESIS_HASH,
            }
            return AuditRow(**chained, hash=chain_hash(chained))

        return build


class _HasAuditor(Protocol):
    audit: Auditor


async def record(
    target: "_HasAuditor | Auditor",
    ctx: RequestContext,
    *,
    action: str,
    subtype: str,
    outcome: str = SUCCESS,
    entity: str | None = None,
    resource: dict | None = None,
    patient: str | None = None,
    provider: str | None = None,
    payload: dict | bytes | None = None,
    detail: dict | None = None,
    tx: StoreTransaction | None = None,
) -> None:
    """Records one audit entry for a job, workflow step, NPHIES exchange or other non-REST event.

    `target` is a FhirService (or its Auditor). With `resource`, patient, provider and digest are taken
    from it unless given; `payload` (e.g. an NPHIES message) is digested, never stored. Pass the
    transaction of the change being recorded as `tx`, so the record commits or rolls back with it.
    """
    auditor = target if isinstance(target, Auditor) else target.audit
    base = auditor.entry(action, subtype, entity, resource, outcome, detail)
    entry = AuditEntry(
        action,
        subtype,
        outcome,
        entity,
        patient=patient or base.patient,
        provider=provider or base.provider,
        digest=payload_digest(payload) if payload is not None else base.digest,
        detail=detail,
    )
    await auditor.record(ctx, entry, tx)


# ----- verification -----


async def verify_chain(security: SecurityStore, batch: int = 1000) -> ChainReport:
    """Walks the whole trail; names the first record whose link to the one before is broken."""
    previous, expected, checked = GENESIS_HASH, 1, 0
    while True:
        rows = await security.audit_rows(expected - 1, batch)
        if not rows:
            return ChainReport(checked)
        for row in rows:
            if row.seq != expected:
                return ChainReport(checked, expected, f"record {expected} is missing (the next is {row.seq})")
            if not hmac.compare_digest(row.prev_hash, previous):
                return ChainReport(checked, row.seq, "its previous-hash does not match the record before it")
            if not hmac.compare_digest(chain_hash(_chained_fields(row)), row.hash):
                return ChainReport(checked, row.seq, "its content does not match its hash (it was altered)")
            previous, expected, checked = row.hash, expected + 1, checked + 1


# ----- AuditEvent resources -----


def _subtype(code: str) -> dict:
    system = RESTFUL_SYSTEM if code in RESTFUL_CODES else SUBTYPE_SYSTEM
    return {"system": system, "code": code}


def _what(entity: str) -> dict:
    if "/" in entity:
        return {"what": {"reference": entity}}
    return {"type": {"system": "http://hl7.org/fhir/resource-types", "code": entity}}


def _details(row: AuditRow) -> list[dict]:
    pairs = [
        ("payload-sha256", row.digest),
        ("trace-id", row.trace_id),
        ("chain-hash", row.hash),
        ("chain-previous-hash", row.prev_hash),
        ("detail", row.detail),
    ]
    return [{"type": name, "valueString": value} for name, value in pairs if value]


def _identified(system: str, value: str, role: str) -> dict:
    return {"what": {"identifier": {"system": system, "value": value}}, "name": role}


def audit_event(row: AuditRow) -> dict:
    """The record as an R4 AuditEvent resource (id = its place in the chain)."""
    agent: dict = {
        "who": {"identifier": {"system": ACTOR_SYSTEM, "value": row.actor}},
        "requestor": True,
    }
    if row.client:
        agent["altId"] = row.client
    if row.role:
        agent["role"] = [{"text": role} for role in row.role.split(",")]
    record_entity = _what(row.entity) if row.entity else {"name": "nphies-facade"}
    entities = [{**record_entity, "detail": _details(row)}]
    if row.patient_hash:
        entities.append(_identified(PATIENT_ID_SYSTEM, row.patient_hash, "patient"))
    if row.provider_hash:
        entities.append(_identified(PROVIDER_ID_SYSTEM, row.provider_hash, "provider"))
    event: dict = {
        "resourceType": "AuditEvent",
        "id": str(row.seq),
        "meta": {"versionId": "1", "lastUpdated": row.recorded},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [_subtype(row.subtype)],
        "action": row.action,
        "recorded": row.recorded,
        "outcome": row.outcome,
        "agent": [agent],
        "source": {
            "observer": {"display": "nphies-facade"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}],
        },
        "entity": entities,
    }
    return event
