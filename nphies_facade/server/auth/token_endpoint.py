"""`POST /auth/token`: SMART Backend Services, the client_credentials grant with a private_key_jwt client
assertion (RS384/ES384, `iss` = `sub` = client id, `aud` = this endpoint's URL, `exp` at most five minutes
ahead, `jti` used once). Granted scopes are those requested that the client's registration covers."""

from urllib.parse import parse_qsl

import httpx

from ...resources.audit import MINOR_FAILURE, SUCCESS, AuditEntry, Auditor
from ...resources.clock import Clock, system_clock
from ...resources.context import RequestContext
from ...resources.security_store import SecurityStore
from .clients import ClientRecord
from .issuer import IssuedToken, TokenIssuer
from .jwks import JwksCache, StaticKeys
from .scopes import narrow, split_scope_string
from .verifier import InvalidToken, KeySource, unverified_claims, verify_signed

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300


class OAuthError(Exception):
    """An RFC 6749 error response: `error` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def parse_form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"the parameter {name} is repeated")
        form[name] = value
    return form


class TokenEndpoint:
    def __init__(
        self,
        security: SecurityStore,
        issuer: TokenIssuer,
        url: str,
        http: httpx.AsyncClient,
        auditor: Auditor,
        clock: Clock = system_clock,
        leeway: float = 30.0,
        jwks_ttl: float = 300.0,
        jwks_refetch: float = 10.0,
    ) -> None:
        self.security = security
        self.issuer = issuer
        self.url = url
        self._http = http
        self.auditor = auditor
        self.clock = clock
        self.leeway = leeway
        self._jwks_ttl = jwks_ttl
        self._jwks_refetch = jwks_refetch
        self._caches: dict[tuple[str, int], JwksCache] = {}

    async def handle(self, form: dict[str, str], trace_id: str) -> dict:
        client_id = None
        try:
            client, scopes = await self._authenticate(form)
            client_id = client.client_id
            token = self.issuer.mint(client, scopes)
        except OAuthError as exc:
            await self._audit(client_id or "unknown", MINOR_FAILURE, trace_id, {"error": exc.error})
            raise
        await self._audit(client.client_id, SUCCESS, trace_id, {"scope": token.scope})
        return token.response()

    async def _authenticate(self, form: dict[str, str]) -> tuple[ClientRecord, list[str]]:
        if form.get("grant_type") != GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", "only the client_credentials grant is supported")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError("invalid_client", "authenticate with a private_key_jwt client assertion", 401)
        assertion = form["client_assertion"]
        client = await self._client(assertion, form.get("client_id"))
        claims = await self._verify(assertion, client)
        await self._claim_jti(client.client_id, claims)
        return client, self._granted(form.get("scope", ""), client)

    async def _client(self, assertion: str, given_id: str | None) -> ClientRecord:
        try:
            claims = unverified_claims(assertion)
        except InvalidToken as exc:
            raise OAuthError("invalid_client", str(exc), 401) from None
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            raise OAuthError("invalid_client", "the assertion's iss and sub must both be the client id", 401)
        if given_id is not None and given_id != client_id:
            raise OAuthError("invalid_client", "client_id does not match the assertion", 401)
        record = await self.security.get_client(client_id)
        if record is None:
            raise OAuthError("invalid_client", "the client is not registered", 401)
        client = ClientRecord.from_json(record)
        if not client.active:
            raise OAuthError("invalid_client", "the client is disabled", 401)
        return client

    def _keys(self, client: ClientRecord) -> KeySource:
        if client.jwks is not None:
            return StaticKeys(client.jwks)
        # A rotation (`clients rotate`) moves keys_version on: the JWKS URL is fetched again.
        key = (client.client_id, client.keys_version)
        cache = self._caches.get(key)
        if cache is None or cache.url != client.jwks_url:
            cache = JwksCache(client.jwks_url or "", self._http, self._jwks_ttl, self._jwks_refetch)
            self._caches = {k: v for k, v in self._caches.items() if k[0] != client.client_id}
            self._caches[key] = cache
        return cache

    async def _verify(self, assertion: str, client: ClientRecord) -> dict:
        now = self.clock().timestamp()
        try:
            claims = await verify_signed(
                assertion,
                self._keys(client),
                ASSERTION_ALGORITHMS,
                audience=self.url,
                issuer=client.client_id,
                now=now,
                leeway=self.leeway,
            )
        except InvalidToken as exc:
            raise OAuthError("invalid_client", f"client assertion refused: {exc}", 401) from None
        if claims["exp"] - now > MAX_ASSERTION_LIFETIME + self.leeway:
            raise OAuthError("invalid_client", "the assertion's exp is more than five minutes ahead", 401)
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise OAuthError("invalid_client", "the assertion has no jti", 401)
        return claims

    async def _claim_jti(self, client_id: str, claims: dict) -> None:
        now = self.clock().timestamp()
        fresh = await self.security.claim_jti(
            f"{client_id}|{claims['jti']}", claims["exp"] + self.leeway, now
        )
        if not fresh:
            raise OAuthError("invalid_client", "the assertion's jti was already used (replay)", 401)

    async def verify_assertion(self, assertion: str, client: ClientRecord) -> None:
        """A private_key_jwt client assertion of `client` (a confidential app's too), its jti used once."""
        claims = await self._verify(assertion, client)
        await self._claim_jti(client.client_id, claims)

    @staticmethod
    def _granted(requested: str, client: ClientRecord) -> list[str]:
        scopes = split_scope_string(requested)
        if not scopes:
            raise OAuthError("invalid_scope", "request the scopes the token should carry")
        granted = narrow(scopes, client.scopes)
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is registered for the client")
        return granted

    async def _audit(self, client_id: str, outcome: str, trace_id: str, detail: dict) -> None:
        ctx = RequestContext(actor=client_id, client_id=client_id, trace_id=trace_id)
        entry = AuditEntry("E", "token", outcome, entity=None, detail=detail)
        if outcome == SUCCESS:
            await self.auditor.record(ctx, entry)
        else:
            await self.auditor.record_failure(ctx, entry)


__all__ = ["IssuedToken", "OAuthError", "TokenEndpoint", "parse_form"]
