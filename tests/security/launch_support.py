"""Helpers for SMART App Launch tests: register users and apps with the CLI, seed the records, walk an
httpx client through authorize -> login -> picker -> consent, and PKCE pairs."""

import asyncio
import base64
import contextlib
import hashlib
import io
import re
import secrets
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from nphies_facade.server.cli import main as cli

PASSWORD = "correct horse battery"
APP_REDIRECT = "https://portal.example/callback"
PORTAL_SCOPES = (
    "launch launch/patient openid fhirUser offline_access online_access "
    "patient/Patient.rs patient/Coverage.rs patient/Claim.rs patient/Task.rs user/Patient.rs user/Coverage.rs"
)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def run_cli(*argv: str, stdin: str | None = None) -> tuple[int, str]:
    out = io.StringIO()

    def call() -> int:
        saved = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out):
                return cli(list(argv))
        finally:
            sys.stdin = saved

    code = await asyncio.to_thread(call)
    return code, out.getvalue()


async def add_user(data_dir, username: str, fhir_user: str, *extra: str, password: str = PASSWORD) -> None:
    code, out = await run_cli(
        "users",
        "add",
        username,
        "--fhir-user",
        fhir_user,
        "--password-stdin",
        "--data-dir",
        str(data_dir),
        *extra,
        stdin=password + "\n",
    )
    assert code == 0, out


async def add_app(
    data_dir, client_id: str = "portal", redirect: str = APP_REDIRECT, scope: str = PORTAL_SCOPES, *extra: str
) -> str:
    code, out = await run_cli(
        "apps",
        "add",
        "--id",
        client_id,
        "--name",
        "Patient portal",
        "--redirect-uri",
        redirect,
        "--scope",
        scope,
        "--data-dir",
        str(data_dir),
        *extra,
    )
    assert code == 0, out
    return out


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """An httpx client walking the authorization pages as a browser would (cookies kept, no redirects
    followed, so each step can be looked at)."""

    def __init__(self, client: httpx.AsyncClient, base: str) -> None:
        self.c = client
        self.base = base
        self.verifier, self.challenge = pkce()

    def authorize_params(self, **overrides: str | None) -> dict:
        params = {
            "response_type": "code",
            "client_id": "portal",
            "redirect_uri": APP_REDIRECT,
            "scope": "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Coverage.rs",
            "state": "s-123",
            "aud": self.base,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    async def authorize(self, **overrides: str | None) -> httpx.Response:
        return await self.c.get("/auth/authorize", params=self.authorize_params(**overrides))

    async def login(self, username: str, password: str = PASSWORD, csrf: str | None = None) -> httpx.Response:
        if csrf is None:
            csrf = csrf_of(await self.c.get("/auth/login"))
        form = {"csrf": csrf, "username": username, "password": password}
        return await self.c.post("/auth/login", data=form, headers=FORM)

    async def pick(self, patient_id: str) -> httpx.Response:
        csrf = csrf_of(await self.c.get("/auth/picker"))
        return await self.c.post("/auth/picker", data={"csrf": csrf, "patient": patient_id}, headers=FORM)

    async def consent(self, scopes: list[str] | None = None, decision: str = "allow") -> httpx.Response:
        page = await self.c.get("/auth/consent")
        if scopes is None:
            scopes = re.findall(r'name="scope" value="([^"]+)"', page.text)
        form = [("csrf", csrf_of(page)), ("decision", decision), *(("scope", s) for s in scopes)]
        return await self.c.post("/auth/consent", content=urlencode(form), headers=FORM)

    async def code_for(self, username: str, **overrides: str | None) -> str:
        """The whole way to an authorization code for a user who needs no picker."""
        started = await self.authorize(**overrides)
        assert started.status_code == 303 and started.headers["location"] == "/auth/login", started.text
        logged_in = await self.login(username)
        assert logged_in.status_code == 303, logged_in.text
        if logged_in.headers["location"] == "/auth/picker":
            raise AssertionError("this user needs the patient picker")
        answer = await self.consent()
        assert answer.status_code == 303, answer.text
        query = query_of(answer.headers["location"])
        assert query["state"] == "s-123"
        return query["code"]

    async def exchange(self, code: str, **overrides: str | None) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": APP_REDIRECT,
            "client_id": "portal",
            "code_verifier": self.verifier,
        }
        form.update(overrides)
        return await self.c.post(
            "/auth/token", data={k: v for k, v in form.items() if v is not None}, headers=FORM
        )

    async def refresh(self, refresh_token: str, client_id: str = "portal") -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        return await self.c.post("/auth/token", data=form, headers=FORM)
