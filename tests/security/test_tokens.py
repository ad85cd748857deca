"""Bearer tokens are verified against the issuer's JWKS fetched over HTTP; anything wrong is a 401."""

import base64
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import serialization

from .conftest import BASE, ISSUER, bearer, patient


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _handmade(header: dict, claims: dict, sign) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{sign(signing_input.encode())}"


def _claims(mint) -> dict:
    token = mint("system/*.cruds")
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


async def _status(anon, token: str) -> tuple[int, str, dict]:
    response = await anon.get("/Patient/anything", headers=bearer(token))
    return response.status_code, response.headers.get("www-authenticate", ""), response.json()


async def test_a_valid_token_from_the_trusted_issuer_is_accepted(anon, mint, published):
    response = await anon.post("/Patient", json=patient(), headers=bearer(mint("system/Patient.cruds")))
    assert response.status_code == 201, response.text
    assert published.fetches == 1


async def test_no_token_gets_401_with_a_bearer_challenge(anon):
    response = await anon.get("/Patient/1")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="nphies-facade"')
    assert response.json()["issue"][0]["code"] == "login"


async def test_expired_foreign_or_premature_tokens_are_refused(anon, mint, clock):
    now = int(clock().timestamp())
    cases = [
        ({"exp": now - 60}, "expired"),
        ({"aud": "https://someone-else.test"}, "aud"),
        ({"iss": "https://evil.test"}, "iss"),
        ({"nbf": now + 600}, "nbf"),
    ]
    for claims, reason in cases:
        status, challenge, outcome = await _status(anon, mint(**claims))
        assert status == 401, reason
        assert 'error="invalid_token"' in challenge
        assert reason in outcome["issue"][0]["diagnostics"]


async def test_forged_tokens_are_refused(anon, mint, rsa_key):
    none_token = _handmade({"alg": "none", "typ": "JWT"}, _claims(mint), lambda _: "")
    public_pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256_with_public_key = _handmade(
        {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid},
        _claims(mint),
        lambda data: _b64(hmac.new(public_pem, data, hashlib.sha256).digest()),
    )
    header, _, signature = mint("system/Patient.rs").split(".")
    widened = {**_claims(mint), "scope": "system/*.cruds"}
    tampered = f"{header}.{_b64(json.dumps(widened).encode())}.{signature}"
    for token, reason in (
        (none_token, "not accepted"),
        (hs256_with_public_key, "not accepted"),
        (tampered, "signature"),
        ("not.a.jwt", "well-formed"),
    ):
        status, _, outcome = await _status(anon, token)
        assert status == 401, reason
        assert reason in outcome["issue"][0]["diagnostics"]


async def test_a_token_signed_by_an_unpublished_key_is_refused(anon, mint, rotated_key):
    status, _, outcome = await _status(anon, mint(key=rotated_key))
    assert status == 401
    assert "does not publish" in outcome["issue"][0]["diagnostics"]


async def test_key_rotation_is_picked_up_with_one_refetch(anon, mint, published, rotated_key, secure_app):
    first = await anon.post("/Patient", json=patient(), headers=bearer(mint()))
    assert first.status_code == 201
    published.keys = [published.keys[0], rotated_key.public_jwk()]
    cache = secure_app.state.security.verifier.issuers[ISSUER]
    cache._min_refetch = 0.0  # the rate limit is tested below; here the refetch may happen at once
    response = await anon.post("/Patient", json=patient(), headers=bearer(mint(key=rotated_key)))
    assert response.status_code == 201, response.text
    assert published.fetches == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(anon, mint, published, rotated_key):
    assert (await anon.post("/Patient", json=patient(), headers=bearer(mint()))).status_code == 201
    for _ in range(5):
        status, _, _ = await _status(anon, mint(key=rotated_key))
        assert status == 401
    assert published.fetches == 1


async def test_open_endpoints_need_no_token(anon):
    for path in ("/healthz", "/readyz", "/metadata", "/.well-known/smart-configuration", "/auth/jwks"):
        assert (await anon.get(path)).status_code == 200, path


async def test_tokens_of_the_builtin_issuer_are_verified_with_the_server_key(anon, secure_app):
    from nphies_facade.server.auth.clients import new_client

    client = new_client("local", "system/*.rs", jwks={"keys": [secure_app.state.security.key.public_jwk]})
    token = secure_app.state.security.issuer.mint(client, ["system/Patient.rs"]).access_token
    response = await anon.get("/Patient/none", headers=bearer(token))
    assert response.status_code == 404
    assert (await anon.post("/Patient", json=patient(), headers=bearer(token))).status_code == 403
    assert BASE in secure_app.state.security.issuer.audience
