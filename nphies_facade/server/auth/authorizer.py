"""The Authorizer FhirService consults on every interaction: SMART scopes first, then the ABAC policy.

A scope grants an interaction when it names the type (or `*`) with the permission letter the interaction
needs; a `patient/` scope only inside the compartment of the token's patient, a scope with `?param=value`
only for resources that match it. The policy then applies its attribute rules. AuditEvent is reachable
with a scope naming it or the `auditor` role, and never writable: the server alone writes the trail.
"""

from functools import lru_cache

from ...resources.access import PERMISSION, UNRESTRICTED, AccessControl, Interaction, Visibility, forbidden
from ...resources.compartment import PatientCompartment, resources_referring
from ...resources.context import RequestContext
from ...resources.references import relative
from ...resources.search.converters import normalize_string
from ...resources.search.extraction import Extractor
from ...resources.search.values import ReferenceValue, StringValue, TokenValue, UriValue
from ...resources.service import FhirService
from ...resources.store import StoreTransaction
from .policy import Policy
from .scopes import Scope, ScopeError, parse_scope

AUDITOR_ROLE = "auditor"
ADMIN_ROLE = "admin"
AUDIT_TYPE = "AuditEvent"
READ_LETTERS = frozenset("rs")
ALL_LETTERS = frozenset("cruds")


@lru_cache(maxsize=1024)
def _parsed(scopes: tuple[str, ...]) -> tuple[Scope, ...]:
    parsed = []
    for text in scopes:
        try:
            scope = parse_scope(text)
        except ScopeError:
            continue  # a malformed scope grants nothing
        if scope is not None:
            parsed.append(scope)
    return tuple(parsed)


@lru_cache(maxsize=4096)
def _granted(scopes: tuple[str, ...], letter: str, resource_type: str | None) -> tuple[Scope, ...]:
    """The scopes that grant permission `letter` on the type (asked several times a request)."""
    return tuple(s for s in _parsed(scopes) if s.grants(letter, resource_type))


class StorePolicyData:
    """What policy rules look up: committed resources, found through the service's search index (the
    service is bound once it exists, since it is built with this authorizer)."""

    def __init__(self, compartment: PatientCompartment) -> None:
        self.compartment = compartment
        self.service: FhirService | None = None

    def bind(self, service: FhirService) -> None:
        self.service = service

    def patients(self, resource: dict) -> set[str]:
        return self.compartment.patients(resource)

    async def referring(self, resource_type: str, codes: list[str], reference: str) -> list[dict]:
        if self.service is None:
            raise RuntimeError("the policy data is not bound to a FhirService")
        return await resources_referring(self.service, resource_type, codes, reference)


class Authorizer(AccessControl):
    def __init__(
        self, policy: Policy, compartment: PatientCompartment, extractor: Extractor, data: StorePolicyData
    ) -> None:
        self.policy = policy
        self.compartment = compartment
        self.extractor = extractor
        self.data = data

    def _granting(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> tuple[Scope, ...]:
        return _granted(ctx.scopes, PERMISSION[interaction], resource_type)

    def _auditor_reads(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> bool:
        return (
            resource_type == AUDIT_TYPE
            and AUDITOR_ROLE in ctx.roles
            and PERMISSION[interaction] in READ_LETTERS
        )

    async def check_type(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> None:
        if resource_type == AUDIT_TYPE and PERMISSION[interaction] not in READ_LETTERS:
            raise forbidden("The audit trail is written by the server only", "audit-append-only")
        if not self._granting(ctx, interaction, resource_type) and not self._auditor_reads(
            ctx, interaction, resource_type
        ):
            what = resource_type or "the whole server"
            raise forbidden(f"The token's scopes do not permit {interaction.value} on {what}", "scopes")
        decision = await self.policy.decide_type(ctx, interaction, resource_type)
        if not decision.allowed:
            raise forbidden(f"Access denied: {decision.reason}", decision.rule)

    async def check_admin(self, ctx: RequestContext) -> None:
        """Administration needs the `admin` role and an unrestricted `system/*.*` (all of cruds) scope."""
        full = any(
            s.context == "system"
            and s.resource_type == "*"
            and s.permissions == ALL_LETTERS
            and not s.restrictions
            for s in _parsed(ctx.scopes)
        )
        if ADMIN_ROLE not in ctx.roles or not full:
            raise forbidden("Administration needs the admin role and the system/*.* scope", "administration")

    async def check(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource: dict | None,
        tx: StoreTransaction | None = None,
    ) -> None:
        await self.check_type(ctx, interaction, resource_type)
        if not self._auditor_reads(ctx, interaction, resource_type):
            self._check_scope_conditions(ctx, interaction, resource_type, resource)
        decision = await self.policy.decide(ctx, interaction, resource_type, resource, self.data)
        if not decision.allowed:
            raise forbidden(f"Access denied: {decision.reason}", decision.rule)

    def _check_scope_conditions(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str, resource: dict | None
    ) -> None:
        reasons = []
        for scope in self._granting(ctx, interaction, resource_type):
            reason = self._unmet(scope, ctx, resource_type, resource)
            if reason is None:
                return
            reasons.append(reason)
        message, rule = reasons[0]
        raise forbidden(message, rule)

    def _unmet(
        self, scope: Scope, ctx: RequestContext, resource_type: str, resource: dict | None
    ) -> tuple[str, str] | None:
        if scope.context == "patient" and not self._in_patient_context(ctx, resource_type, resource):
            return ("The resource is outside the compartment of the token's patient", "patient-compartment")
        if scope.restrictions and (resource is None or not self._matches(resource, scope.restrictions)):
            return (
                f"The resource does not match the restriction of the scope {scope.text}",
                "scope-restriction",
            )
        return None

    def _in_patient_context(self, ctx: RequestContext, resource_type: str, resource: dict | None) -> bool:
        if ctx.patient is None:
            return False
        if resource_type != "Patient" and not self.compartment.has_compartment(resource_type):
            return True  # shared resources (Organization, Practitioner, Medication ...) have no patient
        return resource is not None and self.compartment.contains(resource, ctx.patient)

    def _matches(self, resource: dict, restrictions: tuple[tuple[str, str], ...]) -> bool:
        values = self.extractor.extract(resource)
        return all(
            any(_value_matches(v, wanted) for v in values.get(name, ()) for wanted in expected.split(","))
            for name, expected in restrictions
        )

    def needs_resource(self, ctx: RequestContext, interaction: Interaction, resource_type: str) -> bool:
        scopes = self._granting(ctx, interaction, resource_type)
        unconditional = any(not s.conditional for s in scopes) or self._auditor_reads(
            ctx, interaction, resource_type
        )
        return not unconditional or self.policy.needs_resource(ctx, interaction, resource_type)

    def visibility(self, ctx: RequestContext, resource_type: str | None) -> Visibility:
        exact = not self.policy.needs_resource(ctx, Interaction.SEARCH, resource_type)
        scopes = self._granting(ctx, Interaction.SEARCH, resource_type)
        if self._auditor_reads(ctx, Interaction.SEARCH, resource_type) or any(
            not s.conditional for s in scopes
        ):
            return UNRESTRICTED if exact else Visibility(exact=False)
        shapes = set()
        for scope in scopes:
            patient = None
            if scope.context == "patient":
                if ctx.patient is None:
                    continue  # a patient scope without a patient admits nothing
                if resource_type is None or self._in_compartment_type(resource_type):
                    patient = ctx.patient
            shapes.add((patient, scope.restrictions))
        if not shapes:
            return Visibility(exact=False, nothing=True)
        if len(shapes) > 1:
            return Visibility(exact=False)
        patient, restrictions = shapes.pop()
        return Visibility(patient, restrictions, exact)

    def _in_compartment_type(self, resource_type: str) -> bool:
        return resource_type == "Patient" or self.compartment.has_compartment(resource_type)

    def compartment_patient(self, ctx: RequestContext, resource_type: str) -> str | None:
        scopes = self._granting(ctx, Interaction.SEARCH, resource_type)
        if scopes and all(s.context == "patient" and not s.restrictions for s in scopes):
            if resource_type == "Patient" or self.compartment.has_compartment(resource_type):
                return ctx.patient
        return None


def _value_matches(value: object, wanted: str) -> bool:
    match value:
        case TokenValue():
            if "|" not in wanted:
                return value.code == wanted
            system, _, code = wanted.rpartition("|")
            return value.code == code and (value.system or "") == system
        case ReferenceValue():
            return relative(wanted) == f"{value.type}/{value.id}" or wanted == value.url
        case StringValue():
            return value.norm == normalize_string(wanted)
        case UriValue():
            return value.uri == wanted
    return False
