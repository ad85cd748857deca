"""HTTP hardening: nesting-depth limit, per-client rate limit, security headers, CORS for SMART apps,
SMART discovery, and the auth-off mode's warnings."""

import logging

import httpx
import pytest

from nphies_facade.server.app import create_app
from nphies_facade.server.auth.hardening import RateLimiter, json_depth
from nphies_facade.server.settings import Settings

from .conftest import BASE, FHIR_JSON, bearer, patient


async def test_json_nested_beyond_the_limit_is_refused_before_parsing(as_token):
    async with as_token() as app:
        too_deep = "[" * 70 + "]" * 70
        response = await app.post("/Patient", content=too_deep)
        assert response.status_code == 400
        assert "nested deeper than 64" in response.json()["issue"][0]["diagnostics"]
        assert (await app.post("/Patient", json=patient())).status_code == 201
        brackets_in_text = patient() | {"name": [{"text": "{[" * 70}]}
        assert (await app.post("/Patient", json=brackets_in_text)).status_code == 201
    assert json_depth(b'{"a": "[[[[[[", "b": [1, {"c": "\\"]]"}]}') == 3


async def test_the_rate_limit_answers_429_with_retry_after(secure_settings, mint, clock):
    settings = secure_settings.model_copy(update={"rate_limit": 1.0, "rate_limit_burst": 3})
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Accept": FHIR_JSON}) as c:
            token = bearer(mint("system/*.rs", client_id="busy-app"))
            statuses = [(await c.get("/Patient/x", headers=token)).status_code for _ in range(4)]
            assert statuses == [404, 404, 404, 429]
            limited = await c.get("/Patient/x", headers=token)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.json()["issue"][0]["code"] == "throttled"
            other = bearer(mint("system/*.rs", client_id="quiet-app"))
            assert (await c.get("/Patient/x", headers=other)).status_code == 404
            assert (await c.get("/healthz")).status_code == 200


def test_token_buckets_refill_over_time():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=2, monotonic=lambda: now[0])
    assert limiter.take("a") is None and limiter.take("a") is None
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") is None
    now[0] += 0.5
    assert limiter.take("a") is None


async def test_security_headers_and_no_store_on_phi(as_token, anon):
    async with as_token() as app:
        response = await app.post("/Patient", json=patient())
        read = await app.get(response.headers["location"])
    for answer in (response, read):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"
    metadata = await anon.get("/metadata")
    assert metadata.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in metadata.headers
    assert (await anon.get("/Patient/1")).headers["cache-control"] == "no-store"


async def test_cors_preflight_for_configured_smart_app_origins(tmp_path, clock):
    settings = Settings(data_dir=tmp_path / "d", base_url=BASE, auth="on", cors_origins="https://app.example")
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            preflight = {
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            }
            allowed = await c.options("/Patient", headers=preflight)
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == "https://app.example"
            foreign = await c.options("/Patient", headers={**preflight, "Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in foreign.headers
            statement = (await c.get("/metadata")).json()
            assert statement["rest"][0]["security"]["cors"] is True


async def test_smart_discovery_and_capability_security(anon):
    config = (await anon.get("/.well-known/smart-configuration")).json()
    assert config["token_endpoint"] == f"{BASE}/auth/token"
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "permission-v2" in config["capabilities"] and config["jwks_uri"] == f"{BASE}/auth/jwks"
    security = (await anon.get("/metadata")).json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = security["extension"][0]
    assert uris["url"].endswith("oauth-uris")
    assert {"url": "token", "valueUri": f"{BASE}/auth/token"} in uris["extension"]
    jwks = (await anon.get("/auth/jwks")).json()
    assert jwks["keys"][0]["kty"] == "EC" and "d" not in jwks["keys"][0]


async def test_auth_off_warns_at_start_and_in_the_capability_statement(tmp_path, clock, caplog):
    settings = Settings(data_dir=tmp_path / "d", base_url=BASE, auth="off")
    app = create_app(settings, clock)
    with caplog.at_level(logging.WARNING, logger="nphies_facade.auth"):
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
                assert (
                    await c.post("/Patient", json=patient(), headers={"Content-Type": FHIR_JSON})
                ).status_code == 201
                security = (await c.get("/metadata")).json()["rest"][0]["security"]
    assert "AUTHENTICATION IS OFF" in security["description"] and "service" not in security
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)


def test_the_server_key_is_created_with_owner_only_permissions(secure_app, secure_settings):
    for name in ("token-signing-key.pem", "audit-hmac.key"):
        mode = (secure_settings.secrets_dir / name).stat().st_mode & 0o777
        assert mode == 0o600, name
    assert "PRIVATE" not in repr(secure_app.state.security.key)


async def test_authentication_is_on_by_default(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("NPHIES_FACADE_AUTH", raising=False)  # tests/conftest.py turns it off for other suites
    settings = Settings(data_dir=tmp_path / "d", base_url=BASE)
    assert settings.auth == "on"
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            assert (await c.get("/Patient")).status_code == 401
            assert (await c.get("/metadata")).status_code == 200
