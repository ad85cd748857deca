"""Per request: authenticate the bearer token, build the RequestContext, rate-limit, add security headers,
and audit requests refused before FhirService saw them (401, 429) or failing after (4xx/5xx but 403,
which FhirService audits itself)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ...resources.audit import AuditEntry, outcome_for
from ...resources.context import RequestContext
from ...resources.errors import Issue, operation_outcome
from ..responses import FhirResponse

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metadata", "/.well-known/smart-configuration", "/auth/token", "/auth/jwks"}
    # SMART App Launch: pages for the browser, and endpoints that authenticate their callers themselves
    | {"/.well-known/openid-configuration", "/auth/authorize", "/auth/login", "/auth/picker"}
    | {"/auth/consent", "/auth/static/auth.css", "/auth/introspect", "/auth/revoke"}
)
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"  # open when the metrics_auth setting is off
REALM = "nphies-facade"
AUDITED_METHODS = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}

CallNext = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Unauthenticated(Exception):
    """No usable bearer token; `error` is the RFC 6750 code (None when no credentials were sent)."""

    error: str | None
    description: str

    def response(self) -> Response:
        challenge = f'Bearer realm="{REALM}"'
        if self.error:
            safe = self.description.replace("\\", "").replace('"', "'")
            challenge += f', error="{self.error}", error_description="{safe}"'
        code = "login" if self.error is None else "security"
        outcome = operation_outcome([Issue(code, self.description)])
        return FhirResponse(outcome, 401, {"WWW-Authenticate": challenge})


def off_context(trace_id: str) -> RequestContext:
    """With NPHIES_FACADE_AUTH=off every caller acts with full access, the audit trail included."""
    return RequestContext(
        actor="anonymous (auth off)",
        scopes=("system/*.*", "system/AuditEvent.rs"),
        trace_id=trace_id,
        roles=("admin",),
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated(None, "This server needs a bearer access token (SMART on FHIR)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("invalid_request", "Send the access token as 'Authorization: Bearer <token>'")
    return token.strip()


def rate_key(request: Request, ctx: RequestContext) -> str:
    if ctx.client_id:
        return f"client:{ctx.client_id}"
    return f"ip:{request.client.host if request.client else 'unknown'}"


def too_many_requests(retry_after: float) -> Response:
    seconds = max(1, int(retry_after + 0.999))
    issue = Issue("throttled", f"Too many requests from this client; retry after {seconds} s")
    return FhirResponse(operation_outcome([issue]), 429, {"Retry-After": str(seconds)})


def entity_of(path: str) -> str | None:
    """'Patient/1' from '/Patient/1/_history/2'; ids are not PHI, query strings (never read here) may be."""
    parts = [p for p in path.split("/") if p]
    if not parts or not parts[0][:1].isupper():
        return None
    return "/".join(parts[:2])


def http_failure_entry(request: Request, status: int) -> AuditEntry:
    return AuditEntry(
        AUDITED_METHODS.get(request.method, "E"),
        "http",
        outcome_for(status),
        entity_of(request.url.path),
        detail={"method": request.method, "status": status},
    )
