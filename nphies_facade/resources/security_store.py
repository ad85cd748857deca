"""The security port: what audit, the authorization server, consent and retention keep in the store.

A backend implements it next to its Store (`store.security()`): the audit trail (a hash chain, appended in
the same transaction as the change it records), registered clients, used client-assertion ids (`jti`),
the records of SMART App Launch (users, apps, codes, refresh tokens, grants: JSON bodies by kind and key,
some taken once), and the erasure primitives retention needs.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .store import StoredVersion, StoreTransaction

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit record as stored; `hash` covers every other field, `prev_hash` included."""

    seq: int
    recorded: str
    action: str
    subtype: str
    outcome: str
    actor: str
    client: str | None
    role: str | None
    entity: str | None
    patient_hash: str | None
    provider_hash: str | None
    digest: str | None
    trace_id: str
    detail: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditHead:
    seq: int
    hash: str


AuditBuilder = Callable[[AuditHead | None], AuditRow]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of `GET AuditEvent`; records come newest first, paged by `before_seq`."""

    patient_hash: str | None = None
    entity: str | None = None
    action: str | None = None
    subtype: str | None = None
    since: str | None = None
    before_seq: int | None = None
    count: int = 50


class SecurityStore(ABC):
    # ----- audit -----

    @abstractmethod
    async def append_audit(self, tx: StoreTransaction, build: AuditBuilder) -> AuditRow:
        """Appends inside the caller's transaction the row `build(head)` makes from the chain's last
        record (None for an empty trail); head and append happen together, as one step."""

    @abstractmethod
    async def append_audit_alone(self, builds: Sequence[AuditBuilder]) -> list[AuditRow]:
        """Appends rows in a transaction of their own (reads, and failures that outlive a rollback)."""

    @abstractmethod
    async def audit_rows(self, after_seq: int = 0, limit: int = 1000) -> list[AuditRow]:
        """Records in chain order after `after_seq`."""

    @abstractmethod
    async def audit_query(self, query: AuditQuery) -> list[AuditRow]: ...

    @abstractmethod
    async def audit_row(self, seq: int) -> AuditRow | None: ...

    # ----- authorization server -----

    @abstractmethod
    async def put_client(self, client_id: str, record: dict) -> None: ...

    @abstractmethod
    async def get_client(self, client_id: str) -> dict | None: ...

    @abstractmethod
    async def list_clients(self) -> list[dict]: ...

    @abstractmethod
    async def delete_client(self, client_id: str) -> bool:
        """Removes the registration; False when there was none."""

    async def client_state(self, client_id: str) -> dict | None:
        """The registration as the token verifier reads it on every request: cheap, and current across
        processes (a backend may answer from a cache only as old as it documents)."""
        return await self.get_client(client_id)

    @abstractmethod
    async def claim_jti(self, key: str, expires_at: float, now: float) -> bool:
        """Records a one-time token id until `expires_at`; False when it was already used."""

    # ----- retention -----

    @abstractmethod
    async def expired(
        self, resource_type: str, before: str, after: tuple[str, str] | None = None, limit: int = 200
    ) -> list[StoredVersion]:
        """Current versions (deletions included) last updated before `before`, ordered by (last_updated,
        id) and paged with `after` = the last (last_updated, id) seen."""

    @abstractmethod
    async def versions(
        self, tx: StoreTransaction, resource_type: str, resource_id: str
    ) -> list[StoredVersion]:
        """Every stored version, oldest first."""

    @abstractmethod
    async def purge(self, tx: StoreTransaction, resource_type: str, resource_id: str) -> int:
        """Removes the resource, all its versions and index values; returns how many versions went."""

    @abstractmethod
    async def replace_bodies(
        self, tx: StoreTransaction, resource_type: str, resource_id: str, bodies: Sequence[tuple[int, bytes]]
    ) -> None:
        """Overwrites stored versions' bodies in place ((version, body) pairs); index values are untouched."""

    # ----- SMART App Launch records (server/auth/accounts.py, apps.py, grants.py) -----

    @abstractmethod
    async def put_record(
        self,
        kind: str,
        key: str,
        body: dict,
        purge_at: float | None = None,
        *,
        now: float | None = None,
        create: bool = False,
    ) -> bool:
        """Stores `body` under (kind, key), clearing its used mark; with `create`, only when no record is
        there (False when one is). With `now`, rows whose `purge_at` has passed are removed first."""

    @abstractmethod
    async def get_record(self, kind: str, key: str) -> dict | None: ...

    async def record_state(self, kind: str, key: str) -> dict | None:
        """A record as the token check reads it on every request of a person's token: cheap, and current
        across processes."""
        return await self.get_record(kind, key)

    @abstractmethod
    async def list_records(self, kind: str) -> list[dict]:
        """Every record of `kind`, ordered by key."""

    @abstractmethod
    async def delete_record(self, kind: str, key: str) -> bool: ...

    @abstractmethod
    async def take_record(self, kind: str, key: str) -> tuple[dict | None, bool]:
        """Marks a one-time record used, atomically: (body, True) the first time, (body, False) on every
        later call, (None, False) when there is none."""
