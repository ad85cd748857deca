"""Tokens the built-in authorization server issues, signed with the server key: access tokens carrying
scopes and the client's (or the logged-in user's) claims (SMART context and ABAC attributes), and
OpenID Connect id_tokens naming the user (`fhirUser`)."""

import uuid
from dataclasses import dataclass

from ...resources.clock import Clock, system_clock
from .clients import REGISTRATION_CLAIM, ClientRecord
from .keys import ServerKey


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str

    def response(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


class TokenIssuer:
    def __init__(
        self, key: ServerKey, issuer: str, audience: str, lifetime: int, clock: Clock = system_clock
    ):
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.clock = clock

    def mint(
        self,
        client: ClientRecord,
        scopes: list[str],
        overrides: dict | None = None,
        lifetime: int | None = None,
    ) -> IssuedToken:
        now = int(self.clock().timestamp())
        expires_in = lifetime or self.lifetime
        claims = {
            **client.claims,
            **{k: v for k, v in (overrides or {}).items() if v is not None},
            "iss": self.issuer,
            "sub": client.client_id,
            "client_id": client.client_id,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
        }
        if client.registration is not None:
            claims[REGISTRATION_CLAIM] = client.registration  # the verifier's ClientGate compares it
        return IssuedToken(self.key.sign(claims), expires_in, claims["scope"])

    def mint_for_user(self, subject: str, client_id: str, scopes: list[str], claims: dict) -> IssuedToken:
        """An access token for a person using an app: `sub` is the user's opaque id, `claims` hold the
        ABAC attributes, the SMART context and the grant it belongs to (so revoking the grant stops it)."""
        now = int(self.clock().timestamp())
        payload = {
            **{k: v for k, v in claims.items() if v is not None},
            "iss": self.issuer,
            "sub": subject,
            "client_id": client_id,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
        }
        return IssuedToken(self.key.sign(payload), self.lifetime, payload["scope"])

    def id_token(self, subject: str, client_id: str, fhir_user: str, nonce: str | None) -> str:
        """OpenID Connect: issued to the app (`aud` = its client id), `fhirUser` an absolute URL."""
        now = int(self.clock().timestamp())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "iat": now,
            "exp": now + self.lifetime,
            "fhirUser": fhir_user,
        }
        if nonce:
            claims["nonce"] = nonce
        return self.key.sign(claims)
