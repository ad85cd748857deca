"""The access rules applied to a search plan, for every type the search touches.

- The searched type: what the caller may see of it (the patient compartment, a scope's `?param=value`
  restriction) becomes criteria of the plan, so paging and counts see only that.
- Chained parameters (`subject:Patient.name=x`) and `_has` criteria reach other types: each reached type
  must be searchable by the caller, and its restrictions are added inside the chain. A criterion on a type
  the caller may not search, or whose access depends on each resource's attributes (ABAC), is refused with
  403 and never evaluated. A chain over several target types goes on through those the caller may search;
  when they are restricted differently, the caller names the target type (`subject:Patient.name`).
- `_revinclude` (and `_include`) sources the caller may not search are dropped from the plan; included
  resources are then filtered one by one as matches are.
- `exact_total` says whether the store's count counts only what the caller may see.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from .access import Interaction, Visibility, forbidden
from .context import RequestContext
from .errors import FhirError
from .search.plan import (
    ChainFilter,
    Filter,
    HasFilter,
    IdFilter,
    IncludeSpec,
    ParamRef,
    SearchPlan,
    ValueFilter,
    criterion_filter,
    reference_atoms,
)
from .search.query import Criterion, ReferenceMatch, SearchQuery

# Restriction parameters whose search matches what the authorizer compares (code, reference, uri).
EXACT_KINDS = frozenset({"token", "reference", "uri"})

Parse = Callable[[str, tuple[tuple[str, str], ...]], list]
Audit = Callable[[RequestContext, str, FhirError], Awaitable[None]]


def compartment_filter(resource_type: str, patient: str, codes: tuple[str, ...]) -> Filter:
    """Only resources in the compartment of `patient` ("Patient/1")."""
    patient_id = patient.removeprefix("Patient/")
    if resource_type == "Patient":
        return IdFilter((patient_id,))
    atoms = reference_atoms(ReferenceMatch("Patient", patient_id, None))
    return ValueFilter(ParamRef("reference", codes, (resource_type,)), atoms)


@dataclass(frozen=True, slots=True)
class Restricted:
    """A plan with the access criteria in it; `plan` is None when the caller can see nothing."""

    plan: SearchPlan | None
    exact_total: bool


class SearchAccess:
    """`parse` turns a scope's restrictions into criteria of a type (the search's own parser)."""

    def __init__(self, service, parse: Parse, now_ms: Callable[[], float]) -> None:
        self.service = service
        self.parse = parse
        self.now_ms = now_ms

    @property
    def access(self):
        return self.service.access

    async def restrict(self, ctx: RequestContext, query: SearchQuery, plan: SearchPlan) -> Restricted:
        types = query.resource_types
        filters = tuple([await self._filter(ctx, f) for f in plan.filters])
        includes = tuple([i for i in [await self._include(ctx, spec) for spec in plan.includes] if i])
        plan = replace(plan, filters=filters, includes=includes)
        if len(types) != 1:
            exact = all(self.access.visibility(ctx, t).unrestricted for t in types or (None,))
            return Restricted(plan, exact)
        visibility = self.access.visibility(ctx, types[0])
        if visibility.nothing:
            return Restricted(None, True)
        extra, expressed = self._criteria(types[0], visibility)
        return Restricted(replace(plan, filters=plan.filters + extra), visibility.exact and expressed)

    def _criteria(self, resource_type: str, visibility: Visibility) -> tuple[tuple[Filter, ...], bool]:
        """The visibility as filters on the type, and whether they say all of it."""
        filters: list[Filter] = []
        if visibility.patient is not None:
            codes = self.service.compartment.params_for(resource_type)
            filters.append(compartment_filter(resource_type, visibility.patient, codes))
        expressed = True
        if visibility.restrictions:
            try:
                criteria = self.parse(resource_type, visibility.restrictions)
            except FhirError:
                return tuple(filters), False
            for criterion in criteria:
                if (
                    not isinstance(criterion, Criterion)
                    or criterion.param.type not in EXACT_KINDS
                    or criterion.modifier is not None
                    or criterion.chain is not None
                    or criterion.missing is not None
                ):
                    expressed = False
                    continue
                filters.append(criterion_filter(criterion, (resource_type,), self.now_ms()))
        return tuple(filters), expressed

    async def _searchable(self, ctx: RequestContext, resource_type: str) -> bool:
        try:
            await self.access.check_type(ctx, Interaction.SEARCH, resource_type)
        except FhirError as exc:
            if exc.status == 403:
                return False
            raise
        return True

    async def _reached(self, ctx: RequestContext, resource_type: str, how: str) -> tuple[Filter, ...]:
        """The restrictions of a type a criterion reaches; 403 (audited) when it cannot be searched as
        the caller may see it."""
        await self.service.guard.admit_type(ctx, Interaction.SEARCH, resource_type)
        visibility = self.access.visibility(ctx, resource_type)
        criteria, expressed = self._criteria(resource_type, visibility)
        if visibility.nothing or not visibility.exact or not expressed:
            refusal = forbidden(
                f"The token's access to {resource_type} depends on each resource, so the search cannot "
                f"reach {resource_type} through {how}",
                "search-reach",
            )
            await self.service.guard.denied(ctx, Interaction.SEARCH, resource_type, refusal)
            raise refusal
        return criteria

    async def _filter(self, ctx: RequestContext, f: Filter) -> Filter:
        if isinstance(f, HasFilter):
            how = f"_has:{f.source_type}:{f.param.codes[0]}"
            extra = await self._reached(ctx, f.source_type, how)
            inner = tuple([await self._filter(ctx, g) for g in f.inner])
            return replace(f, inner=inner + extra)
        if isinstance(f, ChainFilter):
            return await self._chain(ctx, f)
        return f

    async def _chain(self, ctx: RequestContext, f: ChainFilter) -> ChainFilter:
        how = f"the chained parameter {f.param.codes[0]}"
        targets = f.target_types
        if len(targets) > 1:
            targets = tuple([t for t in targets if await self._searchable(ctx, t)]) or targets[:1]
        restrictions = {t: await self._reached(ctx, t, how) for t in targets}
        if len(targets) > 1 and any(restrictions.values()):
            refusal = forbidden(
                f"The chained parameter {f.param.codes[0]} reaches {', '.join(targets)}, which the token "
                f"may see only in part; name the target type ({f.param.codes[0]}:{targets[0]}.…)",
                "search-reach",
            )
            await self.service.guard.denied(ctx, Interaction.SEARCH, None, refusal)
            raise refusal
        inner = tuple([await self._filter(ctx, g) for g in f.inner])
        return replace(f, target_types=targets, inner=inner + restrictions[targets[0]])

    async def _include(self, ctx: RequestContext, spec: IncludeSpec) -> IncludeSpec | None:
        """Reverse includes come from their source types: those the caller may not search are dropped."""
        if not spec.reverse:
            return spec
        sources = {source for source, _ in spec.params}
        allowed = {s for s in sources if await self._searchable(ctx, s)}
        if allowed == sources:
            return spec
        params = tuple(pair for pair in spec.params if pair[0] in allowed)
        return replace(spec, params=params) if params else None
