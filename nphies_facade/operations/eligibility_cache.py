"""The eligibility cache: which stored CoverageEligibilityResponse answers a question asked recently.

A key names the question: Coverage id and version, purposes and service date. Only complete answers are
cached (an error answer is asked again). Two backends:

- the store (default): the stored responses are the cache; each carries its key as a meta.tag, and a hit
  is the newest response with that tag written within the TTL. Nothing to install, and it survives
  restarts and is shared by every process on the store.
- Redis (when NPHIES_FACADE_REDIS_URL is set): key -> response id with the TTL as expiry; the response
  itself is still read from the store.

In front of either, each process keeps the responses it found or stored lately in memory (LRU, at most
`MEMORY_ENTRIES`, each until its TTL ends), so a hit costs no search. A response edited through the API
after it was cached may be served as it was until then; answers from the payer are not edited in practice.
"""

import hashlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from datetime import datetime, timedelta

from ..resources.clock import Clock, fhir_instant
from ..resources.context import RequestContext
from ..resources.errors import FhirError
from ..resources.searching import SearchOptions
from ..resources.service import FhirService
from ..resources.store import StoredVersion
from .codes import ELIGIBILITY_CACHE_TAG

REDIS_PREFIX = "nphies-facade:eligibility:"
MEMORY_ENTRIES = 10_000


def cache_key(coverage_id: str, coverage_version: int, purposes: tuple[str, ...], serviced: str) -> str:
    question = f"{coverage_id}|{coverage_version}|{','.join(sorted(purposes))}|{serviced}"
    return hashlib.sha256(question.encode()).hexdigest()[:32]


def cache_tag(key: str) -> dict:
    return {"system": ELIGIBILITY_CACHE_TAG, "code": key}


class EligibilityCache(ABC):
    def __init__(self, service: FhirService, ttl: float, clock: Clock) -> None:
        self.service = service
        self.ttl = ttl
        self.clock = clock
        self._memory: OrderedDict[str, tuple[float, StoredVersion]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    async def get(self, key: str, ctx: RequestContext) -> StoredVersion | None:
        """The cached response for `key`, if one was stored within the TTL."""
        now = self.clock().timestamp()
        remembered = self._memory.get(key)
        if remembered is not None:
            if remembered[0] > now:
                self._memory.move_to_end(key)
                return remembered[1]
            del self._memory[key]
        found = await self._find(key, ctx)
        if found is not None:
            written = datetime.fromisoformat(found.last_updated).timestamp()
            self._remember(key, found, written + self.ttl)
        return found

    async def put(self, key: str, response: StoredVersion) -> None:
        """Remembers a response just stored with the key's tag."""
        self._remember(key, response, self.clock().timestamp() + self.ttl)
        await self._keep(key, response.id)

    def _remember(self, key: str, response: StoredVersion, until: float) -> None:
        self._memory[key] = (until, response)
        self._memory.move_to_end(key)
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    @abstractmethod
    async def _find(self, key: str, ctx: RequestContext) -> StoredVersion | None: ...

    @abstractmethod
    async def _keep(self, key: str, response_id: str) -> None: ...

    async def close(self) -> None:
        return None


class StoreEligibilityCache(EligibilityCache):
    async def _find(self, key: str, ctx: RequestContext) -> StoredVersion | None:
        since = fhir_instant(self.clock() - timedelta(seconds=self.ttl))
        params = [
            ("_tag", f"{ELIGIBILITY_CACHE_TAG}|{key}"),
            ("_lastUpdated", f"gt{since}"),
            ("_sort", "-_lastUpdated"),
            ("_count", "1"),
        ]
        result = await self.service.search(
            ("CoverageEligibilityResponse",), params, SearchOptions(strict=True), ctx=ctx
        )
        return result.matches[0] if result.matches else None

    async def _keep(self, key: str, response_id: str) -> None:
        return None  # the response's tag is the entry


class RedisEligibilityCache(EligibilityCache):
    def __init__(self, service: FhirService, ttl: float, clock: Clock, redis_url: str) -> None:
        super().__init__(service, ttl, clock)
        from redis.asyncio import Redis  # needed with Redis only
        from redis.exceptions import RedisError

        self._redis = Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)

    async def _find(self, key: str, ctx: RequestContext) -> StoredVersion | None:
        try:
            found = await self._redis.get(REDIS_PREFIX + key)
        except self._errors as exc:
            raise CacheUnavailable(type(exc).__name__) from None
        if found is None:
            return None
        try:
            return await self.service.read("CoverageEligibilityResponse", found.decode(), ctx=ctx)
        except FhirError as exc:
            if exc.status in (404, 410):
                return None
            raise

    async def _keep(self, key: str, response_id: str) -> None:
        try:
            await self._redis.set(REDIS_PREFIX + key, response_id, px=max(1, int(self.ttl * 1000)))
        except self._errors:
            return None  # the answer is stored; only its reuse is lost

    async def close(self) -> None:
        await self._redis.aclose()


class CacheUnavailable(Exception):
    """The cache could not be asked; the question goes to NPHIES."""
