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
# What the built-in authorization server adds for people (SMART App Launch 2.x).
LAUNCH_CAPABILITIES = [
    "launch-standalone",
    "launch-ehr",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-banner",
    "permission-offline",
    "permission-online",
    "sso-openid-connect",
]
LAUNCH_SCOPES = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
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
    base = settings.public_base_url
    document.update(
        {
            "authorization_endpoint": f"{base}/auth/authorize",
            "introspection_endpoint": f"{base}/auth/introspect",
            "revocation_endpoint": f"{base}/auth/revoke",
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "private_key_jwt",
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "scopes_supported": LAUNCH_SCOPES + SCOPES_SUPPORTED,
            "capabilities": CAPABILITIES + LAUNCH_CAPABILITIES,
            "issuer": security.issuer_url,
        }
    )
    return document


def openid_configuration(security: SecurityRuntime) -> dict:
    """OpenID Connect discovery for the id_tokens the built-in server issues with `openid fhirUser`."""
    base = security.settings.public_base_url
    return {
        "issuer": security.issuer_url,
        "authorization_endpoint": f"{base}/auth/authorize",
        "token_endpoint": security.token_url,
        "jwks_uri": security.jwks_url,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [security.key.algorithm],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
    }


def capability_security(security: SecurityRuntime) -> dict:
    cors = bool(security.settings.cors_origins.strip())
    if not security.enabled:
        return {"cors": cors, "description": OFF_WARNING}
    uris = [{"url": "token", "valueUri": security.token_url}]
    if security.settings.auth_authorize_url:
        uris.append({"url": "authorize", "valueUri": security.settings.auth_authorize_url})
    else:
        base = security.settings.public_base_url
        for name in ("authorize", "introspect", "revoke"):
            uris.append({"url": name, "valueUri": f"{base}/auth/{name}"})
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
