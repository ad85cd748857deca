"""Batch and transaction Bundles (`POST [base]`): FHIR R4's processing rules on top of FhirService.

A transaction runs in one store transaction: DELETEs, then identities (ids for POSTs, conditional creates
and updates resolved), then every reference to an entry rewritten, then POSTs, PUT/PATCHes and GETs. Any
failure raises out of the store transaction, so nothing is written and no outbox event is kept. A batch
runs each entry on its own, in its own store transaction, and answers every entry.
"""

import asyncio
import logging
import random
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from .. import exact_json
from .bundle_entries import Entry, Target, entry_list, parse_entry, parse_target
from .bundle_patch import json_patch_of
from .bundle_responses import EntryFailed, EntryResult, failed_entry, response_entry, status_line
from .clock import fhir_instant
from .context import RequestContext
from .errors import FhirError, Issue, bad_request, conflict, error, operation_outcome, precondition_failed
from .reference_walk import UNRESOLVED, UNRESOLVED_IN_BATCH, BundleTargets, ReferenceWalk, Walked
from .service import TRANSIENT_ATTEMPTS, FhirService, WriteResult, parse_criteria
from .store import HistoryQuery, StoredVersion, StoreTransaction, TransientConflict
from .validation import check_id

log = logging.getLogger("nphies_facade.bundles")

SEARCH_NOT_YET = "search in bundles arrives with the search issue"
WRITES = ("POST", "PUT", "PATCH", "DELETE")

HistoryRenderer = Callable[[str, HistoryQuery, list[StoredVersion]], dict]
Searcher = Callable[[str | None, str, StoreTransaction | None], Awaitable[dict]]


@dataclass(frozen=True, slots=True)
class BundleOptions:
    """Per request: the base for fullUrls and locations, the Prefer return choice, and the limits."""

    base: str
    prefer: str = "representation"
    max_entries: int = 1000
    default_count: int = 50
    max_count: int = 1000


@dataclass(slots=True)
class _Plan:
    """An entry on its way through a run: its target, then the type and id it acts on."""

    entry: Entry
    target: Target = field(default_factory=lambda: Target(None))
    resource_type: str | None = None
    id: str | None = None
    existing: StoredVersion | None = None
    operations: list | None = None
    references: Walked | None = None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


class BundleProcessor:
    def __init__(
        self,
        service: FhirService,
        ctx: RequestContext,
        options: BundleOptions,
        history: HistoryRenderer,
        search: Searcher | None = None,
    ) -> None:
        self.service = service
        self.ctx = ctx
        self.options = options
        self.history = history
        self.search = search

    async def process(self, bundle: dict) -> dict:
        """Runs a Bundle of type batch or transaction; returns the batch-response or transaction-response."""
        raws = entry_list(bundle, self.options.max_entries)
        if bundle["type"] == "transaction":
            return self._response("transaction-response", await self._transaction(raws))
        return self._response(
            "batch-response", [await self._batch_entry(i, raw) for i, raw in enumerate(raws)]
        )

    async def _transaction(self, raws: list) -> list[dict]:
        """Runs again from the entries as sent when its deferred store transaction met a TransientConflict
        (processing rewrites the entries' resources in place)."""
        as_sent = exact_json.dumps(raws)
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                return await self._transaction_once(raws)
            except TransientConflict:
                if attempt == TRANSIENT_ATTEMPTS:
                    raise conflict(
                        "Concurrent writes kept conflicting with this transaction; try again"
                    ) from None
                await asyncio.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
                raws = exact_json.loads(as_sent)
        raise AssertionError("unreachable")

    async def _transaction_once(self, raws: list) -> list[dict]:
        try:
            entries = [_parse(index, raw) for index, raw in enumerate(raws)]
            async with self.service.transaction(retried=True) as tx:
                results = await _Run(self, entries, tx, UNRESOLVED).run()
        except EntryFailed as failure:
            raise failure.for_transaction() from None
        return [self._entry(results[e.index], e) for e in entries]

    async def _batch_entry(self, index: int, raw: object) -> dict:
        try:
            entry = _parse(index, raw)
            if entry.reads:
                results = await _Run(self, [entry], None, UNRESOLVED_IN_BATCH).run()
            else:
                async with self.service.transaction() as tx:
                    results = await _Run(self, [entry], tx, UNRESOLVED_IN_BATCH).run()
            return self._entry(results[index], entry)
        except EntryFailed as failure:
            return failed_entry(failure)
        except Exception as exc:  # one entry's bug must not cost the other entries their answers
            log.error(
                "unhandled %s in Bundle.entry[%d] trace=%s\n%s",
                type(exc).__name__,
                index,
                self.ctx.trace_id,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            issue = Issue("exception", f"Internal error; quote trace id {self.ctx.trace_id} to the operator")
            return {"response": {"status": status_line(500), "outcome": operation_outcome([issue])}}

    def _entry(self, result: EntryResult, entry: Entry) -> dict:
        return response_entry(result, self.options.base, self.options.prefer, head=entry.method == "HEAD")

    def _response(self, kind: str, entries: list[dict]) -> dict:
        response = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": kind,
            "timestamp": fhir_instant(self.service.clock()),
        }
        if entries:  # FHIR JSON has no empty arrays
            response["entry"] = entries
        return response


def _parse(index: int, raw: object) -> Entry:
    try:
        return parse_entry(index, raw)
    except FhirError as exc:
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        raise EntryFailed(index, full_url if isinstance(full_url, str) else None, None, exc) from None


class _Run:
    """The entries of one transaction (or one batch entry) against one store transaction (None: reads only)."""

    def __init__(
        self, processor: BundleProcessor, entries: list[Entry], tx: StoreTransaction | None, unresolved: str
    ) -> None:
        self.processor = processor
        self.unresolved = unresolved
        self.service = processor.service
        self.ctx = processor.ctx
        self.tx = tx
        self.plans = [_Plan(entry) for entry in entries]
        self.targets = BundleTargets(unresolved=unresolved)
        self.writers: dict[str, int] = {}
        self.conditional_references: dict[str, str] = {}
        self.results: dict[int, EntryResult] = {}

    async def run(self) -> dict[int, EntryResult]:
        steps: list[tuple[tuple[str, ...], Callable[[_Plan], Awaitable[None]]]] = [
            (("GET", "HEAD", *WRITES), self._locate),
            (("DELETE",), self._delete),
            (("POST",), self._identify_create),
            (("PUT", "PATCH"), self._identify_change),
            (("POST", "PUT", "PATCH"), self._rewrite),
            (("POST",), self._create),
            (("PUT", "PATCH"), self._change),
            (("GET", "HEAD"), self._read),
        ]
        for methods, step in steps:
            for plan in self.plans:
                if plan.entry.method in methods:
                    await self._step(plan, step)
        return self.results

    async def _step(self, plan: _Plan, step: Callable[[_Plan], Awaitable[None]]) -> None:
        try:
            await step(plan)
        except FhirError as exc:
            resource = plan.entry.resource
            kind = resource.get("resourceType") if resource is not None else plan.target.resource_type
            raise EntryFailed(plan.entry.index, plan.entry.full_url, kind, exc) from None

    # ----- identities -----

    async def _locate(self, plan: _Plan) -> None:
        target = parse_target(plan.entry.url, self.processor.options.base)
        if target.operation is not None:
            raise error(
                400,
                "not-supported",
                f"Operations such as {target.operation} are not supported in "
                "Bundle entries; call them on their own",
                "request.url",
            )
        _check_shape(plan.entry.method, target)
        plan.target = target
        plan.resource_type = target.resource_type

    def _map(self, plan: _Plan) -> None:
        if plan.entry.full_url is not None:
            self.targets.add(plan.entry.full_url, plan.reference)

    def _claim(self, plan: _Plan, reference: str) -> None:
        other = self.writers.setdefault(reference, plan.entry.index)
        if other != plan.entry.index:
            raise bad_request(
                f"Bundle.entry[{other}] already changes {reference}; a transaction changes each "
                "resource at most once",
                "request.url",
            )

    async def _single(self, resource_type: str, query: str, interaction: str) -> StoredVersion | None:
        ids = await self.service.find_ids(
            resource_type, parse_criteria(query.partition("?")[2] or query), self.tx
        )
        if len(ids) > 1:
            raise precondition_failed(
                f"Conditional {interaction} matched {len(ids)} {resource_type} resources; "
                "the criteria must select at most one"
            )
        return await self.tx.current(resource_type, ids[0]) if ids else None

    async def _identify_create(self, plan: _Plan) -> None:
        entry = plan.entry
        self.service.check_target(entry.resource, plan.resource_type, None)
        if entry.if_none_exist is not None:
            plan.existing = await self._single(plan.resource_type, entry.if_none_exist, "create")
        plan.id = plan.existing.id if plan.existing is not None else str(uuid.uuid4())
        self._map(plan)

    async def _identify_change(self, plan: _Plan) -> None:
        entry, target = plan.entry, plan.target
        if entry.method == "PATCH":
            plan.operations = json_patch_of(entry.resource)
        if target.id is not None:
            plan.id = target.id
        else:
            interaction = "patch" if entry.method == "PATCH" else "update"
            match = await self._single(plan.resource_type, target.query, interaction)
            plan.id = self._conditional_id(plan, match)
        self._claim(plan, plan.reference)
        self._map(plan)

    def _conditional_id(self, plan: _Plan, match: StoredVersion | None) -> str:
        if plan.entry.method == "PATCH":
            if match is None:
                raise error(
                    404, "not-found", f"No {plan.resource_type} matches the patch criteria", "request.url"
                )
            return match.id
        resource = plan.entry.resource
        body_id = resource.get("id")
        if match is not None and body_id is not None and body_id != match.id:
            raise bad_request(
                f"The body's id {body_id!r} is not the id of the resource the criteria match ({match.id!r})",
                f"{plan.resource_type}.id",
            )
        if match is None and body_id is not None:
            check_id(body_id, f"{plan.resource_type}.id")
        resource["id"] = match.id if match is not None else body_id or str(uuid.uuid4())
        return resource["id"]

    # ----- references -----

    async def _rewrite(self, plan: _Plan) -> None:
        """References to entries rewritten, every reference checked, conditional ones resolved (before
        any entry is written); the walk goes to the write (PATCH: the patched resource is walked)."""
        if plan.existing is not None:
            return
        entry = plan.entry
        root = f"{entry.path}.resource" + (".data" if plan.operations is not None else "")
        document = plan.operations if plan.operations is not None else entry.resource
        walked = ReferenceWalk(root, self.targets, entry.full_url).walk(document)
        walked.raise_issues()
        await self.service.resolve_conditional(self.tx, walked, self.conditional_references)
        if plan.operations is None:
            plan.references = walked

    # ----- writes -----

    async def _delete(self, plan: _Plan) -> None:
        entry, target = plan.entry, plan.target
        if target.id is not None:
            result = await self.service.delete(
                self.ctx, target.resource_type, target.id, if_match=entry.if_match, tx=self.tx
            )
        elif entry.if_match is not None:
            raise bad_request("ifMatch cannot be combined with a conditional delete", "request.ifMatch")
        else:
            result = await self.service.conditional_delete(
                self.ctx, target.resource_type, target.query, tx=self.tx
            )
        if result.version is not None:
            plan.id = result.version.id
            self._claim(plan, plan.reference)
        self.results[entry.index] = EntryResult(result.status, result.version)

    async def _create(self, plan: _Plan) -> None:
        if plan.existing is not None:
            self.results[plan.entry.index] = EntryResult(200, plan.existing, written=True)
            return
        result = await self.service.create(
            self.ctx, plan.entry.resource, tx=self.tx, resource_id=plan.id, references=plan.references
        )
        self._written(plan, result)

    async def _change(self, plan: _Plan) -> None:
        entry = plan.entry
        if plan.operations is not None:
            result = await self.service.patch(
                self.ctx, plan.resource_type, plan.id, plan.operations, if_match=entry.if_match, tx=self.tx
            )
        else:
            result = await self.service.update(
                self.ctx,
                plan.resource_type,
                plan.id,
                entry.resource,
                if_match=entry.if_match,
                tx=self.tx,
                references=plan.references,
            )
        self._written(plan, result)

    def _written(self, plan: _Plan, result: WriteResult) -> None:
        self.results[plan.entry.index] = EntryResult(result.status, result.version, written=True)

    # ----- reads -----

    async def _read(self, plan: _Plan) -> None:
        target = plan.target
        if target.history:
            result = await self._history(target)
        elif target.id is None:
            result = await self._search(target)
        else:
            if target.version is not None:
                stored = await self.service.vread(target.resource_type, target.id, target.version, tx=self.tx)
            else:
                stored = await self.service.read(target.resource_type, target.id, tx=self.tx)
            modified = _modified(plan.entry, stored)
            result = EntryResult(200 if modified else 304, stored, stored.body if modified else None)
        self.results[plan.entry.index] = result

    async def _history(self, target: Target) -> EntryResult:
        options = self.processor.options
        params = dict(parse_qsl(target.query or ""))
        query = HistoryQuery(
            resource_type=target.resource_type,
            id=target.id,
            since=_instant(params["_since"]) if "_since" in params else None,
            count=_count(params.get("_count"), options.default_count, options.max_count),
        )
        versions = await self.service.history(query)
        path = "/".join(part for part in (target.resource_type, target.id, "_history") if part)
        return EntryResult(200, body=self.processor.history(path, query, versions))

    async def _search(self, target: Target) -> EntryResult:
        if self.processor.search is None:
            raise error(400, "not-supported", SEARCH_NOT_YET, "request.url")
        return EntryResult(
            200, body=await self.processor.search(target.resource_type, target.query or "", self.tx)
        )


def _check_shape(method: str, target: Target) -> None:
    """Whether the method can act on what the url names (POST a type, PUT an instance or criteria ...)."""
    if method == "POST":
        ok = (
            target.resource_type is not None
            and target.id is None
            and target.query is None
            and not target.history
        )
        expected = "a resource type, e.g. Patient"
    elif method in ("PUT", "PATCH", "DELETE"):
        has_one = (target.id is None) != (target.query is None)
        ok = target.resource_type is not None and has_one and not target.history
        expected = "type/id or type?criteria"
    else:
        ok, expected = True, ""
    if not ok:
        raise bad_request(f"A {method} entry's request.url must be {expected}", "request.url")


def _modified(entry: Entry, stored: StoredVersion) -> bool:
    """False when ifNoneMatch names the current version or nothing changed since ifModifiedSince (a 304)."""
    if entry.if_none_match is not None:
        tag = entry.if_none_match.strip()
        return tag != "*" and tag.removeprefix("W/").strip('"') != str(stored.version)
    if entry.if_modified_since is not None:
        since = _moment(entry.if_modified_since, "request.ifModifiedSince")
        return datetime.fromisoformat(stored.last_updated) > since
    return True


def _moment(value: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise bad_request(f"{value!r} is not an instant such as 2026-01-31T12:00:00Z", where) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _instant(value: str) -> str:
    return fhir_instant(_moment(value, "request.url"))


def _count(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise bad_request(f"_count must be a non-negative whole number, not {value!r}", "request.url")
    return min(int(value), maximum)
