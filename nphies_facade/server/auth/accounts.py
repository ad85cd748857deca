"""User accounts of the built-in authorization server: people who log in to SMART apps.

A user has a login name, an argon2 password hash, the FHIR resource they are (`fhirUser`: a Practitioner,
Patient or RelatedPerson) and the ABAC attributes their tokens carry (role, region, organization). After
`max_failures` wrong passwords in a row the account is locked for `lockout_seconds`; a disabled account
never logs in. Records live in the store's security tables (kind "user", keyed by login name); tokens
name the user by an opaque id, never by the login name.
"""

import asyncio
import re
import secrets
from dataclasses import asdict, dataclass, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ...resources.clock import Clock, system_clock
from ...resources.security_store import SecurityStore

KIND = "user"
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,127}")
FHIR_USER = re.compile(r"(Practitioner|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}")
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verified against when the login name is unknown, so an unknown name costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An account change that cannot be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    username: str
    id: str
    fhir_user: str
    password_hash: str
    role: str | None = None
    region: str | None = None
    organization: str | None = None
    disabled: bool = False
    failures: int = 0
    locked_until: float = 0.0

    @property
    def kind(self) -> str:
        return self.fhir_user.split("/", 1)[0]

    def claims(self) -> dict:
        """What an access token carries for the ABAC policy and the SMART context."""
        found = {"fhirUser": self.fhir_user, "role": self.role, "region": self.region}
        found["organization"] = self.organization
        return {k: v for k, v in found.items() if v is not None}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "UserRecord":
        return cls(**data)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """argon2 verification (its comparison is constant-time); a missing hash costs the same work."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_user(
    username: str,
    fhir_user: str,
    password: str,
    role: str | None = None,
    region: str | None = None,
    organization: str | None = None,
) -> UserRecord:
    if not USERNAME.fullmatch(username):
        raise AccountError("a login name is 1 to 128 characters of a-z, 0-9, '.', '_', '@' and '-'")
    if not FHIR_USER.fullmatch(fhir_user):
        raise AccountError("--fhir-user is Practitioner/<id>, Patient/<id> or RelatedPerson/<id>")
    if organization is not None and not organization.startswith("Organization/"):
        organization = f"Organization/{organization}"
    return UserRecord(
        username, secrets.token_hex(12), fhir_user, hash_password(password), role, region, organization
    )


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: UserRecord | None
    reason: str  # for the audit trail: ok, unknown, wrong-password, locked, disabled


class Accounts:
    def __init__(
        self,
        security: SecurityStore,
        max_failures: int = 5,
        lockout_seconds: float = 900.0,
        clock: Clock = system_clock,
    ) -> None:
        self.security = security
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, username: str) -> UserRecord | None:
        record = await self.security.get_record(KIND, username)
        return UserRecord.from_json(record) if record is not None else None

    async def save(self, user: UserRecord, *, create: bool = False) -> bool:
        return await self.security.put_record(KIND, user.username, user.to_json(), create=create)

    async def list(self) -> list[UserRecord]:
        return [UserRecord.from_json(r) for r in await self.security.list_records(KIND)]

    async def login(self, username: str, password: str) -> LoginResult:
        """Checks the password; counts failures and locks the account after too many in a row. Attempts
        on one name are serialised in this process, so parallel guesses cannot outrun the counter."""
        username = username.strip().lower()
        lock = self._locks.setdefault(username, asyncio.Lock())
        async with lock:
            try:
                return await self._login(username, password)
            finally:
                if not lock._waiters:  # type: ignore[attr-defined]
                    self._locks.pop(username, None)

    async def _login(self, username: str, password: str) -> LoginResult:
        user = await self.get(username)
        now = self.clock().timestamp()
        if user is None:
            await asyncio.to_thread(password_matches, None, password)
            return LoginResult(None, "unknown")
        if user.disabled:
            return LoginResult(user, "disabled")
        if user.locked_until > now:
            return LoginResult(user, "locked")
        if not await asyncio.to_thread(password_matches, user.password_hash, password):
            failures = user.failures + 1
            locked = now + self.lockout_seconds if failures >= self.max_failures else 0.0
            await self.save(replace(user, failures=0 if locked else failures, locked_until=locked))
            return LoginResult(user, "locked" if locked else "wrong-password")
        if user.failures or user.locked_until:
            user = replace(user, failures=0, locked_until=0.0)
            await self.save(user)
        return LoginResult(user, "ok")
