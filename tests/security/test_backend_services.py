"""SMART Backend Services end to end: register a client with the CLI, get a token at /auth/token with a
private_key_jwt assertion, use it; replayed, long-lived or misaddressed assertions are refused."""

import asyncio
import contextlib
import io
import json
import uuid

import jwt

from nphies_facade.server.cli import main as cli

from .conftest import BASE, bearer, patient

TOKEN_URL = f"{BASE}/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out):
            return cli(list(argv))

    code = await asyncio.to_thread(call)
    return code, out.getvalue()


async def register(
    tmp_path,
    secure_settings,
    client_key,
    client_id="billing-bot",
    scope="system/Patient.rs system/Claim.cruds",
    *extra,
):
    jwks_file = tmp_path / f"{client_id}.jwks.json"
    jwks_file.write_text(json.dumps({"keys": [client_key.public_jwk()]}))
    code, out = await run_cli(
        "clients",
        "add",
        "--id",
        client_id,
        "--jwks",
        str(jwks_file),
        "--scope",
        scope,
        "--data-dir",
        str(secure_settings.data_dir),
        *extra,
    )
    assert code == 0 and client_id in out


def assertion(client_key, clock, client_id="billing-bot", lifetime=240, **overrides) -> str:
    now = int(clock().timestamp())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return client_key.sign(claims)


def token_form(signed: str, scope: str = "system/Patient.rs") -> dict:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        "scope": scope,
    }


async def post_token(anon, form: dict):
    return await anon.post(
        TOKEN_URL, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


async def test_backend_services_flow_end_to_end(anon, tmp_path, secure_settings, client_key, clock):
    await register(tmp_path, secure_settings, client_key)
    response = await post_token(
        anon, token_form(assertion(client_key, clock), "system/Patient.rs system/Claim.rs launch")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert body["scope"] == "system/Patient.rs system/Claim.rs"
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == f"{BASE}/auth" and claims["aud"] == BASE and claims["sub"] == "billing-bot"

    token = body["access_token"]
    assert (await anon.get("/Patient/nobody", headers=bearer(token))).status_code == 404
    refused = await anon.post("/Patient", json=patient(), headers=bearer(token))
    assert refused.status_code == 403


async def test_a_replayed_assertion_is_refused(anon, tmp_path, secure_settings, client_key, clock):
    await register(tmp_path, secure_settings, client_key)
    signed = assertion(client_key, clock)
    assert (await post_token(anon, token_form(signed))).status_code == 200
    replay = await post_token(anon, token_form(signed))
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    assert "replay" in replay.json()["error_description"]


async def test_assertions_must_be_short_lived_and_addressed_to_the_token_endpoint(
    anon, tmp_path, secure_settings, client_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    too_long = await post_token(anon, token_form(assertion(client_key, clock, lifetime=3600)))
    assert too_long.status_code == 401 and "five minutes" in too_long.json()["error_description"]
    wrong_aud = await post_token(anon, token_form(assertion(client_key, clock, aud=f"{BASE}/other")))
    assert wrong_aud.status_code == 401 and "aud" in wrong_aud.json()["error_description"]
    expired = await post_token(anon, token_form(assertion(client_key, clock, lifetime=-120)))
    assert expired.status_code == 401 and "expired" in expired.json()["error_description"]


async def test_assertions_of_unknown_clients_or_weak_algorithms_are_refused(
    anon, tmp_path, secure_settings, client_key, rsa_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    unknown = await post_token(anon, token_form(assertion(client_key, clock, client_id="stranger")))
    assert unknown.status_code == 401 and "not registered" in unknown.json()["error_description"]
    now = int(clock().timestamp())
    rs256 = rsa_key.sign(
        {"iss": "billing-bot", "sub": "billing-bot", "aud": TOKEN_URL, "exp": now + 60, "jti": "x"}
    )
    assert (await post_token(anon, token_form(rs256))).status_code == 401
    wrong_grant = await post_token(
        anon, {**token_form(assertion(client_key, clock)), "grant_type": "password"}
    )
    assert wrong_grant.json()["error"] == "unsupported_grant_type"


async def test_scopes_outside_the_registration_are_not_granted(
    anon, tmp_path, secure_settings, client_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    response = await post_token(anon, token_form(assertion(client_key, clock), "system/Patient.cruds"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


async def test_cli_mints_a_token_with_the_registered_claims(
    anon, tmp_path, secure_settings, client_key, monkeypatch
):
    monkeypatch.setenv("NPHIES_FACADE_BASE_URL", BASE)  # the CLI runs with the server's settings
    await register(
        tmp_path, secure_settings, client_key, "auditor-app", "system/AuditEvent.rs", "--role", "auditor"
    )
    code, out = await run_cli(
        "token",
        "--client",
        "auditor-app",
        "--scope",
        "system/AuditEvent.rs",
        "--data-dir",
        str(secure_settings.data_dir),
    )
    assert code == 0
    token = out.strip()
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "auditor"
    response = await anon.get("/AuditEvent", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "searchset"
