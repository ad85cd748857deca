"""Referential integrity, HAPI FHIR's default: a reference to a resource of this server names one that
exists, and a resource others still refer to is not deleted.

The writes of one FhirService transaction note what they refer to and what they delete (`Pending`); the
checks run when the transaction's block ends, before it commits, so they see all of its writes (a
transaction Bundle may create the target after the referrer, or delete referrer and target together)
and are atomic with them: the store keeps a target read as live until the commit (Store.live) and finds
referrers under the write lock or in the snapshot that commits (Store.referrers). Which references count
for a deletion: those the reference search parameters index, as in HAPI FHIR.
`NPHIES_FACADE_REFERENTIAL_INTEGRITY=off` turns both checks off; the well-formedness and target-type
checks of the reference walk (reference_walk.py) always apply.
"""

from contextvars import ContextVar
from dataclasses import dataclass, field

from .errors import FhirError, Issue
from .search.definitions import SearchRegistry
from .store import StoreTransaction

MAX_NAMED = 10  # referrers named in a 409, per deleted resource


@dataclass(slots=True)
class Pending:
    """What one transaction's writes refer to (`Type/id` -> the first element naming it) and delete."""

    targets: dict[str, str] = field(default_factory=dict)
    deleted: list[tuple[str, str]] = field(default_factory=list)


_pending: ContextVar[Pending | None] = ContextVar("nphies_facade_integrity", default=None)


class ReferentialIntegrity:
    def __init__(self, registry: SearchRegistry, strict: bool = True) -> None:
        self.registry = registry
        self.strict = strict
        self._params: dict[str, list[tuple[str, str]]] = {}
        self._registry_version = registry.version

    def begin(self) -> tuple[Pending, object]:
        """A transaction's pending checks, made current until `end`."""
        pending = Pending()
        return pending, _pending.set(pending)

    @staticmethod
    def end(token: object) -> None:
        _pending.reset(token)  # type: ignore[arg-type]

    async def refers(self, tx: StoreTransaction, local: list[tuple[str, str]]) -> None:
        """Notes the `Type/id` references of a write (checked when its transaction ends)."""
        if not self.strict or not local:
            return
        pending = _pending.get()
        if pending is None:
            await self.verify(tx, Pending(dict(reversed(local))))
            return
        for target, where in local:
            pending.targets.setdefault(target, where)

    async def deletes(self, tx: StoreTransaction, resource_type: str, resource_id: str) -> None:
        if not self.strict:
            return
        pending = _pending.get()
        if pending is None:
            await self.verify(tx, Pending(deleted=[(resource_type, resource_id)]))
            return
        pending.deleted.append((resource_type, resource_id))

    async def verify(self, tx: StoreTransaction, pending: Pending) -> None:
        """Raises 400 for references to resources that do not exist, 409 for deletions of resources
        still referred to."""
        missing = []
        for target, where in pending.targets.items():
            resource_type, _, resource_id = target.partition("/")
            if not await tx.live(resource_type, resource_id):
                missing.append(
                    Issue(
                        "not-found",
                        f"{where} refers to {target}, which does not exist on this server (or was deleted)",
                        expression=where,
                    )
                )
        if missing:
            raise FhirError(400, missing)
        if pending.deleted:
            await self._unreferenced(tx, pending.deleted)

    async def _unreferenced(self, tx: StoreTransaction, deleted: list[tuple[str, str]]) -> None:
        params = sorted({p for resource_type, _ in deleted for p in self.params_naming(resource_type)})
        found = await tx.referrers(list(dict.fromkeys(deleted)), params, MAX_NAMED + 1)
        by_target: dict[str, list[str]] = {}
        for target, referrer in found:
            if referrer != target:
                by_target.setdefault(target, []).append(referrer)
        if not by_target:
            return
        issues = []
        for target, referrers in by_target.items():
            named = ", ".join(referrers[:MAX_NAMED]) + (" and more" if len(referrers) > MAX_NAMED else "")
            issues.append(
                Issue(
                    "conflict",
                    f"{target} cannot be deleted: it is referred to by {named}; delete or change those "
                    "first (or in the same transaction)",
                    expression=target.split("/")[0],
                )
            )
        raise FhirError(409, issues)

    def params_naming(self, target_type: str) -> list[tuple[str, str]]:
        """(type, code) of every reference search parameter that may name a resource of target_type."""
        if self._registry_version != self.registry.version:
            self._params.clear()
            self._registry_version = self.registry.version
        params = self._params.get(target_type)
        if params is None:
            params = self._params[target_type] = [
                (resource_type, code)
                for resource_type in self.registry.resource_types()
                for code, param in self.registry.params_for(resource_type).items()
                if param.type == "reference" and (not param.targets or target_type in param.targets)
            ]
        return params
