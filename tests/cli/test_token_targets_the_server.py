"""`nphies-facade token` mints for the server it is told about (--base-url, --host/--port, or
NPHIES_FACADE_BASE_URL), says which issuer it used, and a token for another server gets a 401 that names
the issuer it has and the one expected; the server logs the refusal without the token."""

import time

import httpx
import pytest

from .server_process import run_cli, serve


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("token-server"), NPHIES_FACADE_AUTH="on") as live:
        added = run_cli(
            "clients", "add", "--id", "local", "--jwks-url", f"{live.url}/auth/jwks",
            "--scope", "system/*.*", "--data-dir", str(live.data_dir),
        )  # fmt: skip
        assert added.code == 0, added.err
        yield live


def mint(server, *options: str):
    return run_cli(
        "token", "--client", "local", "--scope", "system/*.rs", "--data-dir", str(server.data_dir), *options
    )


def read_patients(server, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/Patient", headers={"Authorization": f"Bearer {token}"})


def test_a_token_minted_with_the_servers_port_is_accepted_and_the_issuer_is_named(server):
    minted = mint(server, "--port", str(server.port))
    assert minted.code == 0
    assert f"issuer http://127.0.0.1:{server.port}/auth" in minted.err
    answer = read_patients(server, minted.out.strip())
    assert answer.status_code == 200
    trace = answer.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while f"trace={trace} GET /Patient 200" not in server.log():
        assert time.monotonic() < deadline, "the access log has no line for the request"
        time.sleep(0.05)
    assert f"trace={trace} GET /Patient 200" in server.log()
    [line] = [line for line in server.log().splitlines() if f"trace={trace}" in line]
    assert line.endswith("client=local")


def test_a_token_minted_for_the_base_url_is_accepted(server):
    minted = mint(server, "--base-url", server.url)
    assert read_patients(server, minted.out.strip()).status_code == 200


def test_the_base_url_setting_is_used_as_serve_uses_it(server, monkeypatch):
    monkeypatch.setenv("NPHIES_FACADE_BASE_URL", server.url)
    minted = mint(server)
    assert f"issuer {server.url}/auth" in minted.err
    assert read_patients(server, minted.out.strip()).status_code == 200


def test_a_token_for_another_server_is_refused_naming_both_issuers(server):
    minted = mint(server)  # the default port 8080, not the server's
    assert "issuer http://127.0.0.1:8080/auth" in minted.err
    answer = read_patients(server, minted.out.strip())
    assert answer.status_code == 401
    said = answer.json()["issue"][0]["diagnostics"]
    assert "'http://127.0.0.1:8080/auth'" in said and f"http://127.0.0.1:{server.port}/auth" in said
    log = server.log()
    assert "token refused: the token's issuer is not trusted (iss)" in log
    assert minted.out.strip() not in log


def test_a_websocket_with_a_token_for_another_server_is_refused_and_logged(server):
    from websockets.sync.client import connect

    minted = mint(server)  # for port 8080
    before = server.log().count("token refused")
    with connect(f"ws://127.0.0.1:{server.port}/websocket") as socket:
        socket.send(f"token {minted.out.strip()}")
        assert socket.recv(timeout=10).startswith("error unauthenticated: the token's issuer")
    deadline = time.monotonic() + 10
    while server.log().count("token refused") == before:
        assert time.monotonic() < deadline, "the refusal was not logged"
        time.sleep(0.05)
    assert minted.out.strip() not in server.log()
