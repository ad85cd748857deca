"""The request context every FhirService call carries: who acts, with which scopes, under which trace id.

The optional attributes come from the access token (SMART launch context and ABAC claims): `client_id`,
`patient` (the SMART patient context, "Patient/123"), `fhir_user` ("Practitioner/9"), `roles`, `region`
and `organization` ("Organization/7").
"""

from contextvars import ContextVar
from dataclasses import dataclass, field

from .randomness import random_hex


def new_trace_id() -> str:
    return random_hex(16)


@dataclass(frozen=True, slots=True)
class RequestContext:
    actor: str = "anonymous"
    scopes: tuple[str, ...] = ()
    trace_id: str = field(default_factory=new_trace_id)
    client_id: str | None = None
    patient: str | None = None
    fhir_user: str | None = None
    roles: tuple[str, ...] = ()
    region: str | None = None
    organization: str | None = None

    @classmethod
    def system(cls, actor: str = "system") -> "RequestContext":
        return cls(actor=actor, scopes=("system/*.*",))


# The HTTP middleware sets this for each request, so a FhirService read called without an explicit
# context (a route or a bundle entry) still acts for the caller; code outside a request acts as system.
current_context: ContextVar[RequestContext | None] = ContextVar("nphies_facade_context", default=None)


def context_or_current(ctx: RequestContext | None) -> RequestContext:
    return ctx or current_context.get() or RequestContext.system()
