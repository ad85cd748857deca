"""From verified token claims to the RequestContext FhirService acts under.

`sub` is the actor; `client_id` (or `azp`) the client; `scope` the SMART scopes; `patient` and `fhirUser`
the SMART context; `role`/`roles` (or Keycloak's `realm_access.roles`), `region` and `organization`
the attributes the ABAC policy reads.
"""

from ...resources.context import RequestContext
from ...resources.references import relative
from .scopes import split_scope_string


def _reference(value: object, resource_type: str) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    value = relative(value)
    return value if "/" in value else f"{resource_type}/{value}"


def _roles(claims: dict) -> tuple[str, ...]:
    roles: list[str] = []
    for name in ("role", "roles"):
        value = claims.get(name)
        if isinstance(value, str):
            roles.extend(value.split())
        elif isinstance(value, list):
            roles.extend(v for v in value if isinstance(v, str))
    realm = claims.get("realm_access")
    if isinstance(realm, dict) and isinstance(realm.get("roles"), list):
        roles.extend(v for v in realm["roles"] if isinstance(v, str))
    return tuple(dict.fromkeys(roles))


def context_from_claims(claims: dict, trace_id: str) -> RequestContext:
    client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub")
    fhir_user = claims.get("fhirUser")
    return RequestContext(
        actor=str(claims.get("sub") or client_id or "unknown"),
        scopes=split_scope_string(claims.get("scope", claims.get("scp"))),
        trace_id=trace_id,
        client_id=str(client_id) if client_id else None,
        patient=_reference(claims.get("patient"), "Patient"),
        fhir_user=relative(fhir_user) if isinstance(fhir_user, str) and fhir_user else None,
        roles=_roles(claims),
        region=claims.get("region") if isinstance(claims.get("region"), str) else None,
        organization=_reference(claims.get("organization"), "Organization"),
    )
