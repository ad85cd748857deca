"""SMART apps registered with the built-in authorization server (`nphies-facade apps add`).

An app is public (a browser or mobile app: PKCE is its only proof) or confidential, authenticating at the
token endpoint with a client secret (stored as a SHA-256 hash; generated, printed once) or with a
private_key_jwt assertion (its JWKS). It lists its redirect URIs (matched exactly), the scopes it may be
granted and the launch types it uses (standalone, ehr).
"""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass, field
from urllib.parse import unquote, urlsplit

from .clients import CLIENT_ID, ClientRecord
from .jwks import JwksUnavailable, parse_jwks
from .scopes import ScopeError, parse_scopes, split_scope_string

KIND = "app"
PUBLIC, SYMMETRIC, ASYMMETRIC = "public", "confidential-symmetric", "confidential-asymmetric"
APP_TYPES = (PUBLIC, SYMMETRIC, ASYMMETRIC)
LAUNCH_TYPES = ("standalone", "ehr")
NAME = re.compile(r"[^\x00-\x1f<>]{1,100}")


class AppError(ValueError):
    """A registration that cannot be accepted; the message says why."""


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AppRecord:
    client_id: str
    name: str
    type: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    launch_types: tuple[str, ...] = LAUNCH_TYPES
    secret_sha256: str | None = None
    jwks: dict | None = None
    jwks_url: str | None = None
    disabled: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def confidential(self) -> bool:
        return self.type != PUBLIC

    def secret_matches(self, secret: str) -> bool:
        if self.secret_sha256 is None:
            return False
        return hmac.compare_digest(secret_digest(secret), self.secret_sha256)

    def as_client(self) -> ClientRecord:
        """The app as a client whose private_key_jwt assertions the token endpoint verifies."""
        return ClientRecord(self.client_id, self.scopes, self.jwks_url, self.jwks)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "AppRecord":
        values = dict(data)
        for name in ("redirect_uris", "scopes", "launch_types"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


def _redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc:
        raise AppError(f"{uri!r}: a redirect URI is absolute and has no fragment")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise AppError(f"{uri!r}: plain http is allowed for loopback addresses only")
    if parts.scheme not in ("https", "http") and "." not in parts.scheme:
        raise AppError(f"{uri!r}: use https, loopback http, or a private-use scheme such as com.example.app")
    return uri


def new_app(
    client_id: str,
    name: str,
    app_type: str,
    redirect_uris: list[str],
    scope: str,
    launch_types: list[str] | None = None,
    jwks: dict | None = None,
    jwks_url: str | None = None,
) -> tuple[AppRecord, str | None]:
    """A validated registration and, for a confidential-symmetric app, its new secret (shown once)."""
    if not CLIENT_ID.fullmatch(client_id):
        raise AppError("a client id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
    if not NAME.fullmatch(name):
        raise AppError("the app's name is 1 to 100 printable characters without < or >")
    if app_type not in APP_TYPES:
        raise AppError(f"the app type is one of {', '.join(APP_TYPES)}")
    if not redirect_uris:
        raise AppError("register at least one redirect URI")
    uris = tuple(_redirect_uri(uri) for uri in redirect_uris)
    scopes = split_scope_string(scope)
    try:
        parse_scopes(scopes)
    except ScopeError as exc:
        raise AppError(str(exc)) from None
    if not scopes:
        raise AppError(
            "register the scopes the app may be granted, e.g. --scope 'launch/patient patient/*.rs'"
        )
    launches = tuple(launch_types or LAUNCH_TYPES)
    if not set(launches) <= set(LAUNCH_TYPES):
        raise AppError(f"launch types are {', '.join(LAUNCH_TYPES)}")
    if app_type == ASYMMETRIC:
        if (jwks is None) == (jwks_url is None):
            raise AppError("a confidential-asymmetric app gives its keys as a JWKS URL or a JWKS document")
        if jwks is not None:
            try:
                if not parse_jwks(jwks):
                    raise AppError("the JWKS holds no usable RSA or EC signature key")
            except JwksUnavailable as exc:
                raise AppError(str(exc)) from None
    elif jwks is not None or jwks_url is not None:
        raise AppError("only a confidential-asymmetric app registers keys")
    secret = secrets.token_urlsafe(32) if app_type == SYMMETRIC else None
    record = AppRecord(
        client_id,
        name,
        app_type,
        uris,
        scopes,
        launches,
        secret_digest(secret) if secret else None,
        jwks,
        jwks_url,
    )
    return record, secret


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from `Authorization: Basic ...` (RFC 6749 2.3.1: form-encoded, then base64)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None
