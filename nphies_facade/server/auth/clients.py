"""Clients of the built-in authorization server: registered through the CLI, kept in the store.

A record holds the client id, its public keys (a JWKS URL or an inline JWKS) for `private_key_jwt`
client assertions, the scopes it may be granted, the claims copied into its tokens (role, region,
organization, fhirUser, patient) for the ABAC policy and the SMART context, and its lifecycle: `status`
(active or disabled), `registration` (a random id each registration gets, carried by its tokens, so the
tokens of a removed or replaced registration never work again) and `keys_version` (bumped by a key
rotation, so a JWKS URL is fetched again).

`ClientGate` is what the token verifier asks on every request: whether a token of the built-in issuer
still belongs to an active registration.
"""

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from .jwks import JwksUnavailable, parse_jwks
from .scopes import ScopeError, parse_scopes, split_scope_string

CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
TOKEN_CLAIMS = ("role", "region", "organization", "fhirUser", "patient")
ACTIVE, DISABLED = "active", "disabled"
REGISTRATION_CLAIM = "registration"


class ClientError(ValueError):
    """A registration that cannot be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    scopes: tuple[str, ...]
    jwks_url: str | None = None
    jwks: dict | None = None
    claims: dict = field(default_factory=dict)
    status: str = ACTIVE
    registration: str | None = None
    keys_version: int = 0

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_json(self) -> dict:
        return {
            "client_id": self.client_id,
            "scopes": list(self.scopes),
            "jwks_url": self.jwks_url,
            "jwks": self.jwks,
            "claims": self.claims,
            "status": self.status,
            "registration": self.registration,
            "keys_version": self.keys_version,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ClientRecord":
        return cls(
            data["client_id"],
            tuple(data.get("scopes", ())),
            data.get("jwks_url"),
            data.get("jwks"),
            data.get("claims", {}),
            data.get("status", ACTIVE),
            data.get("registration"),
            int(data.get("keys_version", 0)),
        )

    def with_status(self, status: str) -> "ClientRecord":
        return replace(self, status=status)

    def with_keys(self, jwks_url: str | None, jwks: dict | None) -> "ClientRecord":
        """New keys (or, with neither, the same JWKS URL fetched again): the key version moves on."""
        if jwks_url is not None or jwks is not None:
            check_keys(jwks_url, jwks)
            return replace(self, jwks_url=jwks_url, jwks=jwks, keys_version=self.keys_version + 1)
        if self.jwks_url is None:
            raise ClientError("the client has an inline JWKS; give the new one with --jwks or --jwks-url")
        return replace(self, keys_version=self.keys_version + 1)

    def reregistered(self) -> "ClientRecord":
        """The same registration under a new registration id: every token issued before stops working."""
        return replace(self, registration=new_registration_id())


def new_registration_id() -> str:
    return secrets.token_hex(8)


def check_keys(jwks_url: str | None, jwks: dict | None) -> None:
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
    check_keys(jwks_url, jwks)
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


ClientLookup = Callable[[str], Awaitable[dict | None]]


class ClientRefused(Exception):
    """The token's client registration is disabled, removed or replaced; the message says which."""


class ClientGate:
    """Whether a token the built-in issuer signed still belongs to an active registration of its client.

    `lookup` is the store's per-request client read (SecurityStore.client_state: cheap, and seeing what
    another process, such as the CLI, changed). Tokens of other issuers, and tokens of the built-in issuer
    for a client id that was never a backend-services client (and carry no registration), pass.
    """

    def __init__(self, issuer: str, lookup: ClientLookup) -> None:
        self.issuer = issuer
        self.lookup = lookup

    async def check(self, claims: dict) -> None:
        if claims.get("iss") != self.issuer:
            return
        client_id = claims.get("client_id")
        registration = claims.get(REGISTRATION_CLAIM)
        record = await self.lookup(client_id) if isinstance(client_id, str) else None
        if record is None:
            if registration is not None:
                raise ClientRefused("the token's client is no longer registered")
            return
        if record.get("status", ACTIVE) != ACTIVE:
            raise ClientRefused("the token's client is disabled")
        if registration != record.get("registration"):
            raise ClientRefused("the token was issued to an earlier registration of its client")
