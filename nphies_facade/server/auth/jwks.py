"""JWKS fetched with httpx and cached: keys by `kid`, refreshed when stale, refetched once (rate limited)
when a token names a kid the cache does not know, which is how an issuer's key rotation reaches us."""

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
import jwt

log = logging.getLogger("nphies_facade.auth")

ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC"})
MAX_JWKS_BYTES = 512 * 1024


class UnknownKey(Exception):
    """No key with the token's kid is published (after the one refetch allowed)."""


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or parsed and no earlier copy is cached."""


def parse_jwks(document: object) -> dict[str | None, jwt.PyJWK]:
    """Usable signature keys by kid; symmetric (`oct`) and encryption keys are never taken."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("a JWKS is an object with a `keys` array")
    keys: dict[str | None, jwt.PyJWK] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ASYMMETRIC_KEY_TYPES:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            keys[jwk.get("kid")] = jwt.PyJWK(jwk)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    return keys


class StaticKeys:
    """A JWKS given inline (a client registered with `--jwks FILE`)."""

    def __init__(self, document: object) -> None:
        self._keys = parse_jwks(document)

    async def key(self, kid: str | None) -> jwt.PyJWK:
        return pick(self._keys, kid)


def pick(keys: dict[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK:
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    if kid in keys:
        return keys[kid]
    raise UnknownKey(f"no published key has kid {kid!r}")


class JwksCache:
    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        ttl: float = 300.0,
        min_refetch_interval: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._ttl = ttl
        self._min_refetch = min_refetch_interval
        self._monotonic = monotonic
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _due(self, now: float) -> bool:
        if now - self._attempted_at < self._min_refetch:
            return False
        return self._fetched_at is None or now - self._fetched_at >= self._ttl

    async def key(self, kid: str | None) -> jwt.PyJWK:
        async with self._lock:
            now = self._monotonic()
            if self._due(now):
                await self._refresh(now)
            try:
                return pick(self._keys, kid)
            except UnknownKey:
                if now - self._attempted_at < self._min_refetch:
                    raise
            await self._refresh(now)
            return pick(self._keys, kid)

    async def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            self._keys = parse_jwks(await self._fetch())
        except (httpx.HTTPError, ValueError, JwksUnavailable) as exc:
            if not self._keys:
                raise JwksUnavailable(f"cannot fetch the JWKS at {self.url}: {type(exc).__name__}") from None
            log.warning(
                "JWKS refresh from %s failed (%s); keeping the cached keys", self.url, type(exc).__name__
            )
            return
        self._fetched_at = now

    async def _fetch(self) -> object:
        self.fetches += 1
        response = await self._http.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksUnavailable("the JWKS is too large")
        return response.json()
