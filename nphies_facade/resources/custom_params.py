"""SearchParameter resources stored in the server: checked when written, active in the registry of every
server process, and the resources of their base types reindexed when one is added, changed or removed.

Every write transaction first asks the store for the position of the latest SearchParameter write (cheap:
the SQLite store answers from memory unless another process signalled a change), so no process extracts
index values with a registry older than what is committed. A search that meets an unknown parameter looks
again before it reports it, so a parameter posted to one server process is searchable in all of them.
"""

import logging

from .. import exact_json
from .errors import bad_request
from .search.definitions import SearchRegistry, validate_search_parameter
from .search.plan import SearchPlan
from .store import Store, StoredVersion, StoreTransaction

log = logging.getLogger("nphies_facade.search")

SEARCH_PARAMETER = "SearchParameter"
ACTIVE = "active"
MAX_PARAMETERS = 10_000
ALL_BASES = frozenset({"Resource", "DomainResource"})


def _url(resource: dict) -> str:
    """The canonical the parameter is registered and listed under (its url, else its address here)."""
    return resource.get("url") or f"{SEARCH_PARAMETER}/{resource.get('id')}"


def _bases(resource: dict) -> set[str]:
    return {b for b in resource.get("base") or () if isinstance(b, str)}


class CustomParameters:
    """Keeps `registry` in step with the active SearchParameter resources of the store."""

    def __init__(self, registry: SearchRegistry) -> None:
        self.registry = registry
        self._position = -1
        self._active: dict[str, tuple[int, str, set[str]]] = {}  # id -> (version, url, bases)
        self.pending: set[str] = set()  # bases changed since the last take_pending (to reindex)

    def check(self, resource: dict) -> None:
        """A 400 when an active SearchParameter could not be used for searching (before it is written)."""
        if resource.get("resourceType") != SEARCH_PARAMETER or resource.get("status") != ACTIVE:
            return
        try:
            validate_search_parameter(resource)
            for component in resource.get("component") or ():
                if self.registry.by_url(component["definition"]) is None:
                    raise ValueError(
                        f"component definition {component['definition']!r} is not a known parameter"
                    )
        except ValueError as exc:
            raise bad_request(f"This SearchParameter cannot be activated: {exc}", SEARCH_PARAMETER) from None

    async def sync(self, source: Store | StoreTransaction) -> set[str]:
        """Registers what changed since the last look; returns the base types whose parameters changed."""
        try:
            position = await source.latest_position(SEARCH_PARAMETER)
        except NotImplementedError:  # a backend without search plans keeps the official parameters
            return set()
        if position == self._position:
            return set()
        page = await source.search(SearchPlan((SEARCH_PARAMETER,), (), limit=MAX_PARAMETERS))
        changed = self._apply([m.version for m in page.matches])
        self._position = position
        self.pending |= changed
        return changed

    def take_pending(self) -> set[str]:
        pending, self.pending = self.pending, set()
        return pending

    def _apply(self, stored: list[StoredVersion]) -> set[str]:
        wanted: dict[str, tuple[int, dict]] = {}
        for version in stored:
            resource = exact_json.loads(version.body)
            if resource.get("status") == ACTIVE:
                wanted[version.id] = (version.version, resource)
        changed: set[str] = set()
        for sp_id, (version, url, bases) in list(self._active.items()):
            if wanted.get(sp_id, (None,))[0] != version:
                del self._active[sp_id]
                self.registry.remove(url)
                changed |= bases
        for sp_id, (version, resource) in wanted.items():
            if sp_id not in self._active:
                changed |= self._register(sp_id, version, resource)
        return changed

    def _register(self, sp_id: str, version: int, resource: dict) -> set[str]:
        url = _url(resource)
        try:
            self.registry.add({**resource, "url": url})
        except ValueError as exc:  # stored before this server version checked, or its parts went away
            log.warning("SearchParameter/%s is not active: %s", sp_id, exc)
            return set()
        self._active[sp_id] = (version, url, _bases(resource))
        return _bases(resource)

    def active_urls(self) -> list[str]:
        return sorted(url for _, url, _ in self._active.values())


def reindex_types(bases: set[str], all_types: frozenset[str]) -> tuple[str, ...]:
    """The resource types whose index a change of parameters on these bases touches."""
    if bases & ALL_BASES:
        return tuple(sorted(all_types))
    return tuple(sorted(b for b in bases if b in all_types))
