"""FhirService: the one write path (DESIGN rule 1), and the reads that go with it.

Every create, update, patch and delete, from HTTP, a bundle entry, an operation or a worker, comes here:
validate, apply the version rules, then write resource, history, index values and outbox event in one
store transaction.
"""

import asyncio
import functools
import random
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar
from urllib.parse import parse_qsl

import jsonpatch

from .. import exact_json
from .access import AccessControl, AllowAll, Interaction
from .audit import Auditor
from .clock import Clock, fhir_instant, system_clock
from .compartment import PatientCompartment
from .context import RequestContext, context_or_current
from .errors import FhirError, bad_request, conflict, error, gone, not_found, precondition_failed
from .guard import Guard
from .integrity import ReferentialIntegrity
from .merge_patch import apply_merge_patch
from .operations_access import OperationDeclaration
from .reference_walk import Walked, walk_references
from .search.extraction import Extractor
from .searching import Searching, SearchOptions, SearchResult
from .store import (
    HistoryQuery,
    Store,
    StoredVersion,
    StoreTransaction,
    TransientConflict,
    VersionConflict,
    version_number,
)
from .task_states import check_task_write
from .types import is_supported
from .validation import check_id, require_resource, validate_resource

TRANSIENT_ATTEMPTS = 20

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: `status` is the HTTP status it maps to; `version` the version now current."""

    status: int
    version: StoredVersion | None

    @property
    def created(self) -> bool:
        return self.status == 201


def parse_criteria(query: str) -> list[tuple[str, str]]:
    criteria = [(name, value) for name, value in parse_qsl(query.lstrip("?"), keep_blank_values=True)]
    if not criteria:
        raise bad_request("Conditional interactions need search criteria")
    return criteria


def resource_json(stored: StoredVersion) -> dict:
    return exact_json.loads(stored.body)


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isascii() or not tag.isdigit():
        raise bad_request(f'If-Match must be a version ETag like W/"1", not {if_match!r}')
    return int(tag)


def _retried_on_conflict(write: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Runs a write again from its start when its own transaction met a TransientConflict; a write that
    joined a caller's transaction (`tx=`) leaves the retry to the caller."""

    @functools.wraps(write)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        if kwargs.get("tx") is not None:
            return await write(*args, **kwargs)
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                return await write(*args, **kwargs)
            except TransientConflict:
                if attempt == TRANSIENT_ATTEMPTS:
                    raise conflict("Concurrent writes kept conflicting with this one; try again") from None
                await asyncio.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
        raise AssertionError("unreachable")

    return run


WriteHook = Callable[[StoreTransaction, RequestContext, dict], Awaitable[None]]
# Runs after the transaction that wrote a version commits (consent revocation stops pending work here).
CommitHook = Callable[[RequestContext, StoredVersion], Awaitable[None]]

_committing: ContextVar[list[tuple[RequestContext, StoredVersion]] | None] = ContextVar(
    "nphies_facade_committing", default=None
)


class FhirService:
    def __init__(
        self,
        store: Store,
        extractor: Extractor,
        clock: Clock = system_clock,
        access: AccessControl | None = None,
        auditor: Auditor | None = None,
        *,
        validate_own: bool = False,
        referential_integrity: bool = True,
    ) -> None:
        """`validate_own`: validate trusted writes too (see `create`); for development and tests.
        `referential_integrity`: references to this server's resources must name existing ones, and
        a resource still referred to cannot be deleted (integrity.py)."""
        self.store = store
        self.extractor = extractor
        self.clock = clock
        self.compartment = PatientCompartment(extractor)
        self.access = access or AllowAll()
        self.audit = auditor or Auditor(store, secrets.token_bytes(32), clock, self.compartment)
        self.guard = Guard(self.access, self.audit)
        self.commit_hooks: list[CommitHook] = []
        # Checks run inside the write transaction before a version is stored; they may adjust the
        # resource or raise FhirError (subscriptions validate their criteria and manage status here).
        self.write_hooks: list[WriteHook] = []
        self.searching = Searching(self)
        self.validate_own = validate_own
        self.integrity = ReferentialIntegrity(extractor.registry, referential_integrity)

    async def open(self) -> None:
        """Start-up work: the SearchParameter resources already stored become active."""
        await self.searching.open()

    async def close(self) -> None:
        await self.searching.reindexer.close()
        await self.audit.drain()

    @asynccontextmanager
    async def transaction(
        self, tx: StoreTransaction | None = None, *, retried: bool = False
    ) -> AsyncIterator[StoreTransaction]:
        """Joins the caller's transaction, or opens one that commits when the block ends. `retried`: the
        caller runs the block again on TransientConflict, so the store may defer its writes to the commit
        (Store.deferred_transaction)."""
        if tx is not None:
            yield tx
            return
        deferred: list = []
        written: list[tuple[RequestContext, StoredVersion]] = []
        token = _committing.set(written)
        pending, checks = self.integrity.begin()
        opened = self.store.deferred_transaction() if retried else self.store.transaction()
        try:
            async with opened as own:
                with self.audit.bound(own, deferred):
                    yield own
                    await self.integrity.verify(own, pending)
        except VersionConflict as exc:  # a deferred write met it at commit
            written.clear()
            raise conflict(str(exc)) from None
        except BaseException:
            written.clear()
            raise
        finally:
            self.integrity.end(checks)
            _committing.reset(token)
            await self.audit.flush(deferred)
        for ctx, stored in written:
            for hook in self.commit_hooks:
                await hook(ctx, stored)

    async def authorize(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource: dict | None = None,
        tx: StoreTransaction | None = None,
    ) -> None:
        """For operations and search: raises 403 unless ctx may do `interaction` (on `resource`)."""
        await self.guard.admit_type(ctx, interaction, resource_type)
        if resource is not None:
            await self.guard.admit(ctx, interaction, resource_type, resource.get("id"), resource, tx)

    async def authorize_operation(self, ctx: RequestContext, operation: OperationDeclaration) -> None:
        """Raises 403 unless ctx may perform every interaction the operation causes (and, for
        administration, is an administrator); asked before the operation reads, writes or sends."""
        await self.guard.admit_operation(context_or_current(ctx), operation)

    async def permitted(
        self, ctx: RequestContext | None, interaction: Interaction, versions: list[StoredVersion]
    ) -> list[StoredVersion]:
        """The versions ctx may see, for filtering search results (included resources too)."""
        ctx = context_or_current(ctx)
        return await self.guard.visible_versions(ctx, interaction, versions)

    # ----- reads -----

    async def read(
        self,
        resource_type: str,
        resource_id: str,
        tx: StoreTransaction | None = None,
        *,
        ctx: RequestContext | None = None,
    ) -> StoredVersion:
        """`tx` reads inside a transaction, seeing its own writes (bundle GET entries)."""
        ctx = context_or_current(ctx)
        await self.guard.admit_type(ctx, Interaction.READ, resource_type)
        source = tx.current if tx is not None else self.store.read
        stored = await source(resource_type, resource_id)
        missing = f"{resource_type}/{resource_id} is not known"
        if stored is None:
            raise not_found(missing)
        if stored.deleted:
            await self._hide_deletion(ctx, Interaction.READ, stored, missing)
            raise gone(f"{resource_type}/{resource_id} was deleted")
        await self._seen(ctx, Interaction.READ, stored, tx, missing)
        return stored

    async def _seen(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        stored: StoredVersion,
        tx: StoreTransaction | None,
        missing: str | None = None,
    ) -> None:
        resource = resource_json(stored)
        await self._admit_known(ctx, interaction, stored, resource, tx, missing)
        await self.guard.seen(ctx, interaction, stored, resource, tx)

    # A resource ctx may not see is answered exactly like one that does not exist (same status, same
    # text), so a restricted caller cannot probe which ids exist; the refusal is audited as such.

    async def _admit_known(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        stored: StoredVersion,
        resource: dict,
        tx: StoreTransaction | None,
        missing: str | None,
    ) -> None:
        """guard.admit on an existing resource; with `missing`, a refusal becomes that 404."""
        try:
            await self.guard.admit(ctx, interaction, stored.resource_type, stored.id, resource, tx)
        except FhirError as exc:
            if exc.status != 403 or missing is None:
                raise
            raise not_found(missing) from None

    async def _hide_deletion(
        self, ctx: RequestContext, interaction: Interaction, stored: StoredVersion, missing: str
    ) -> None:
        """404 `missing` when the deleted resource (its last live version) is one ctx may not see."""
        if not self.access.needs_resource(ctx, interaction, stored.resource_type):
            return
        last = await self.store.vread(stored.resource_type, stored.id, stored.version - 1)
        resource = resource_json(last) if last is not None and not last.deleted else None
        if resource is None or not await self.access.permits(
            ctx, interaction, stored.resource_type, resource
        ):
            raise not_found(missing)

    async def vread(
        self,
        resource_type: str,
        resource_id: str,
        version: str,
        tx: StoreTransaction | None = None,
        *,
        ctx: RequestContext | None = None,
    ) -> StoredVersion:
        ctx = context_or_current(ctx)
        await self.guard.admit_type(ctx, Interaction.VREAD, resource_type)
        number = version_number(version)
        if number is None:
            raise not_found(f"{resource_type}/{resource_id} has no version {version!r}")
        current = await tx.current(resource_type, resource_id) if tx is not None else None
        if current is not None and current.version == number:
            stored: StoredVersion | None = current
        else:
            stored = await self.store.vread(resource_type, resource_id, number)
        missing = f"{resource_type}/{resource_id} has no version {version}"
        if stored is None:
            raise not_found(missing)
        if stored.deleted:
            await self._hide_deletion(ctx, Interaction.VREAD, stored, missing)
            raise gone(f"Version {version} of {resource_type}/{resource_id} is a deletion")
        await self._seen(ctx, Interaction.VREAD, stored, tx, missing)
        return stored

    async def history(self, query: HistoryQuery, *, ctx: RequestContext | None = None) -> list[StoredVersion]:
        """Versions newest first, only those ctx may see; a page is filled past the ones it may not."""
        ctx = context_or_current(ctx)
        if query.id:
            interaction = Interaction.HISTORY_INSTANCE
        else:
            interaction = Interaction.HISTORY_TYPE if query.resource_type else Interaction.HISTORY_SYSTEM
        await self.guard.admit_type(ctx, interaction, query.resource_type)
        current = None
        if query.resource_type and query.id:
            current = await self.store.read(query.resource_type, query.id)
            if current is None:
                raise not_found(f"{query.resource_type}/{query.id} is not known")
        versions = await self._visible_history(ctx, interaction, query)
        if current is not None and not versions:
            await self._hide_history(ctx, current)
        await self.guard.listed(ctx, interaction, query.resource_type, query.id, len(versions))
        return versions

    async def _hide_history(self, ctx: RequestContext, current: StoredVersion) -> None:
        """An instance history ctx sees nothing of is a 404 when the resource is one ctx may not see."""
        missing = f"{current.resource_type}/{current.id} is not known"
        interaction = Interaction.HISTORY_INSTANCE
        if current.deleted:
            await self._hide_deletion(ctx, interaction, current, missing)
        elif not await self.guard.visible(ctx, interaction, current):
            raise not_found(missing)

    async def _visible_history(
        self, ctx: RequestContext, interaction: Interaction, query: HistoryQuery
    ) -> list[StoredVersion]:
        kept: list[StoredVersion] = []
        page_query = query
        while True:
            page = await self.store.history(page_query)
            for version in page:
                if await self.guard.visible(ctx, interaction, version):
                    kept.append(version)
                    if len(kept) == query.count:
                        return kept
            if len(page) < page_query.count or not page:
                return kept
            page_query = replace(page_query, before_position=page[-1].position)

    async def find_ids(
        self, resource_type: str, criteria: list[tuple[str, str]], tx: StoreTransaction | None = None
    ) -> list[str]:
        """Ids matching conditional criteria: any search parameter, run in `tx` when given (race-free)."""
        return await self.searching.find_ids(resource_type, criteria, tx)

    async def search(
        self,
        resource_types: tuple[str, ...],
        params: list[tuple[str, str]],
        options: SearchOptions | None = None,
        *,
        ctx: RequestContext | None = None,
        tx: StoreTransaction | None = None,
    ) -> SearchResult:
        """A page of a type (one type), multi-type (_type) or system (no type) search, as ctx may see it."""
        return await self.searching.search(resource_types, params, options or SearchOptions(), ctx, tx)

    # ----- writes -----

    def _prepare(
        self, resource: dict, resource_id: str, trusted: bool = False, references: Walked | None = None
    ) -> tuple[dict, Walked | None]:
        """Validates (the references too, unless `references` holds the walk a Bundle made), then sets
        id and meta.lastUpdated; meta.versionId is set when the version is known. Returns the resource and
        its references (None for a trusted write)."""
        require_resource(resource)
        if not trusted or self.validate_own:
            validate_resource(resource)
            if references is None:
                references = walk_references(resource)
            references.raise_issues()
        resource["id"] = resource_id
        meta = resource.get("meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta["lastUpdated"] = fhir_instant(self.clock())
        resource["meta"] = meta
        return resource, references

    async def resolve_conditional(
        self, tx: StoreTransaction, references: Walked, resolved: dict[str, str] | None = None
    ) -> None:
        """Rewrites each conditional reference (`Patient?identifier=...`) to the `Type/id` of the one
        resource its criteria match: none is a 404, several a 412. `resolved` caches them per Bundle."""
        resolved = {} if resolved is None else resolved
        for node, where in references.conditional:
            value = node["reference"]
            found = resolved.get(value)
            if found is None:
                found = resolved[value] = await self._conditional_target(tx, value, where)
            node["reference"] = found
            references.local.append((found, where))
        references.conditional.clear()

    async def _conditional_target(self, tx: StoreTransaction, value: str, where: str) -> str:
        resource_type, _, query = value.partition("?")
        if not is_supported(resource_type):
            raise bad_request(
                f"{where} is a conditional reference to the unknown type {resource_type}", where
            )
        ids = await self.find_ids(resource_type, parse_criteria(query), tx)
        if len(ids) != 1:
            raise error(
                404 if not ids else 412,
                "not-found" if not ids else "multiple-matches",
                f"The conditional reference {value} matches {len(ids)} resources; it must match exactly one",
                where,
            )
        return f"{resource_type}/{ids[0]}"

    async def _write(
        self,
        tx: StoreTransaction,
        ctx: RequestContext,
        resource: dict,
        version: int,
        method: str,
        previous: StoredVersion | None = None,
        references: Walked | None = None,
    ) -> StoredVersion:
        interaction = _write_interaction(method, previous)
        if previous is not None and not previous.deleted:
            await self.guard.admit(
                ctx, interaction, previous.resource_type, previous.id, resource_json(previous), tx
            )
        await self.guard.admit(ctx, interaction, resource["resourceType"], resource["id"], resource, tx)
        check_task_write(previous, resource)
        for hook in self.write_hooks:
            await hook(tx, ctx, resource)
        if references is not None:
            if references.conditional:
                await self.resolve_conditional(tx, references)
            await self.integrity.refers(tx, references.local)
        resource["meta"]["versionId"] = str(version)
        stored = StoredVersion(
            resource["resourceType"],
            resource["id"],
            version,
            resource["meta"]["lastUpdated"],
            method,
            exact_json.dumps(resource),
        )
        try:
            await tx.write(stored, self.extractor.extract(resource), ctx.trace_id)
        except VersionConflict as exc:
            raise conflict(str(exc)) from None
        await self._changed(ctx, interaction, stored, resource, tx)
        return stored

    async def _changed(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        stored: StoredVersion,
        resource: dict | None,
        tx: StoreTransaction,
    ) -> None:
        await self.guard.changed(ctx, interaction, stored, resource, tx)
        committing = _committing.get()
        if committing is not None:
            committing.append((ctx, stored))
        else:
            for hook in self.commit_hooks:
                await hook(ctx, stored)

    @_retried_on_conflict
    async def create(
        self,
        ctx: RequestContext,
        resource: dict,
        *,
        if_none_exist: str | None = None,
        tx: StoreTransaction | None = None,
        resource_id: str | None = None,
        trusted: bool = False,
        references: Walked | None = None,
    ) -> WriteResult:
        """`resource_id` is an id the caller assigned beforehand (a bundle rewrites references to it);
        `references` the walk of its references the bundle made.
        `trusted`: the server's own code built the resource (a Task, an exchange record, an event) from
        values that were validated before, so the R4 validation is skipped; what comes from
        outside the process (clients, NPHIES answers) is never trusted."""
        await self.guard.admit_type(ctx, Interaction.CREATE, require_resource(resource)["resourceType"])
        resource, references = self._prepare(resource, resource_id or str(uuid.uuid4()), trusted, references)
        criteria = parse_criteria(if_none_exist) if if_none_exist is not None else None
        async with self.transaction(tx, retried=True) as t:
            if criteria is not None:
                existing = await self._single_match(t, resource["resourceType"], criteria, "create")
                if existing is not None:
                    await self._seen(ctx, Interaction.READ, existing, t)
                    return WriteResult(200, existing)
            return WriteResult(201, await self._write(t, ctx, resource, 1, "POST", None, references))

    async def _single_match(
        self, tx: StoreTransaction, resource_type: str, criteria: list[tuple[str, str]], interaction: str
    ) -> StoredVersion | None:
        ids = await self.find_ids(resource_type, criteria, tx)
        if len(ids) > 1:
            raise precondition_failed(
                f"Conditional {interaction} matched {len(ids)} {resource_type} resources; "
                "the criteria must select at most one"
            )
        return await tx.current(resource_type, ids[0]) if ids else None

    @_retried_on_conflict
    async def update(
        self,
        ctx: RequestContext,
        resource_type: str,
        resource_id: str,
        resource: dict,
        *,
        if_match: str | None = None,
        tx: StoreTransaction | None = None,
        method: str = "PUT",
        trusted: bool = False,
        references: Walked | None = None,
    ) -> WriteResult:
        """`trusted` and `references`: as in `create`."""
        await self.guard.admit_type(ctx, Interaction.UPDATE, resource_type)
        check_id(resource_id)
        self.check_target(resource, resource_type, resource_id)
        expected = _expected_version(if_match)
        resource, references = self._prepare(resource, resource_id, trusted, references)
        async with self.transaction(tx, retried=True) as t:
            current = await t.current(resource_type, resource_id)
            if current is not None and not current.deleted:
                await self._hide_from_update(t, ctx, resource, current)
            return await self._update_current(t, ctx, resource, current, expected, method, references)

    async def _hide_from_update(
        self, tx: StoreTransaction, ctx: RequestContext, resource: dict, current: StoredVersion
    ) -> None:
        """An update of a resource ctx may not see: refused as the same PUT of a new id would be (the
        body checked as a create), else answered 404 as if there were nothing to update."""
        try:
            await self.guard.admit(
                ctx, Interaction.UPDATE, current.resource_type, current.id, resource_json(current), tx
            )
        except FhirError as exc:
            if exc.status != 403:
                raise
            await self.guard.admit(ctx, Interaction.CREATE, current.resource_type, current.id, resource, tx)
            raise not_found(f"{current.resource_type}/{current.id} is not known") from None

    async def _update_current(
        self,
        tx: StoreTransaction,
        ctx: RequestContext,
        resource: dict,
        current: StoredVersion | None,
        expected: int | None,
        method: str,
        references: Walked | None = None,
    ) -> WriteResult:
        current_version = current.version if current else 0
        if expected is not None and expected != current_version:
            raise precondition_failed(
                f"{resource['resourceType']}/{resource['id']} is at version {current_version}, not {expected}"
            )
        stored = await self._write(tx, ctx, resource, current_version + 1, method, current, references)
        return WriteResult(201 if current is None or current.deleted else 200, stored)

    @staticmethod
    def check_target(resource: object, resource_type: str, resource_id: str | None) -> None:
        require_resource(resource)
        if resource["resourceType"] != resource_type:
            raise bad_request(
                f"The body is a {resource['resourceType']} but the URL names {resource_type}", "resourceType"
            )
        if resource_id is not None and resource.get("id") != resource_id:
            raise bad_request(
                f"The body's id {resource.get('id')!r} must equal the id in the URL {resource_id!r}",
                f"{resource_type}.id",
            )

    @_retried_on_conflict
    async def conditional_update(
        self,
        ctx: RequestContext,
        resource_type: str,
        query: str,
        resource: dict,
        *,
        if_match: str | None = None,
        tx: StoreTransaction | None = None,
    ) -> WriteResult:
        await self.guard.admit_type(ctx, Interaction.UPDATE, resource_type)
        criteria = parse_criteria(query)
        self.check_target(resource, resource_type, None)
        body_id = resource.get("id")
        expected = _expected_version(if_match)
        async with self.transaction(tx, retried=True) as t:
            match = await self._single_match(t, resource_type, criteria, "update")
            if match is not None and body_id is not None and body_id != match.id:
                raise bad_request(
                    f"The body's id {body_id!r} is not the id of the resource the criteria match "
                    f"({match.id!r})",
                    f"{resource_type}.id",
                )
            if match is None and body_id is not None:
                check_id(body_id, f"{resource_type}.id")
                match = await t.current(resource_type, body_id)
            target_id = match.id if match else str(uuid.uuid4())
            prepared, references = self._prepare(resource, target_id)
            return await self._update_current(t, ctx, prepared, match, expected, "PUT", references)

    @_retried_on_conflict
    async def patch(
        self,
        ctx: RequestContext,
        resource_type: str,
        resource_id: str,
        operations: object,
        *,
        if_match: str | None = None,
        tx: StoreTransaction | None = None,
        merge: bool = False,
    ) -> WriteResult:
        """`operations` is a JSON Patch (RFC 6902) document, or with `merge` a JSON Merge Patch (RFC 7386)."""
        await self.guard.admit_type(ctx, Interaction.PATCH, resource_type)
        apply = apply_merge_patch if merge else apply_json_patch
        async with self.transaction(tx, retried=True) as t:
            current = await t.current(resource_type, resource_id)
            missing = f"{resource_type}/{resource_id} is not known"
            if current is None:
                raise not_found(missing)
            if current.deleted:
                await self._hide_deletion(ctx, Interaction.PATCH, current, missing)
                raise gone(f"{resource_type}/{resource_id} was deleted")
            original = resource_json(current)
            # Before the patch is applied: its test operations must not probe what ctx may not see.
            await self._admit_known(ctx, Interaction.PATCH, current, original, t, missing)
            patched = apply(original, operations)
            self.check_target(patched, resource_type, resource_id)
            expected = _expected_version(if_match)
            prepared, references = self._prepare(patched, resource_id)
            return await self._update_current(t, ctx, prepared, current, expected, "PATCH", references)

    @_retried_on_conflict
    async def conditional_patch(
        self,
        ctx: RequestContext,
        resource_type: str,
        query: str,
        operations: object,
        *,
        if_match: str | None = None,
        tx: StoreTransaction | None = None,
        merge: bool = False,
    ) -> WriteResult:
        await self.guard.admit_type(ctx, Interaction.PATCH, resource_type)
        criteria = parse_criteria(query)
        async with self.transaction(tx, retried=True) as t:
            match = await self._single_match(t, resource_type, criteria, "patch")
            if match is None:
                raise not_found(f"No {resource_type} matches the patch criteria")
            return await self.patch(
                ctx, resource_type, match.id, operations, if_match=if_match, tx=t, merge=merge
            )

    @_retried_on_conflict
    async def delete(
        self,
        ctx: RequestContext,
        resource_type: str,
        resource_id: str,
        *,
        if_match: str | None = None,
        tx: StoreTransaction | None = None,
    ) -> WriteResult:
        await self.guard.admit_type(ctx, Interaction.DELETE, resource_type)
        expected = _expected_version(if_match)
        async with self.transaction(tx, retried=True) as t:
            current = await t.current(resource_type, resource_id)
            missing = f"{resource_type}/{resource_id} is not known"
            if current is None:
                raise not_found(missing)
            if current.deleted:
                await self._hide_deletion(ctx, Interaction.DELETE, current, missing)
            else:
                await self._admit_known(ctx, Interaction.DELETE, current, resource_json(current), t, missing)
            return await self._delete_current(t, ctx, current, expected)

    async def _delete_current(
        self, tx: StoreTransaction, ctx: RequestContext, current: StoredVersion, expected: int | None
    ) -> WriteResult:
        if expected is not None and expected != current.version:
            raise precondition_failed(
                f"{current.resource_type}/{current.id} is at version {current.version}, not {expected}"
            )
        if current.deleted:
            return WriteResult(204, current)
        resource = resource_json(current)
        await self.guard.admit(ctx, Interaction.DELETE, current.resource_type, current.id, resource, tx)
        tombstone = StoredVersion(
            current.resource_type, current.id, current.version + 1, fhir_instant(self.clock()), "DELETE", None
        )
        try:
            await tx.write(tombstone, {}, ctx.trace_id)
        except VersionConflict as exc:
            raise conflict(str(exc)) from None
        await self.integrity.deletes(tx, current.resource_type, current.id)
        await self._changed(ctx, Interaction.DELETE, tombstone, resource, tx)
        return WriteResult(204, tombstone)

    @_retried_on_conflict
    async def conditional_delete(
        self, ctx: RequestContext, resource_type: str, query: str, *, tx: StoreTransaction | None = None
    ) -> WriteResult:
        await self.guard.admit_type(ctx, Interaction.DELETE, resource_type)
        criteria = parse_criteria(query)
        async with self.transaction(tx, retried=True) as t:
            match = await self._single_match(t, resource_type, criteria, "delete")
            if match is None:
                return WriteResult(204, None)
            return await self._delete_current(t, ctx, match, None)


def _write_interaction(method: str, previous: StoredVersion | None) -> Interaction:
    if previous is None or previous.deleted:
        return Interaction.CREATE
    return Interaction.PATCH if method == "PATCH" else Interaction.UPDATE


def apply_json_patch(document: dict, operations: object) -> dict:
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise bad_request("A JSON Patch document is an array of operation objects", code="structure")
    try:
        return jsonpatch.apply_patch(document, operations)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise error(422, "processing", f"JSON Patch test failed: {exc}") from None
    except (
        jsonpatch.JsonPatchException,
        jsonpatch.JsonPointerException,
        TypeError,
        ValueError,
        KeyError,
        IndexError,
    ) as exc:
        raise error(422, "processing", f"The JSON Patch cannot be applied: {exc}") from None


__all__ = ["FhirService", "WriteResult", "FhirError", "parse_criteria", "resource_json"]
