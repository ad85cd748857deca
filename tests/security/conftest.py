"""Security fixtures: an app with authentication on, an external issuer whose JWKS is served over real
HTTP on loopback, test keys, and helpers that mint tokens and client assertions."""

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

BASE = "http://fhir.test"
ISSUER = "https://issuer.test/realms/nphies"
FHIR_JSON = "application/fhir+json"


@dataclass
class SigningKey:
    private: object
    kid: str
    algorithm: str

    def public_jwk(self) -> dict:
        algorithm = RSAAlgorithm if self.algorithm.startswith("RS") else ECAlgorithm
        jwk = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **(headers or {})}
        )


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-1", "RS256")


@pytest.fixture(scope="session")
def rotated_key() -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-2", "RS256")


@pytest.fixture(scope="session")
def client_key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP384R1()), "client-es384", "ES384")


@dataclass
class JwksServer:
    """A real HTTP server on loopback publishing `keys` at /jwks.json and counting fetches."""

    url: str
    keys: list[dict] = field(default_factory=list)
    fetches: int = 0


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    state = JwksServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            state.fetches += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def published(jwks_server: JwksServer, rsa_key: SigningKey) -> JwksServer:
    jwks_server.keys = [rsa_key.public_jwk()]
    jwks_server.fetches = 0
    return jwks_server


class VirtualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def secure_settings(tmp_path: Path, published: JwksServer) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        base_url=BASE,
        auth="on",
        auth_issuer=ISSUER,
        auth_jwks_url=published.url,
        rate_limit=0,
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def secure_app(secure_settings: Settings, clock: VirtualClock) -> AsyncIterator:
    application = create_app(secure_settings, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def anon(secure_app) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the secured app that sends no token unless a test passes one."""
    transport = httpx.ASGITransport(app=secure_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    ) as c:
        yield c


@pytest.fixture
def mint(rsa_key: SigningKey, clock: VirtualClock):
    """mint(scope=..., **claims) -> an access token of the external issuer, valid for five minutes."""

    def make(
        scope: str = "system/*.cruds", key: SigningKey | None = None, headers: dict | None = None, **claims
    ):
        now = int(clock().timestamp())
        payload = {
            "iss": ISSUER,
            "sub": claims.pop("sub", "test-client"),
            "aud": BASE,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "scope": scope,
            "client_id": claims.pop("client_id", "test-client"),
            **claims,
        }
        return (key or rsa_key).sign({k: v for k, v in payload.items() if v is not None}, headers)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def as_token(anon: httpx.AsyncClient, mint):
    """as_token(scope, **claims) -> an httpx client sending that token."""

    def client(scope: str = "system/*.cruds", **claims) -> httpx.AsyncClient:
        anon_headers = dict(anon.headers)
        return httpx.AsyncClient(
            transport=anon._transport,
            base_url=BASE,
            headers={**anon_headers, **bearer(mint(scope, **claims))},
        )

    return client


def patient(patient_id: str | None = None, family: str = "Alharbi", **extra) -> dict:
    body = {"resourceType": "Patient", "name": [{"family": family, "given": ["Noura"]}], **extra}
    if patient_id:
        body["id"] = patient_id
    return body


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
