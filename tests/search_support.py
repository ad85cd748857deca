"""Search test support: a store-backed FhirService per module and a brute-force reference evaluator.

The reference extracts every stored resource's index values and decides each criterion with
`matching.criterion_matches` (chains and `_has` by following the extracted references), so a search
test can compare what the SQL returns with what the in-memory semantics say, resource by resource.
"""

from collections.abc import Iterable
from pathlib import Path

import orjson

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.search.matching import criterion_matches
from nphies_facade.resources.search.query import Criterion, HasCriterion, QueryParser
from nphies_facade.resources.search.values import ReferenceValue
from nphies_facade.resources.searching import SearchOptions
from nphies_facade.resources.service import FhirService
from nphies_facade.resources.sqlite.store import SqliteStore

SYSTEM = RequestContext.system()
STRICT = SearchOptions(strict=True, max_count=5000)


async def open_service(path: Path, clock=None) -> FhirService:
    store = SqliteStore(path / "search.sqlite3")
    await store.open()
    registry = SearchRegistry()
    # Search corpora refer to resources they do not hold (a Task's owner, a Claim's patient): what
    # matters here is what the index finds, so referential integrity is off.
    extractor = Extractor(registry)
    service = (
        FhirService(store, extractor, clock, referential_integrity=False)
        if clock
        else FhirService(store, extractor, referential_integrity=False)
    )
    await service.open()
    return service


async def close_service(service: FhirService) -> None:
    await service.close()
    await service.store.close()


async def put_all(service: FhirService, resources: Iterable[dict]) -> None:
    """Stores resources under their own ids, in one transaction."""
    async with service.transaction() as tx:
        for resource in resources:
            body = orjson.loads(orjson.dumps(resource))
            await service.update(SYSTEM, body["resourceType"], body["id"], body, tx=tx)


async def ids(service: FhirService, resource_type: str, params: list[tuple[str, str]] | str) -> list[str]:
    """Ids of every match, in result order (one big page)."""
    if isinstance(params, str):
        params = _pairs(params)
    result = await service.search((resource_type,), [*params, ("_count", "5000")], STRICT, ctx=SYSTEM)
    return [v.id for v in result.matches]


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def forced_ranges(choose):
    """A driver choice that starts from range rows whenever two filters share a date or number parameter."""
    from nphies_facade.resources.sqlite import search_exec, search_sql

    def choose_drivers(db, renderer, plan):
        candidates = [
            n for n, f in enumerate(plan.filters) if search_sql.can_drive(f) and hasattr(f, "atoms")
        ]
        same = search_exec._same_parameter(plan, candidates)
        if same is not None and plan.filters[same[0]].param.kind in ("date", "number"):
            return (search_sql.RANGE, *same), (search_sql.RANGE, *same)
        return choose(db, renderer, plan)

    return choose_drivers


class Reference:
    """The brute-force evaluator: every live resource's index values, matched criterion by criterion."""

    def __init__(self, resources: Iterable[dict], registry: SearchRegistry, now_ms: float) -> None:
        extractor = Extractor(registry)
        self.registry = registry
        self.now_ms = now_ms
        self.index = {(r["resourceType"], r["id"]): extractor.extract(r) for r in resources}

    def ids(self, resource_type: str, params: list[tuple[str, str]] | str) -> set[str]:
        if isinstance(params, str):
            params = _pairs(params)
        query = QueryParser(self.registry).parse((resource_type,), params, strict=True)
        return {
            rid
            for (rtype, rid), index in self.index.items()
            if rtype == resource_type and all(self._holds(c, rtype, rid, index) for c in query.criteria)
        }

    def _holds(self, criterion: Criterion | HasCriterion, rtype: str, rid: str, index: dict) -> bool:
        if isinstance(criterion, HasCriterion):
            return any(
                stype == criterion.source_type
                and any(
                    isinstance(v, ReferenceValue) and v.type == rtype and v.id == rid
                    for v in sindex.get(criterion.reference.code, ())
                )
                and self._holds(criterion.inner, stype, sid, sindex)
                for (stype, sid), sindex in self.index.items()
            )
        if criterion.chain is not None:
            for value in index.get(criterion.param.code, ()):
                if not isinstance(value, ReferenceValue) or value.type not in criterion.target_types:
                    continue
                target = self.index.get((value.type, value.id))
                if target is not None and self._holds(criterion.chain, value.type, value.id, target):
                    return True
            return False
        return criterion_matches(criterion, index, self.now_ms)
