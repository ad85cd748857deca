"""The store port: what FhirService needs from a backend (documents in, documents out).

A backend keeps, per resource, the current version, every past version, the extracted search index
values, and an outbox of change events with a monotonically increasing sequence number. A write puts
all four in one transaction (DESIGN rule 2).
"""

import re
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .search.values import IndexValue

if TYPE_CHECKING:
    from .ledger import Ledger
    from .search.plan import SearchPlan
    from .security_store import SecurityStore

IndexValues = dict[str, list[IndexValue]]

# Versions are counted from 1 in a signed 64-bit integer (SQLite INTEGER, BSON long).
MAX_VERSION = 2**63 - 1
_VERSION_TEXT = re.compile(r"[0-9]{1,19}")


def version_number(text: str) -> int | None:
    """The version a version id names: plain ASCII digits of a number from 1 to MAX_VERSION; None for
    anything else (`0`, `-1`, `1.0`, superscript or Arabic-Indic digits, a number above the range), which
    no stored version has."""
    if not _VERSION_TEXT.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_VERSION else None


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of one resource, as stored. `body` is the resource JSON, None for a deletion."""

    resource_type: str
    id: str
    version: int
    last_updated: str
    method: str
    body: bytes | None
    position: int = 0

    @property
    def deleted(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    seq: int
    resource_type: str
    id: str
    version: int
    action: str
    at: str
    trace_id: str


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    resource_type: str | None = None
    id: str | None = None
    since: str | None = None
    before_position: int | None = None
    count: int = 50


@dataclass(frozen=True, slots=True)
class Found:
    """A search match and its place in the result order (sort values, then the row key): what a paging
    cursor carries."""

    version: StoredVersion
    key: tuple


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a search: `more` says rows follow in the direction the page was read."""

    matches: list[Found]
    included: list[StoredVersion]
    total: int | None
    more: bool


class VersionConflict(Exception):
    """The version a write was based on is no longer current (a concurrent write won)."""


class TransientConflict(Exception):
    """A concurrent transaction touched the same data first; nothing was written, and running the whole
    unit of work again from its start may succeed (backends with optimistic transactions raise it)."""


class StoreTransaction(ABC):
    """Reads see the transaction's own writes; nothing is visible to others until commit."""

    @abstractmethod
    async def current(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        """The latest version, a deletion included, or None when the resource never existed."""

    @abstractmethod
    async def write(self, version: StoredVersion, index: IndexValues, trace_id: str) -> OutboxEvent | None:
        """Stores a new version (body None deletes), replaces its index values, appends its outbox event.

        Raises VersionConflict when version.version is not one more than the current version. In a
        deferred transaction (Store.deferred_transaction) both may wait for the commit: it returns None
        and the VersionConflict comes from the end of the block.
        """

    @abstractmethod
    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]:
        """Ids of live resources matching all criteria, for conditional interactions."""

    async def live(self, resource_type: str, resource_id: str) -> bool:
        """Whether the resource exists and is not deleted, as this transaction sees it, and stays so
        until it commits (a reference's target: the referential-integrity check)."""
        current = await self.current(resource_type, resource_id)
        return current is not None and not current.deleted

    async def referrers(
        self, targets: list[tuple[str, str]], params: list[tuple[str, str]], limit: int
    ) -> list[tuple[str, str]]:
        """(target `Type/id`, referrer `Type/id`) for live resources whose reference search parameters
        (`params`: (type, code) pairs) hold a relative reference to one of `targets`, as this transaction
        sees them after its own writes; at most `limit` per target. No resource may start referring to a
        target before the transaction commits."""
        raise NotImplementedError(f"{type(self).__name__} cannot find referrers yet")

    async def match_ids(
        self, resource_type: str, criteria: list[tuple[str, str]], plan: "SearchPlan", limit: int
    ) -> list[str]:
        """Ids of live resources the search plan matches, seeing this transaction's writes (conditional
        interactions). `criteria` are the raw parameters the plan was made from. A backend that cannot
        render plans yet answers token and `_id` criteria through find_ids."""
        from .search.plan import only_tokens_and_ids

        if not only_tokens_and_ids(plan):
            raise NotImplementedError(f"{type(self).__name__} cannot run search plans yet")
        return await self.find_ids(resource_type, criteria)

    async def search(self, plan: "SearchPlan") -> SearchPage:
        """A page of the plan's matches as this transaction sees them (bundle GET entries)."""
        raise NotImplementedError(f"{type(self).__name__} cannot run search plans yet")

    async def latest_position(self, resource_type: str) -> int:
        """The history position of the latest write to the type (0: none); cheap enough for every write."""
        raise NotImplementedError(f"{type(self).__name__} does not report positions yet")

    async def scan(self, resource_type: str, after: int, limit: int) -> list[StoredVersion]:
        """Live current versions of a type in position order after `after` (reindexing)."""
        raise NotImplementedError(f"{type(self).__name__} cannot scan yet")

    async def replace_index(self, entries: list[tuple[StoredVersion, IndexValues]]) -> None:
        """Replaces the index values of current versions read with scan (no new version, no event)."""
        raise NotImplementedError(f"{type(self).__name__} cannot reindex yet")


class Store(ABC):
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """A write transaction; it commits when the block ends and rolls back on an exception.

        May raise TransientConflict (from the block's statements or at commit): the caller that opened it
        runs its unit of work again in a new transaction.
        """

    def deferred_transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """A write transaction for a unit of work its caller runs again on TransientConflict.

        A backend may defer the unit's writes to the end of the block (and commit them with other units),
        answer `current` from the last committed state and check at commit that what was read is still
        current, raising TransientConflict when it is not. Other reads see the unit's writes as in
        `transaction`. This default is `transaction` itself.
        """
        return self.transaction()

    @abstractmethod
    async def read(self, resource_type: str, resource_id: str) -> StoredVersion | None: ...

    @abstractmethod
    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredVersion | None: ...

    @abstractmethod
    async def history(self, query: HistoryQuery) -> list[StoredVersion]:
        """Versions newest first; `position` orders them and pages with `before_position`."""

    @abstractmethod
    async def find_ids(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[str]: ...

    @abstractmethod
    async def outbox_after(self, seq: int, limit: int = 100) -> list[OutboxEvent]: ...

    async def search(self, plan: "SearchPlan") -> SearchPage:
        """A page of the plan's matches, their includes and (when asked) the total."""
        raise NotImplementedError(f"{type(self).__name__} cannot run search plans yet")

    async def latest_position(self, resource_type: str) -> int:
        """The history position of the latest write to the type (0: none)."""
        raise NotImplementedError(f"{type(self).__name__} does not report positions yet")

    def ledger(self) -> "Ledger":
        """The delivery ledger (subscriptions and jobs) kept in this store."""
        raise NotImplementedError(f"{type(self).__name__} keeps no delivery ledger")

    def security(self) -> "SecurityStore":
        """Audit trail, registered clients, used token ids and retention primitives kept in this store."""
        raise NotImplementedError(f"{type(self).__name__} keeps no security records")
