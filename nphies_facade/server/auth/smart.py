"""SMART on FHIR discovery: `/.well-known/smart-configuration` and the CapabilityStatement security part."""

from .runtime import OFF_WARNING, SecurityRuntime
from .token_endpoint import ASSERTION_ALGORITHMS

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
SCOPES_SUPPORTED = [
    "system/*.rs",
    "system/*.cruds",
    "system/*.read",
    "system/*.write",
    "user/*.rs",
    "user/*.cruds",
    "patient/*.rs",
    "patient/*.cruds",
    "system/AuditEvent.rs",
]
CAPABILITIES = [
    "client-confidential-asymmetric",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
]


def smart_configuration(security: SecurityRuntime) -> dict:
    settings = security.settings
    document = {
        "issuer": settings.auth_issuer or security.issuer_url,
        "jwks_uri": security.jwks_url,
        "token_endpoint": security.token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["token"],
        "capabilities": CAPABILITIES,
    }
    if settings.auth_authorize_url:
        document["authorization_endpoint"] = settings.auth_authorize_url
        document["grant_types_supported"] = ["authorization_code", "client_credentials"]
        document["response_types_supported"] = ["code"]
        document["code_challenge_methods_supported"] = ["S256"]
    return document


def capability_security(security: SecurityRuntime) -> dict:
    cors = bool(security.settings.cors_origins.strip())
    if not security.enabled:
        return {"cors": cors, "description": OFF_WARNING}
    uris = [{"url": "token", "valueUri": security.token_url}]
    if security.settings.auth_authorize_url:
        uris.append({"url": "authorize", "valueUri": security.settings.auth_authorize_url})
    return {
        "extension": [{"url": OAUTH_URIS, "extension": uris}],
        "cors": cors,
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "description": "Bearer access tokens (SMART on FHIR, Backend Services) are required; "
        "scopes and attribute rules are enforced on every interaction.",
    }
