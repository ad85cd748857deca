"""Running search plans on MongoDB: the page, the total, the includes, and conditional-interaction ids.

Chained parameters and `_has` are resolved by a second query first (the live targets or sources that
meet the inner filters), then rendered as a filter on what was found; includes are second queries on
the found resources' reference entries. No `$lookup`: every query reads one collection through the
`idx` indexes. Positions of found versions are their `rid`, as SQLite's are their row ids.
"""

from pymongo.asynchronous.client_session import AsyncClientSession

from ..search.plan import (
    ChainFilter,
    Filter,
    HasFilter,
    IdFilter,
    IncludeSpec,
    PresenceFilter,
    SearchPlan,
    ValueFilter,
)
from ..sqlite.index_rows import FIELDS
from ..store import Found, SearchPage, StoredVersion
from .collections import Collections
from .documents import resource_key
from .search_filters import (
    NOTHING,
    id_filter,
    keyset_filter,
    of_types,
    order,
    presence_filter,
    sort_document,
    sort_field,
    sort_key_stages,
    value_filter,
)

FOUND_PROJECTION = {
    "_id": False,
    "rid": True,
    "type": True,
    "id": True,
    "version": True,
    "last_updated": True,
    "body": True,
}
_REF_KEY, _REF_TYPE = FIELDS["reference"]["key"], FIELDS["reference"]["type"]


def found_version(doc: dict) -> StoredVersion:
    body = doc["body"]
    return StoredVersion(
        doc["type"],
        doc["id"],
        doc["version"],
        doc["last_updated"],
        "",
        None if body is None else bytes(body),
        doc["rid"],
    )


def _references(entries: list[dict]) -> list[tuple[str, str]]:
    """(target type, target id) of reference entries that name both."""
    return [(e[_REF_TYPE], e[_REF_KEY]) for e in entries if e.get(_REF_TYPE) and e.get(_REF_KEY)]


def _refs_projection(codes: list[str]) -> dict:
    return {"$filter": {"input": "$idx", "as": "e", "cond": {"$in": ["$$e.p", codes]}}}


def _ids_by_type(pairs) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for resource_type, resource_id in pairs:
        ids = grouped.setdefault(resource_type, [])
        if resource_id not in ids:
            ids.append(resource_id)
    return grouped


class MongoSearch:
    """Searches as one reader sees the data: `session` is a transaction's (it sees its own writes)."""

    def __init__(self, collections: Collections, session: AsyncClientSession | None = None) -> None:
        self.resources = collections.resources
        self.session = session

    async def _find(self, query: dict, projection: dict | None = None, limit: int = 0) -> list[dict]:
        cursor = self.resources.find(query, projection, session=self.session)
        if limit:
            cursor = cursor.limit(limit)
        return [doc async for doc in cursor]

    async def _aggregate(self, pipeline: list[dict]) -> list[dict]:
        # A sort on computed keys (a parameter's values) cannot use an index; large ones spill to disk.
        cursor = await self.resources.aggregate(pipeline, session=self.session, allowDiskUse=True)
        return [doc async for doc in cursor]

    # ----- filters -----

    async def where(self, types: tuple[str, ...] | None, filters: tuple[Filter, ...]) -> dict:
        clauses: list[dict] = [{"deleted": False}]
        if types:
            clauses.append({"type": types[0] if len(types) == 1 else {"$in": list(types)}})
        for f in filters:
            clauses.append(await self._filter(f))
        return {"$and": clauses}

    async def _filter(self, f: Filter) -> dict:
        if isinstance(f, IdFilter):
            return id_filter(f.ids)
        if isinstance(f, ValueFilter):
            return value_filter(f)
        if isinstance(f, PresenceFilter):
            return presence_filter(f)
        if isinstance(f, ChainFilter):
            return await self._chain(f)
        return await self._has(f)

    async def _chain(self, f: ChainFilter) -> dict:
        """The reference points at one of the live targets that meet the inner filters."""
        targets = await self._find(
            await self.where(f.target_types, f.inner), {"_id": False, "type": True, "id": True}
        )
        if not targets:
            return NOTHING
        grouped = _ids_by_type((t["type"], t["id"]) for t in targets)
        codes = f.param.codes[0] if len(f.param.codes) == 1 else {"$in": list(f.param.codes)}
        pointing = [{_REF_TYPE: t, _REF_KEY: {"$in": ids}} for t, ids in grouped.items()]
        entry = {"p": codes, **pointing[0]} if len(pointing) == 1 else {"p": codes, "$or": pointing}
        return of_types(f.param, {"idx": {"$elemMatch": entry}})

    async def _has(self, f: HasFilter) -> dict:
        """One of the live sources that meet the inner filters points here through the parameter."""
        pipeline = [
            {"$match": await self.where((f.source_type,), f.inner)},
            {"$project": {"_id": False, "refs": _refs_projection(list(f.param.codes))}},
        ]
        pairs = [
            pair for doc in await self._aggregate(pipeline) for pair in _references(doc.get("refs") or [])
        ]
        if not pairs:
            return NOTHING
        return {"_id": {"$in": sorted({resource_key(t, i) for t, i in pairs})}}

    # ----- the page -----

    async def run(self, plan: SearchPlan) -> SearchPage:
        where = await self.where(plan.types, plan.filters)
        matches: list[Found] = []
        more = False
        if plan.fetch_matches:
            docs = await self._page(plan, where)
            more = len(docs) > plan.limit
            docs = docs[: plan.limit]
            if plan.keyset is not None and plan.keyset.backwards:
                docs.reverse()
            fields = [sort_field(n, spec) for n, spec in enumerate(plan.sort)]
            matches = [Found(found_version(doc), (*(doc[f] for f in fields), doc["rid"])) for doc in docs]
        total = (
            await self.resources.count_documents(where, session=self.session) if plan.count_total else None
        )
        return SearchPage(matches, await self._included(plan, matches), total, more)

    async def _page(self, plan: SearchPlan, where: dict) -> list[dict]:
        keys = order(plan)
        keyed = [
            sort_field(n, spec) for n, spec in enumerate(plan.sort) if sort_field(n, spec).startswith("k")
        ]
        pipeline: list[dict] = [{"$match": where}, *sort_key_stages(plan)]
        if plan.keyset is not None:
            pipeline.append({"$match": keyset_filter(keys, plan.keyset.values)})
        pipeline += [
            {"$sort": sort_document(keys)},
            {"$limit": plan.limit + 1},
            {"$project": {**FOUND_PROJECTION, **dict.fromkeys(keyed, True)}},
        ]
        return await self._aggregate(pipeline)

    async def ids(self, plan: SearchPlan, limit: int) -> list[str]:
        cursor = self.resources.find(
            await self.where(plan.types, plan.filters), {"_id": False, "id": True}, session=self.session
        ).sort("rid", 1)
        return [doc["id"] async for doc in cursor.limit(limit)] if limit > 0 else []

    # ----- includes -----

    async def _included(self, plan: SearchPlan, matches: list[Found]) -> list[StoredVersion]:
        """Includes of the matches; `:iterate` ones again on what they brought, until nothing new comes."""
        if not plan.includes or not matches:
            return []
        seen = {(m.version.resource_type, m.version.id) for m in matches}
        frontier = [(m.version.resource_type, m.version.id) for m in matches]
        included: list[StoredVersion] = []
        specs = plan.includes
        while frontier and specs and len(included) < plan.max_included:
            added = []
            for spec in specs:
                for version in await self._include(spec, frontier, plan.max_included - len(included)):
                    key = (version.resource_type, version.id)
                    if key not in seen and len(included) < plan.max_included:
                        seen.add(key)
                        included.append(version)
                        added.append(key)
            frontier = added
            specs = tuple(s for s in plan.includes if s.iterate)
        return included

    async def _include(
        self, spec: IncludeSpec, frontier: list[tuple[str, str]], limit: int
    ) -> list[StoredVersion]:
        if spec.reverse:
            return await self._reverse_include(spec, frontier, limit)
        return await self._forward_include(spec, frontier, limit)

    async def _forward_include(
        self, spec: IncludeSpec, frontier: list[tuple[str, str]], limit: int
    ) -> list[StoredVersion]:
        """What the found resources' reference entries `spec.params` point at, when it is live."""
        wanted = set(spec.params)
        codes = sorted({code for source, code in spec.params if any(source == t for t, _ in frontier)})
        if not codes:
            return []
        pipeline = [
            {"$match": {"_id": {"$in": [resource_key(t, i) for t, i in frontier]}}},
            {"$project": {"_id": False, "type": True, "refs": _refs_projection(codes)}},
        ]
        targets = set()
        for doc in await self._aggregate(pipeline):
            entries = [e for e in doc.get("refs") or [] if (doc["type"], e["p"]) in wanted]
            targets.update(
                resource_key(t, i) for t, i in _references(entries) if spec.target_type in (None, t)
            )
        if not targets:
            return []
        docs = await self._find({"_id": {"$in": sorted(targets)}, "deleted": False}, FOUND_PROJECTION, limit)
        return [found_version(doc) for doc in docs]

    async def _reverse_include(
        self, spec: IncludeSpec, frontier: list[tuple[str, str]], limit: int
    ) -> list[StoredVersion]:
        """Live resources whose reference entries `spec.params` point at a found resource."""
        targets = _ids_by_type((t, i) for t, i in frontier if spec.target_type in (None, t))
        codes_by_source = _ids_by_type(spec.params)
        if not targets or not codes_by_source:
            return []
        branches = [
            {
                "type": source,
                "idx": {"$elemMatch": {"p": {"$in": codes}, _REF_TYPE: target, _REF_KEY: {"$in": ids}}},
            }
            for source, codes in codes_by_source.items()
            for target, ids in targets.items()
        ]
        query = {"deleted": False, **(branches[0] if len(branches) == 1 else {"$or": branches})}
        return [found_version(doc) for doc in await self._find(query, FOUND_PROJECTION, limit)]
