"""The token endpoint's grants for people (authorization_code, refresh_token), token introspection
(RFC 7662) and revocation (RFC 7009), for apps registered with `apps add`.

A code is taken once: its expiry, its app, its redirect_uri and the PKCE verifier (S256) must all fit, and
a second use revokes the grant, so the tokens issued from it stop working. Refresh tokens rotate: each use
returns the next one, and a refresh token used twice revokes the whole grant (its family). Access tokens
carry the user's ABAC attributes and the SMART context; an id_token (OpenID Connect) comes with
`openid fhirUser`.
"""

import base64
import hashlib
import hmac
import re

from ...resources.audit import MINOR_FAILURE, SERIOUS_FAILURE, SUCCESS, AuditEntry, Auditor
from ...resources.context import RequestContext
from ...resources.security_store import SecurityStore
from .accounts import Accounts, UserRecord
from .apps import ASYMMETRIC, AppRecord, basic_credentials
from .apps import KIND as APP_KIND
from .grants import Grants
from .issuer import TokenIssuer
from .token_endpoint import ASSERTION_TYPE, OAuthError, TokenEndpoint
from .verifier import InvalidToken, TokenVerifier

CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
USER_GRANTS = ("authorization_code", "refresh_token")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def _id(reference: str | None) -> str | None:
    return reference.split("/", 1)[1] if reference else None


class UserTokens:
    def __init__(
        self,
        security: SecurityStore,
        accounts: Accounts,
        grants: Grants,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        client_assertions: TokenEndpoint,
        auditor: Auditor,
        base_url: str,
    ) -> None:
        self.security = security
        self.accounts = accounts
        self.grants = grants
        self.issuer = issuer
        self.verifier = verifier
        self.client_assertions = client_assertions
        self.auditor = auditor
        self.base_url = base_url

    async def _audit(
        self, subtype: str, outcome: str, trace_id: str, actor: str, client: str | None, **detail
    ):
        ctx = RequestContext(actor=actor, client_id=client, trace_id=trace_id)
        entry = AuditEntry("E", subtype, outcome, entity=None, detail=detail or None)
        if outcome == SUCCESS:
            await self.auditor.record(ctx, entry)
        else:
            await self.auditor.record_failure(ctx, entry)

    # ----- app authentication (RFC 6749 2.3, private_key_jwt) -----

    async def authenticate_app(self, form: dict[str, str], authorization: str | None) -> AppRecord:
        basic = basic_credentials(authorization)
        client_id = basic[0] if basic else form.get("client_id")
        if basic and form.get("client_id") not in (None, basic[0]):
            raise OAuthError("invalid_client", "client_id does not match the Basic credentials", 401)
        record = await self.security.get_record(APP_KIND, client_id) if client_id else None
        app = AppRecord.from_json(record) if record is not None else None
        if app is None or app.disabled:
            raise OAuthError("invalid_client", "the app is not registered", 401)
        secret = basic[1] if basic else form.get("client_secret")
        if app.type == ASYMMETRIC:
            if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
                raise OAuthError(
                    "invalid_client", "authenticate with a private_key_jwt client assertion", 401
                )
            await self.client_assertions.verify_assertion(form["client_assertion"], app.as_client())
        elif app.confidential:
            if not secret or not app.secret_matches(secret):
                raise OAuthError("invalid_client", "the client secret is wrong or missing", 401)
        elif secret or form.get("client_assertion"):
            raise OAuthError("invalid_client", "a public app sends no client credentials", 401)
        return app

    # ----- the token endpoint -----

    async def handle(self, form: dict[str, str], authorization: str | None, trace_id: str) -> dict:
        grant_type = form.get("grant_type")
        app: AppRecord | None = None
        try:
            app = await self.authenticate_app(form, authorization)
            if grant_type == "authorization_code":
                body, actor = await self._exchange_code(app, form, trace_id)
            else:
                body, actor = await self._refresh(app, form, trace_id)
        except OAuthError as exc:
            client = app.client_id if app else None
            await self._audit(
                "refresh" if grant_type == "refresh_token" else "token",
                MINOR_FAILURE,
                trace_id,
                client or "unknown",
                client,
                grant_type=grant_type,
                error=exc.error,
            )
            raise
        subtype = "token" if grant_type == "authorization_code" else "refresh"
        await self._audit(subtype, SUCCESS, trace_id, actor, app.client_id, scope=body["scope"])
        return body

    async def _exchange_code(self, app: AppRecord, form: dict[str, str], trace_id: str) -> tuple[dict, str]:
        record, first_use = await self.grants.redeem_code(form.get("code", ""))
        if record is None:
            raise OAuthError("invalid_grant", "the authorization code is not known")
        if not first_use:
            await self.grants.revoke(record["grant"], "code-reuse")
            await self._audit(
                "token", SERIOUS_FAILURE, trace_id, app.client_id, app.client_id, revoked="code reused"
            )
            raise OAuthError(
                "invalid_grant", "the code was already used; the tokens issued from it are revoked"
            )
        if record["client_id"] != app.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another app")
        if self.grants.expired(record):
            raise OAuthError("invalid_grant", "the authorization code has expired")
        if form.get("redirect_uri") != record["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if not CODE_VERIFIER.fullmatch(verifier):
            raise OAuthError("invalid_grant", "a PKCE code_verifier of 43 to 128 characters is required")
        if not hmac.compare_digest(s256(verifier), record["code_challenge"]):
            raise OAuthError("invalid_grant", "the code_verifier does not match the code_challenge")
        grant, user = await self._live(record["grant"])
        return await self._tokens(app, grant, user, grant["scopes"], record.get("nonce"), first=True), user.id

    async def _refresh(self, app: AppRecord, form: dict[str, str], trace_id: str) -> tuple[dict, str]:
        record, first_use = await self.grants.take_refresh(form.get("refresh_token", ""))
        if record is None:
            raise OAuthError("invalid_grant", "the refresh token is not known")
        if record["client_id"] != app.client_id:
            raise OAuthError("invalid_grant", "the refresh token was issued to another app")
        if not first_use:
            await self.grants.revoke(record["grant"], "refresh-reuse")
            await self._audit(
                "refresh",
                SERIOUS_FAILURE,
                trace_id,
                app.client_id,
                app.client_id,
                revoked="refresh token reused",
            )
            raise OAuthError("invalid_grant", "the refresh token was already used; its grant is revoked")
        if self.grants.expired(record):
            raise OAuthError("invalid_grant", "the refresh token has expired")
        grant, user = await self._live(record["grant"])
        scopes = grant["scopes"]
        if form.get("scope"):
            asked = form["scope"].split()
            if not set(asked) <= set(scopes):
                raise OAuthError("invalid_scope", "a refresh may only narrow the granted scopes")
            scopes = [s for s in scopes if s in asked]
        return await self._tokens(app, grant, user, scopes, None, first=False), user.id

    async def _live(self, grant_id: str) -> tuple[dict, UserRecord]:
        grant = await self.grants.live_grant(grant_id)
        user = await self.accounts.get(grant["username"]) if grant is not None else None
        if grant is None or user is None or user.disabled:
            raise OAuthError("invalid_grant", "the authorization was revoked or the user is disabled")
        return grant, user

    async def _tokens(
        self, app: AppRecord, grant: dict, user: UserRecord, scopes: list[str], nonce: str | None, first: bool
    ) -> dict:
        claims = {
            **user.claims(),
            "patient": grant["patient"],
            "encounter": grant["encounter"],
            "grant": grant["id"],
        }
        token = self.issuer.mint_for_user(user.id, app.client_id, scopes, claims)
        body: dict = {**token.response(), "token_type": "Bearer"}
        if grant["patient"]:
            body["patient"] = _id(grant["patient"])
            body["need_patient_banner"] = True
        if grant["encounter"]:
            body["encounter"] = _id(grant["encounter"])
        fhir_user = f"{self.base_url}/{user.fhir_user}"
        if "fhirUser" in scopes or "openid" in scopes:
            body["fhirUser"] = fhir_user
        if first and "openid" in scopes and ("fhirUser" in scopes or "profile" in scopes):
            body["id_token"] = self.issuer.id_token(user.id, app.client_id, fhir_user, nonce)
        if grant["refresh"]:
            body["refresh_token"] = await self.grants.issue_refresh(grant)
        return body

    # ----- introspection (RFC 7662) -----

    async def introspect(self, form: dict[str, str], authorization: str | None, trace_id: str) -> dict:
        """Answers a resource server (a backend-services bearer token) or a confidential app (its own
        tokens only); anything not currently valid is just `{"active": false}`."""
        caller_app = await self._introspecting_caller(form, authorization)
        claims = await self._active_claims(form.get("token", ""))
        if claims is not None and caller_app is not None and claims.get("client_id") != caller_app:
            claims = None
        await self._audit(
            "introspect",
            SUCCESS,
            trace_id,
            caller_app or "resource-server",
            caller_app,
            active=claims is not None,
        )
        if claims is None:
            return {"active": False}
        answer = {"active": True, "token_type": "Bearer"}
        for name in (
            "scope",
            "client_id",
            "sub",
            "exp",
            "iat",
            "nbf",
            "iss",
            "aud",
            "jti",
            "fhirUser",
            "patient",
        ):
            if name in claims:
                answer[name] = claims[name]
        return answer

    async def _introspecting_caller(self, form: dict[str, str], authorization: str | None) -> str | None:
        """None for a resource server; the client id of a confidential app."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            try:
                claims = await self.verifier.verify(token.strip())
            except InvalidToken as exc:
                raise OAuthError("invalid_client", str(exc), 401) from None
            if "grant" in claims:
                raise OAuthError("invalid_client", "introspection needs a backend-services token", 401)
            return None
        app = await self.authenticate_app(form, authorization)
        if not app.confidential:
            raise OAuthError("invalid_client", "a public app may not introspect tokens", 401)
        return app.client_id

    async def _active_claims(self, token: str) -> dict | None:
        try:
            claims = await self.verifier.verify(token)
        except InvalidToken:
            return None
        if "grant" in claims and await self.grants.live_grant(claims["grant"]) is None:
            return None
        return claims

    # ----- revocation (RFC 7009) -----

    async def revoke(self, form: dict[str, str], authorization: str | None, trace_id: str) -> None:
        """Revokes the grant of an access or refresh token issued to the calling app; a token that is
        unknown, or another app's, is ignored, as the RFC asks."""
        app = await self.authenticate_app(form, authorization)
        token = form.get("token", "")
        grant_id = await self._grant_of(token, app.client_id)
        if grant_id is not None:
            await self.grants.revoke(grant_id, "revoked by the app")
        await self._audit(
            "revoke", SUCCESS, trace_id, app.client_id, app.client_id, revoked=grant_id is not None
        )

    async def _grant_of(self, token: str, client_id: str) -> str | None:
        refresh = await self.grants.refresh_record(token) if token else None
        if refresh is not None:
            return refresh["grant"] if refresh["client_id"] == client_id else None
        try:
            claims = await self.verifier.verify(token)
        except InvalidToken:
            return None
        if claims.get("client_id") != client_id:
            return None
        grant = claims.get("grant")
        return grant if isinstance(grant, str) else None
