"""Access-token verification: a signed JWT from a trusted issuer, for this server, valid now.

The header's `alg` must be on the allow-list (asymmetric only, so `none` and HS256-with-the-public-key
never verify) and match the key it names; the key comes from the issuer's key source (the server's own key
or a JWKS cache); `iss`, `aud`, `exp` and `nbf` are checked against the injectable clock with a leeway.
"""

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from ...resources.clock import Clock, system_clock
from .jwks import JwksUnavailable, UnknownKey

KEY_TYPE_BY_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
CURVE_BY_ALGORITHM = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class InvalidToken(Exception):
    """The token is not acceptable; the message is safe to show the client (RFC 6750 error_description).
    `logged` is why, for the server's log, without anything the token holds (the message when None)."""

    def __init__(self, message: str, logged: str | None = None) -> None:
        super().__init__(message)
        self.logged = logged or message


def untrusted_issuer(issuer: object, trusted: Iterable[str]) -> InvalidToken:
    """Names the issuer the token has and those this server trusts (URLs, no secrets)."""
    shown = repr(issuer[:200]) if isinstance(issuer, str) else "(none)"
    return InvalidToken(
        f"the token's issuer {shown} is not trusted (iss); this server trusts {', '.join(trusted)}",
        logged="the token's issuer is not trusted (iss)",
    )


class KeySource(Protocol):
    async def key(self, kid: str | None) -> jwt.PyJWK: ...


def check_key_fits(key: jwt.PyJWK, algorithm: str) -> None:
    """The key's type (and curve) must be the one the algorithm signs with, and its own `alg` if it says."""
    if key.key_type != KEY_TYPE_BY_PREFIX.get(algorithm[:2]):
        raise InvalidToken(f"the key is not a key for {algorithm}")
    declared = getattr(key, "_jwk_data", {}).get("alg")
    if declared is not None and declared != algorithm:
        raise InvalidToken(f"the key is published for {declared}, not {algorithm}")
    curve = CURVE_BY_ALGORITHM.get(algorithm)
    if curve is not None and (
        not isinstance(key.key, ec.EllipticCurvePublicKey) or key.key.curve.name != curve
    ):
        raise InvalidToken(f"the key's curve does not fit {algorithm}")


def unverified_header(token: str) -> dict:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the token is not a well-formed JWT") from None


def unverified_claims(token: str) -> dict:
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidToken("the token is not a well-formed JWT") from None


def check_times(claims: dict, now: float, leeway: float) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float):
        raise InvalidToken("the token has no expiry (exp)")
    if now >= exp + leeway:
        raise InvalidToken("the token has expired")
    if nbf is not None and (not isinstance(nbf, int | float) or now + leeway < nbf):
        raise InvalidToken("the token is not valid yet (nbf)")


async def verify_signed(
    token: str,
    keys: KeySource,
    algorithms: Iterable[str],
    *,
    audience: str | list[str],
    issuer: str,
    now: float,
    leeway: float,
) -> dict:
    """Signature, alg, iss and aud checked with PyJWT; exp/nbf against `now` (the injectable clock)."""
    algorithm = unverified_header(token).get("alg")
    if algorithm not in set(algorithms):
        raise InvalidToken(f"the signature algorithm {algorithm!r} is not accepted")
    try:
        key = await keys.key(unverified_header(token).get("kid"))
    except UnknownKey:
        raise InvalidToken("the token is signed with a key the issuer does not publish") from None
    except JwksUnavailable:
        raise InvalidToken("the issuer's keys cannot be fetched to verify the token") from None
    check_key_fits(key, algorithm)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={
                "require": ["exp", "iss", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError:
        expected = audience if isinstance(audience, str) else ", ".join(audience)
        raise InvalidToken(
            f"the token is not for this server (aud); its audience is {expected}",
            logged="the token is not for this server (aud)",
        ) from None
    except jwt.InvalidIssuerError:
        raise untrusted_issuer(unverified_claims(token).get("iss"), [issuer]) from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("the token's signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the token is not acceptable ({type(exc).__name__})") from None
    check_times(claims, now, leeway)
    return claims


VERIFIED_CACHE_SIZE = 10_000

# Asked on every request after the signature and times (cached or not): raises InvalidToken when the
# token's client may no longer act (disabled, removed or replaced registration).
ClientCheck = Callable[[dict], Awaitable[None]]


class TokenVerifier:
    """Access tokens from any trusted issuer (the built-in one and/or an external one)."""

    def __init__(
        self,
        issuers: dict[str, KeySource],
        audience: str | list[str],
        algorithms: Iterable[str],
        leeway: float = 30.0,
        clock: Clock = system_clock,
        client_check: ClientCheck | None = None,
    ) -> None:
        self.issuers = issuers
        self.client_check = client_check
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self.clock = clock
        self._verified: dict[str, dict] = {}

    async def verify(self, token: str) -> dict:
        """The token's claims; a token verified before is answered from memory until it expires (its
        client's status is asked each time)."""
        now = self.clock().timestamp()
        claims = self._verified.get(token)
        if claims is not None:
            check_times(claims, now, self.leeway)
        else:
            claims = await self._verify_signature(token, now)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        if self.client_check is not None:
            await self.client_check(claims)
        return claims

    async def _verify_signature(self, token: str, now: float) -> dict:
        issuer = unverified_claims(token).get("iss")
        keys = self.issuers.get(issuer) if isinstance(issuer, str) else None
        if keys is None:
            raise untrusted_issuer(issuer, self.issuers)
        return await verify_signed(
            token,
            keys,
            self.algorithms,
            audience=self.audience,
            issuer=issuer,
            now=now,
            leeway=self.leeway,
        )
