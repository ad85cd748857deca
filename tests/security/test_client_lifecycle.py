"""The lifecycle of a backend-services client through the CLI, against the running app with real tokens:
`clients add` refuses an existing id without --replace; disable, enable, remove and rotate take effect on
the next request (live tokens stop at once); each change is audited; `clients list` shows the status."""

import json

from cryptography.hazmat.primitives.asymmetric import ec

from .conftest import SigningKey, bearer
from .test_backend_services import assertion, post_token, register, run_cli, token_form


def data_dir(secure_settings) -> tuple[str, str]:
    return ("--data-dir", str(secure_settings.data_dir))


async def issued_token(anon, client_key, clock, client_id="billing-bot") -> str:
    response = await post_token(anon, token_form(assertion(client_key, clock, client_id)))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def reads(anon, token: str) -> int:
    return (await anon.get("/Patient?_count=1", headers=bearer(token))).status_code


async def test_adding_an_existing_client_is_refused_without_replace(
    anon, tmp_path, secure_settings, client_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    token = await issued_token(anon, client_key, clock)
    code, _ = await run_cli(
        "clients", "add", "--id", "billing-bot", "--jwks-url", "https://keys.test/jwks.json",
        "--scope", "system/*.cruds", *data_dir(secure_settings),
    )  # fmt: skip
    assert code == 2
    assert await reads(anon, token) == 200, "the refused add changed nothing"
    await register(tmp_path, secure_settings, client_key, "billing-bot", "system/Patient.rs", "--replace")
    assert await reads(anon, token) == 401, "a replaced registration's tokens stop"
    assert await reads(anon, await issued_token(anon, client_key, clock)) == 200


async def test_a_disabled_client_is_refused_at_once_and_an_enabled_one_works_again(
    anon, tmp_path, secure_settings, client_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    token = await issued_token(anon, client_key, clock)
    assert await reads(anon, token) == 200
    assert (await run_cli("clients", "disable", "billing-bot", *data_dir(secure_settings)))[0] == 0

    refused = await anon.get("/Patient", headers=bearer(token))
    assert refused.status_code == 401
    assert "disabled" in refused.headers["www-authenticate"]
    new_token = await post_token(anon, token_form(assertion(client_key, clock)))
    assert new_token.status_code == 401 and "disabled" in new_token.json()["error_description"]
    code, listing = await run_cli("clients", "list", *data_dir(secure_settings))
    assert code == 0 and "billing-bot\tdisabled\t" in listing

    assert (await run_cli("clients", "enable", "billing-bot", *data_dir(secure_settings)))[0] == 0
    assert await reads(anon, token) == 200
    assert "billing-bot\tactive\t" in (await run_cli("clients", "list", *data_dir(secure_settings)))[1]


async def test_a_removed_client_stays_refused_even_when_registered_again(
    anon, tmp_path, secure_settings, client_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    token = await issued_token(anon, client_key, clock)
    assert (await run_cli("clients", "remove", "billing-bot", *data_dir(secure_settings)))[0] == 0
    assert await reads(anon, token) == 401
    assert (await run_cli("clients", "remove", "billing-bot", *data_dir(secure_settings)))[0] == 2

    await register(tmp_path, secure_settings, client_key)
    assert await reads(anon, token) == 401, "a token of the removed registration does not come back"
    assert await reads(anon, await issued_token(anon, client_key, clock)) == 200


async def test_rotating_an_inline_jwks_swaps_the_keys_assertions_are_checked_with(
    anon, tmp_path, secure_settings, client_key, clock
):
    await register(tmp_path, secure_settings, client_key)
    token = await issued_token(anon, client_key, clock)
    new_key = SigningKey(ec.generate_private_key(ec.SECP384R1()), "client-es384-2", "ES384")
    jwks_file = tmp_path / "rotated.jwks.json"
    jwks_file.write_text(json.dumps({"keys": [new_key.public_jwk()]}))
    rotate = ("clients", "rotate", "billing-bot", "--jwks", str(jwks_file), *data_dir(secure_settings))
    assert (await run_cli(*rotate))[0] == 0

    old = await post_token(anon, token_form(assertion(client_key, clock)))
    assert old.status_code == 401
    assert await reads(anon, await issued_token(anon, new_key, clock)) == 200
    assert await reads(anon, token) == 200, "a rotation alone leaves issued tokens valid"
    assert (await run_cli(*rotate, "--revoke-tokens"))[0] == 0
    assert await reads(anon, token) == 401


async def test_rotating_a_jwks_url_client_fetches_its_keys_again(
    anon, secure_settings, jwks_server, rsa_key, clock
):
    key = SigningKey(ec.generate_private_key(ec.SECP384R1()), "bot-key", "ES384")
    jwks_server.keys = [rsa_key.public_jwk(), key.public_jwk()]
    code, _ = await run_cli(
        "clients", "add", "--id", "url-bot", "--jwks-url", jwks_server.url,
        "--scope", "system/Patient.rs", *data_dir(secure_settings),
    )  # fmt: skip
    assert code == 0
    await issued_token(anon, key, clock, "url-bot")
    replacement = SigningKey(ec.generate_private_key(ec.SECP384R1()), "bot-key", "ES384")  # same kid
    jwks_server.keys = [rsa_key.public_jwk(), replacement.public_jwk()]
    stale = await post_token(anon, token_form(assertion(replacement, clock, "url-bot")))
    assert stale.status_code == 401, "the cached JWKS still holds the old key"

    assert (await run_cli("clients", "rotate", "url-bot", *data_dir(secure_settings)))[0] == 0
    assert await reads(anon, await issued_token(anon, replacement, clock, "url-bot")) == 200


async def test_each_lifecycle_change_is_audited(secure_app, anon, tmp_path, secure_settings, client_key):
    await register(tmp_path, secure_settings, client_key)
    for command in ("disable", "enable", "rotate", "remove"):
        assert (await run_cli("clients", command, "billing-bot", *data_dir(secure_settings)))[0] == (
            2 if command == "rotate" else 0  # an inline JWKS needs the new one to rotate
        )
    rows = await secure_app.state.store.security().audit_rows()
    changes = [
        (r.action, r.subtype, json.loads(r.detail)["client"]) for r in rows if r.subtype.startswith("client-")
    ]
    assert changes == [
        ("C", "client-add", "billing-bot"),
        ("U", "client-disable", "billing-bot"),
        ("U", "client-enable", "billing-bot"),
        ("D", "client-remove", "billing-bot"),
    ]
    assert all(r.actor.startswith("cli:") for r in rows if r.subtype.startswith("client-"))
