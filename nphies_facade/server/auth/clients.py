"""Clients of the built-in authorization server: registered through the CLI, kept in the store.

A record holds the client id, its public keys (a JWKS URL or an inline JWKS) for `private_key_jwt`
client assertions, the scopes it may be granted, and the claims copied into its tokens (role, region,
organization, fhirUser, patient) for the ABAC policy and the SMART context.
"""

import re
from dataclasses import dataclass, field

from .jwks import JwksUnavailable, parse_jwks
from .scopes import ScopeError, parse_scopes, split_scope_string

CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
TOKEN_CLAIMS = ("role", "region", "organization", "fhirUser", "patient")


class ClientError(ValueError):
    """A registration that cannot be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    scopes: tuple[str, ...]
    jwks_url: str | None = None
    jwks: dict | None = None
    claims: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "client_id": self.client_id,
            "scopes": list(self.scopes),
            "jwks_url": self.jwks_url,
            "jwks": self.jwks,
            "claims": self.claims,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ClientRecord":
        return cls(
            data["client_id"],
            tuple(data.get("scopes", ())),
            data.get("jwks_url"),
            data.get("jwks"),
            data.get("claims", {}),
        )


def new_client(
    client_id: str,
    scope: str,
    jwks_url: str | None = None,
    jwks: dict | None = None,
    claims: dict | None = None,
) -> ClientRecord:
    """A validated record: a well-formed id, exactly one key source, SMART scopes, known claims."""
    if not CLIENT_ID.fullmatch(client_id):
        raise ClientError("a client id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
    if (jwks_url is None) == (jwks is None):
        raise ClientError("give the client's keys as either a JWKS URL or a JWKS document")
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise ClientError("the JWKS URL must be an http(s) URL")
    if jwks is not None:
        try:
            if not parse_jwks(jwks):
                raise ClientError("the JWKS holds no usable RSA or EC signature key")
        except JwksUnavailable as exc:
            raise ClientError(str(exc)) from None
    scopes = split_scope_string(scope)
    try:
        parse_scopes(scopes)
    except ScopeError as exc:
        raise ClientError(str(exc)) from None
    if not scopes:
        raise ClientError("register the scopes the client may be granted, e.g. --scope 'system/*.rs'")
    extra = {k: v for k, v in (claims or {}).items() if v is not None}
    unknown = set(extra) - set(TOKEN_CLAIMS)
    if unknown:
        raise ClientError(f"unknown token claims {sorted(unknown)}; allowed are {', '.join(TOKEN_CLAIMS)}")
    return ClientRecord(client_id, scopes, jwks_url, jwks, extra)
