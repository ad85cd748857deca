"""The state of SMART App Launch authorizations, in the store's security records.

request   a pending authorization (the browser's way through login, patient picker and consent), keyed by
          an id the browser holds in a cookie; it carries the CSRF token of the forms
launch    an EHR launch context (patient, encounter) registered by an EHR, keyed by its opaque launch id
grant     what a user granted an app (user, scopes, context); every token issued from it names its id, so
          revoking the grant stops them all: a reused code, a refresh token used twice, a revocation
code      an authorization code (keyed by its SHA-256), taken once
refresh   a refresh token (keyed by its SHA-256), taken once: each use issues the next one; all of a
          grant's refresh tokens end with it (online_access: `online_refresh` after the login,
          offline_access: `offline_refresh` after the consent)
"""

import hashlib
import secrets
from dataclasses import dataclass

from ...resources.clock import Clock, system_clock
from ...resources.security_store import SecurityStore
from . import accounts, apps

# Records of spent codes and tokens stay this long after they expire, so a late replay is recognised.
REPLAY_MEMORY = 86400.0


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Lifetimes:
    request: int = 600
    code: int = 60
    launch: int = 300
    online_refresh: int = 8 * 3600
    offline_refresh: int = 30 * 86400


class Grants:
    def __init__(self, security: SecurityStore, lifetimes: Lifetimes, clock: Clock = system_clock) -> None:
        self.security = security
        self.lifetimes = lifetimes
        self.clock = clock

    def _now(self) -> float:
        return self.clock().timestamp()

    async def _put(self, kind: str, key: str, body: dict, lifetime: float) -> None:
        now = self._now()
        body = {**body, "expires_at": now + lifetime}
        await self.security.put_record(kind, key, body, now + lifetime + REPLAY_MEMORY, now=now)

    async def _live(self, kind: str, key: str) -> dict | None:
        body = await self.security.get_record(kind, key)
        if body is None or body["expires_at"] <= self._now():
            return None
        return body

    # ----- pending authorizations -----

    async def open_request(self, body: dict) -> str:
        request_id = secrets.token_urlsafe(24)
        await self._put(
            "request", request_id, {**body, "csrf": secrets.token_urlsafe(24)}, self.lifetimes.request
        )
        return request_id

    async def request(self, request_id: str) -> dict | None:
        return await self._live("request", request_id)

    async def update_request(self, request_id: str, body: dict, *, new_csrf: bool = False) -> dict:
        """Saves the request's progress; a new CSRF token after a login, so a token seen before it is void."""
        if new_csrf:
            body = {**body, "csrf": secrets.token_urlsafe(24)}
        remaining = body["expires_at"] - self._now()
        await self._put("request", request_id, body, max(remaining, 1.0))
        return body

    async def close_request(self, request_id: str) -> None:
        await self.security.delete_record("request", request_id)

    # ----- EHR launch contexts -----

    async def register_launch(self, context: dict) -> str:
        launch_id = secrets.token_urlsafe(24)
        await self._put("launch", launch_id, context, self.lifetimes.launch)
        return launch_id

    async def launch(self, launch_id: str) -> dict | None:
        return await self._live("launch", launch_id)

    # ----- grants -----

    async def new_grant(self, body: dict) -> str:
        """`body`: username, client_id, scopes, patient, encounter, refresh (online|offline|None)."""
        grant_id = secrets.token_hex(16)
        lifetime = (
            self.lifetimes.offline_refresh
            if body.get("refresh") == "offline"
            else self.lifetimes.online_refresh
        )
        await self._put("grant", grant_id, {**body, "id": grant_id, "revoked": None}, lifetime)
        return grant_id

    async def grant(self, grant_id: str) -> dict | None:
        return await self.security.get_record("grant", grant_id)

    async def revoke(self, grant_id: str, reason: str) -> None:
        grant = await self.grant(grant_id)
        if grant is None or grant["revoked"]:
            return
        now = self._now()
        await self.security.put_record(
            "grant", grant_id, {**grant, "revoked": reason}, grant["expires_at"] + REPLAY_MEMORY, now=now
        )

    async def live_grant(self, grant_id: str) -> dict | None:
        """The grant while its tokens may work: not revoked, its user and its app neither gone nor
        disabled (asked on every request a person's token makes, so a change stops tokens at once)."""
        grant = await self.security.record_state("grant", grant_id)
        if grant is None or grant["revoked"]:
            return None
        user = await self.security.record_state(accounts.KIND, grant["username"])
        if user is None or user["disabled"]:
            return None
        app = await self.security.record_state(apps.KIND, grant["client_id"])
        if app is None or app.get("disabled"):
            return None
        return grant

    # ----- authorization codes -----

    async def issue_code(self, details: dict) -> str:
        code = secrets.token_urlsafe(32)
        await self._put("code", digest(code), details, self.lifetimes.code)
        return code

    async def redeem_code(self, code: str) -> tuple[dict | None, bool]:
        """(the code's record, whether this is its first use); an expired record is still returned."""
        return await self.security.take_record("code", digest(code))

    # ----- refresh tokens -----

    async def issue_refresh(self, grant: dict) -> str:
        """Valid until the grant ends (online: a working day from the login; offline: a month from the
        consent), however often it is rotated."""
        token = secrets.token_urlsafe(32)
        body = {"grant": grant["id"], "client_id": grant["client_id"]}
        await self._put("refresh", digest(token), body, max(grant["expires_at"] - self._now(), 1.0))
        return token

    async def take_refresh(self, token: str) -> tuple[dict | None, bool]:
        return await self.security.take_record("refresh", digest(token))

    async def refresh_record(self, token: str) -> dict | None:
        return await self.security.get_record("refresh", digest(token))

    def expired(self, record: dict) -> bool:
        return record["expires_at"] <= self._now()
