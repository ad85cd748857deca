"""SecurityRuntime: what the server builds at start-up for authentication, authorisation, audit, consent
and retention, and the per-request step the HTTP middleware runs (`handle`)."""

import asyncio
import contextlib
import logging
import secrets

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Send

from ...resources import consent
from ...resources.audit import Auditor
from ...resources.clock import Clock, system_clock
from ...resources.compartment import PatientCompartment
from ...resources.context import RequestContext, current_context
from ...resources.retention import RetentionRule, load_rules, run_periodically
from ...resources.search.extraction import Extractor
from ...resources.service import FhirService
from ...resources.store import Store
from ..settings import Settings
from .accounts import Accounts
from .authorize import AuthorizationFlow
from .authorizer import Authorizer, StorePolicyData
from .claims import context_from_claims
from .clients import ClientGate, ClientRefused
from .grants import Grants, Lifetimes
from .hardening import PAGES, PUBLIC_DOCUMENTS, RateLimiter, quiet_data_loggers, security_headers
from .issuer import TokenIssuer
from .jwks import JwksCache
from .keys import ServerKey
from .middleware import (
    METRICS_PATH,
    OPEN_PATHS,
    UNLIMITED_PATHS,
    Unauthenticated,
    bearer_token,
    http_failure_entry,
    off_context,
    rate_key,
    too_many_requests,
)
from .policy import Policy
from .secret_files import read_or_create
from .token_endpoint import TokenEndpoint
from .user_tokens import UserTokens
from .verifier import InvalidToken, KeySource, TokenVerifier

log = logging.getLogger("nphies_facade.auth")

AUDIT_KEY_FILE = "audit-hmac.key"
# The authorization server's endpoints audit their own refusals.
# (/auth/launch is not among them: a request refused there before its route ran, a 401, is audited here.)
SELF_AUDITED_PATHS = frozenset(
    {"/auth/token", "/auth/authorize", "/auth/login", "/auth/picker", "/auth/consent"}
    | {"/auth/introspect", "/auth/revoke"}
)
# 403s are audited by FhirService; 429s are not, so a flood cannot turn into audit writes.
UNAUDITED_STATUSES = frozenset({403, 429})
OFF_WARNING = (
    "AUTHENTICATION IS OFF (NPHIES_FACADE_AUTH=off): every caller acts with full access. "
    "Use this for local experiments only."
)


class ConfigurationError(ValueError):
    """Security settings that cannot work together; the server does not start."""


def audit_key(settings: Settings) -> bytes:
    """The HMAC key for patient/provider identifiers: from the setting, its file, or generated once."""
    if settings.audit_hmac_key is not None:
        return settings.audit_hmac_key.get_secret_value().encode()
    if settings.audit_hmac_key_file is not None:
        return settings.audit_hmac_key_file.read_bytes().strip()
    return read_or_create(settings.secrets_dir / AUDIT_KEY_FILE, lambda: secrets.token_hex(32).encode())


def launch_lifetimes(settings: Settings) -> Lifetimes:
    return Lifetimes(
        request=settings.auth_login_request_lifetime,
        code=settings.auth_code_lifetime,
        launch=settings.auth_launch_lifetime,
        online_refresh=settings.auth_online_refresh_lifetime,
        offline_refresh=settings.auth_offline_refresh_lifetime,
    )


class SecurityRuntime:
    def __init__(self, settings: Settings, store: Store, extractor: Extractor, clock: Clock = system_clock):
        quiet_data_loggers()
        self.settings = settings
        self.enabled = settings.auth_enabled
        self.clock = clock
        base = settings.public_base_url
        self.issuer_url = f"{base}/auth"
        self.token_url = settings.auth_token_url or f"{base}/auth/token"
        self.jwks_url = f"{base}/auth/jwks"
        self.audience = settings.auth_audience or base
        self.http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self.compartment = PatientCompartment(extractor)
        self.auditor = Auditor(store, audit_key(settings), clock, self.compartment)
        self.policy = Policy.load(settings.abac_policy_file)
        self.policy_data = StorePolicyData(self.compartment)
        self.authorizer = Authorizer(self.policy, self.compartment, extractor, self.policy_data)
        self.key = ServerKey.load_or_create(settings.secrets_dir)
        self.issuer = TokenIssuer(
            self.key, self.issuer_url, self.audience, settings.auth_token_lifetime, clock
        )
        self.client_gate = ClientGate(self.issuer_url, store.security().client_state)
        self.verifier = TokenVerifier(
            self._issuers(),
            self.audience,
            settings.auth_algorithms.split(","),
            settings.auth_leeway,
            clock,
            self._check_client,
        )
        self.token_endpoint = TokenEndpoint(
            store.security(),
            self.issuer,
            f"{base}/auth/token",
            self.http,
            self.auditor,
            clock,
            settings.auth_leeway,
            settings.auth_jwks_cache_seconds,
            settings.auth_jwks_refetch_interval,
        )
        self.accounts = Accounts(
            store.security(), settings.auth_login_max_failures, settings.auth_login_lockout_seconds, clock
        )
        self.grants = Grants(store.security(), launch_lifetimes(settings), clock)
        self.user_tokens = UserTokens(
            store.security(),
            self.accounts,
            self.grants,
            self.issuer,
            self.verifier,
            self.token_endpoint,
            self.auditor,
            base,
        )
        self.authorization = AuthorizationFlow(
            store.security(),
            self.accounts,
            self.grants,
            self.auditor,
            (base, self.audience),
            base.startswith("https"),
        )
        self.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_limit_burst)
        self._header_cache: dict[tuple[bool, bool], tuple[list[tuple[bytes, bytes]], frozenset[bytes]]] = {}
        self.retention_rules: list[RetentionRule] = load_rules(settings.retention, settings.retention_file)
        self._retention_task: asyncio.Task | None = None

    async def _check_client(self, claims: dict) -> None:
        try:
            await self.client_gate.check(claims)
        except ClientRefused as exc:
            raise InvalidToken(str(exc)) from None

    def _issuers(self) -> dict[str, KeySource]:
        issuers: dict[str, KeySource] = {self.issuer_url: self.key}
        if self.settings.auth_issuer:
            if not self.settings.auth_jwks_url:
                raise ConfigurationError("NPHIES_FACADE_AUTH_ISSUER needs NPHIES_FACADE_AUTH_JWKS_URL")
            issuers[self.settings.auth_issuer] = JwksCache(
                self.settings.auth_jwks_url,
                self.http,
                self.settings.auth_jwks_cache_seconds,
                self.settings.auth_jwks_refetch_interval,
            )
        return issuers

    def start(self, service: FhirService) -> None:
        """Binds the policy to the service, installs consent revocation, starts the retention task."""
        self.policy_data.bind(service)
        self.authorization.bind(service)
        consent.watch(service)
        if not self.enabled:
            log.warning(OFF_WARNING)
        if self.retention_rules and self.settings.retention_interval > 0:
            self._retention_task = asyncio.create_task(
                run_periodically(service, self.retention_rules, self.settings.retention_interval)
            )

    async def stop(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        await self.http.aclose()

    # ----- per request -----

    async def authenticate(self, request: Request, trace_id: str) -> RequestContext:
        if not self.enabled:
            return off_context(trace_id)
        path = request.scope["path"]  # what request.url.path gives for these paths, without building a URL
        if path in OPEN_PATHS or request.method == "OPTIONS" or self._open_metrics(path):
            return RequestContext(actor="anonymous", trace_id=trace_id)
        return context_from_claims(await self.verified_claims(bearer_token(request)), trace_id)

    async def verified_claims(self, token: str) -> dict:
        """The claims of a valid token; a person's token (it names its grant) only while the grant lives."""
        try:
            claims = await self.verifier.verify(token)
        except InvalidToken as exc:
            log.warning("token refused: %s", exc.logged)
            raise Unauthenticated("invalid_token", str(exc)) from None
        if "grant" in claims and claims.get("iss") == self.issuer_url:
            if await self.grants.live_grant(claims["grant"]) is None:
                log.warning("token refused: the token was revoked")
                raise Unauthenticated("invalid_token", "the token was revoked")
        return claims

    def _open_metrics(self, path: str) -> bool:
        return path == METRICS_PATH and not self.settings.metrics_auth

    async def authenticate_token(self, token: str | None, trace_id: str) -> RequestContext:
        """The caller of a bearer token, for channels outside HTTP requests (the websocket)."""
        if not self.enabled:
            return off_context(trace_id)
        if not token:
            raise Unauthenticated(None, "This server needs a bearer access token (SMART on FHIR)")
        return context_from_claims(await self.verified_claims(token), trace_id)

    async def handle(
        self, request: Request, app: ASGIApp, receive: Receive, send: Send, trace_id: str
    ) -> None:
        """Authenticates, rate-limits and runs `app` as the caller; adds security headers to the answer."""
        try:
            ctx = await self.authenticate(request, trace_id)
        except Unauthenticated as refused:
            ctx = RequestContext(actor="anonymous", trace_id=trace_id)
            if refused.error == "invalid_request":  # a token refused by verified_claims is logged there
                log.warning("token refused: %s", refused.description)
            refusal = self._limited(request, ctx) or refused.response()
        else:
            refusal = self._limited(request, ctx)
        extra, replaced = self._security_headers(request.scope["path"])
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in replaced]
                message["headers"] = [*kept, *extra]
            await send(message)

        if refusal is not None:
            await refusal(request.scope, receive, send_with_headers)
        else:
            await self._dispatch(request, app, receive, send_with_headers, ctx)
        if status >= 400 and status not in UNAUDITED_STATUSES and request.url.path not in SELF_AUDITED_PATHS:
            await self.auditor.record_failure(ctx, http_failure_entry(request, status))

    def _security_headers(self, path: str) -> tuple[list[tuple[bytes, bytes]], frozenset[bytes]]:
        """(headers, their names) for a response to `path`, encoded once per kind of path."""
        key = (path in PUBLIC_DOCUMENTS, path in PAGES)
        cached = self._header_cache.get(key)
        if cached is None:
            https = self.settings.public_base_url.startswith("https")
            extra = [(k.lower().encode(), v.encode()) for k, v in security_headers(path, https).items()]
            cached = self._header_cache[key] = (extra, frozenset(name for name, _ in extra))
        return cached

    def _limited(self, request: Request, ctx: RequestContext) -> Response | None:
        """A 429 when the client (or, before authentication, the address) is over its rate."""
        if not self.rate_limiter.enabled or request.scope["path"] in UNLIMITED_PATHS:
            return None
        retry_after = self.rate_limiter.take(rate_key(request, ctx))
        return too_many_requests(retry_after) if retry_after is not None else None

    async def _dispatch(
        self, request: Request, app: ASGIApp, receive: Receive, send: Send, ctx: RequestContext
    ) -> None:
        request.state.context = ctx
        token = current_context.set(ctx)
        try:
            await app(request.scope, receive, send)
        finally:
            current_context.reset(token)
