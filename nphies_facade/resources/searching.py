"""Search as FhirService runs it: parse, plan (with the caller's compartment), run on the store, page,
filter by access rules and audit; conditional interactions use the same path inside their transaction.

Also keeps SearchParameter resources active (custom_params.py) and reindexes after they change.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .access import Interaction
from .context import RequestContext, context_or_current
from .custom_params import SEARCH_PARAMETER, CustomParameters, reindex_types
from .errors import FhirError, bad_request
from .reindex import Reindexer
from .search.definitions import SearchRegistry
from .search.plan import Planner, SearchPlan, encode_cursor
from .search.query import QueryParser, SearchQuery
from .search_access import SearchAccess
from .store import SearchPage, Store, StoredVersion, StoreTransaction
from .types import supported_types

if TYPE_CHECKING:
    from .service import FhirService

CONDITIONAL_LIMIT = 1000
# A total the store cannot count for the caller (attribute rules decide per resource) is counted over at
# most this many matches, each checked; beyond it the total is left out.
CHECKED_TOTAL_LIMIT = 1000
SYSTEM_SCOPES = RequestContext.system().scopes


@dataclass(frozen=True, slots=True)
class SearchOptions:
    strict: bool = False
    base_url: str | None = None
    default_count: int = 50
    max_count: int = 1000


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of matches and what they include; cursors continue it forwards and backwards."""

    query: SearchQuery
    matches: list[StoredVersion]
    included: list[StoredVersion]
    total: int | None
    next_cursor: str | None
    previous_cursor: str | None


def page_cursors(plan: SearchPlan, page: SearchPage) -> tuple[str | None, str | None]:
    """(next, previous) cursors of a page read forwards or (from a previous link) backwards."""
    if not page.matches:
        return None, None
    first, last = page.matches[0].key, page.matches[-1].key
    backwards = plan.keyset is not None and plan.keyset.backwards
    has_next = page.more if not backwards else True
    has_previous = plan.keyset is not None if not backwards else page.more
    return (
        encode_cursor(plan.sort, last, False) if has_next else None,
        encode_cursor(plan.sort, first, True) if has_previous else None,
    )


def _whole(query: SearchQuery, plan: SearchPlan, page: SearchPage) -> bool:
    """The first page holds every match, so the total costs nothing (unless `_total=none` said no)."""
    return query.total != "none" and plan.fetch_matches and plan.keyset is None and not page.more


def _internal(ctx: RequestContext) -> bool:
    """The server's own background work (RequestContext.system, no client): its searches (sweeps of due
    Tasks every few seconds) are no client interaction and are not audited; every client's search is."""
    return ctx.client_id is None and ctx.scopes == SYSTEM_SCOPES


def _unknown_parameters(exc: FhirError) -> bool:
    return exc.status == 400 and any(i.code == "not-supported" for i in exc.issues)


class Searching:
    def __init__(self, service: "FhirService") -> None:
        self.service = service
        self.parameters = CustomParameters(service.extractor.registry)
        self.reindexer = Reindexer(
            service.store, lambda: service.extractor, self.parameters.sync, service.clock
        )
        service.write_hooks.append(self._before_write)
        service.commit_hooks.append(self._after_commit)
        self.access = SearchAccess(service, self._restriction_criteria, self._now_ms)

    @property
    def registry(self) -> SearchRegistry:
        return self.service.extractor.registry

    @property
    def store(self) -> Store:
        return self.service.store

    def _now_ms(self) -> float:
        return self.service.clock().timestamp() * 1000

    async def open(self) -> None:
        """Registers the SearchParameter resources already stored (at start-up)."""
        await self.parameters.sync(self.store)
        self.parameters.pending.clear()

    # ----- SearchParameter resources -----

    async def _before_write(self, tx: StoreTransaction, ctx: RequestContext, resource: dict) -> None:
        self.parameters.check(resource)
        await self.parameters.sync(tx)

    async def _after_commit(self, ctx: RequestContext, stored: StoredVersion) -> None:
        if stored.resource_type != SEARCH_PARAMETER:
            return
        await self.parameters.sync(self.store)
        types = reindex_types(self.parameters.take_pending(), supported_types())
        if types:
            self.reindexer.start(types)

    def reindex(self, resource_types: tuple[str, ...] | None) -> object:
        return self.reindexer.start(resource_types or tuple(sorted(supported_types())))

    # ----- parsing -----

    async def parse(
        self,
        resource_types: tuple[str, ...],
        params: list[tuple[str, str]],
        options: SearchOptions,
        source: Store | StoreTransaction,
    ) -> SearchQuery:
        """Parses; parameters unknown here are looked up again once (another process may have added them)."""
        try:
            query = self._parse(resource_types, params, options)
        except FhirError as exc:
            if not _unknown_parameters(exc) or not await self._refreshed(source):
                raise
            return self._parse(resource_types, params, options)
        if query.ignored and await self._refreshed(source):
            return self._parse(resource_types, params, options)
        return query

    def _parse(
        self, resource_types: tuple[str, ...], params: list[tuple[str, str]], options: SearchOptions
    ) -> SearchQuery:
        parser = QueryParser(self.registry, options.base_url)
        return parser.parse(
            resource_types,
            params,
            strict=options.strict,
            default_count=options.default_count,
            max_count=options.max_count,
        )

    async def _refreshed(self, source: Store | StoreTransaction) -> bool:
        before = self.registry.version
        await self.parameters.sync(source)
        return self.registry.version != before

    # ----- search -----

    def _restriction_criteria(self, resource_type: str, restrictions: tuple[tuple[str, str], ...]) -> list:
        """A scope's `?param=value` restrictions as the criteria of a search of the type."""
        return self._parse((resource_type,), list(restrictions), SearchOptions(strict=True)).criteria

    async def search(
        self,
        resource_types: tuple[str, ...],
        params: list[tuple[str, str]],
        options: SearchOptions,
        ctx: RequestContext | None = None,
        tx: StoreTransaction | None = None,
    ) -> SearchResult:
        ctx = context_or_current(ctx)
        guard = self.service.guard
        for resource_type in resource_types or (None,):
            await guard.admit_type(ctx, Interaction.SEARCH, resource_type)
        source = tx or self.store
        query = await self.parse(resource_types, params, options, source)
        restricted = await self.access.restrict(
            ctx, query, Planner(self.registry, self._now_ms()).plan(query)
        )
        plan = restricted.plan
        if plan is None:  # no scope admits any resource of the type
            page = SearchPage([], [], 0 if query.summary == "count" or query.total != "none" else None, False)
            plan = SearchPlan(None, ())
        else:
            page = await source.search(plan)
        matches = await self.service.permitted(ctx, Interaction.SEARCH, [m.version for m in page.matches])
        included = await self.service.permitted(ctx, Interaction.SEARCH, page.included)
        total = page.total
        if total is not None and not restricted.exact_total:
            total = await self._checked_total(ctx, plan, source)
        if total is None and _whole(query, plan, page):
            total = len(matches)  # those the caller may see
        next_cursor, previous_cursor = page_cursors(plan, page)
        if not _internal(ctx):
            single = query.resource_types[0] if len(query.resource_types) == 1 else None
            await guard.listed(ctx, Interaction.SEARCH, single, None, len(matches), tx=tx)
        return SearchResult(query, matches, included, total, next_cursor, previous_cursor)

    async def _checked_total(
        self, ctx: RequestContext, plan: SearchPlan, source: Store | StoreTransaction
    ) -> int | None:
        """The matches the caller may see, counted one by one (None past CHECKED_TOTAL_LIMIT)."""
        counting = replace(
            plan,
            sort=(),
            keyset=None,
            includes=(),
            count_total=False,
            fetch_matches=True,
            limit=CHECKED_TOTAL_LIMIT,
        )
        page = await source.search(counting)
        if page.more:
            return None
        return len(await self.service.permitted(ctx, Interaction.SEARCH, [m.version for m in page.matches]))

    async def find_ids(
        self,
        resource_type: str,
        criteria: list[tuple[str, str]],
        tx: StoreTransaction | None,
        limit: int = CONDITIONAL_LIMIT,
    ) -> list[str]:
        """Ids of live resources matching conditional criteria (any search parameter; unknown ones: 400)."""
        source = tx or self.store
        query = await self.parse((resource_type,), criteria, SearchOptions(strict=True), source)
        if not query.criteria:
            raise bad_request("Conditional interactions need search criteria with a value")
        plan = Planner(self.registry, self._now_ms()).plan(query)
        plan = replace(
            plan, sort=(), keyset=None, includes=(), count_total=False, fetch_matches=True, limit=limit
        )
        if tx is not None:
            return await tx.match_ids(resource_type, criteria, plan, limit)
        page = await self.store.search(plan)
        return [m.version.id for m in page.matches]
