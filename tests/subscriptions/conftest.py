"""Fixtures of the subscription tests: fast retry settings, an in-process app, rest-hook receivers,
a real Redis (session), and helpers to wait for what a client would see."""

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

from .receiver import Receiver, free_port

FHIR_JSON = "application/fhir+json"
SECRET = "test-webhook-secret"

FAST = {
    "auth": "off",
    "retry_initial": 0.05,
    "retry_max": 0.2,
    "retry_window": 3600.0,
    "failures_before_error": 2,
    "delivery_timeout": 2.0,
    "relay_poll_interval": 0.01,
    "relay_lease_ttl": 3.0,
    "reconcile_interval": 0.2,
    "requeue_after": 1.0,
    "job_timeout": 5.0,
    "job_lease_grace": 1.0,
    "webhook_secret": SECRET,
    "workflow_modules": "tests.subscriptions.workflow_fixtures",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes tens of seconds (10,000 writes)")


def fast_env() -> dict[str, str]:
    return {f"NPHIES_FACADE_{name.upper()}": str(value) for name, value in FAST.items()}


@pytest.fixture
def sub_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", base_url="http://fhir.test", **FAST)


@pytest.fixture
async def sub_app(sub_settings: Settings) -> AsyncIterator:
    application = create_app(sub_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(sub_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sub_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://fhir.test",
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
    ) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(secret=SECRET).start()
    yield hook
    hook.stop()


def rest_hook(endpoint: str, criteria: str, *, payload: bool = False, **extra) -> dict:
    channel: dict = {"type": "rest-hook", "endpoint": endpoint}
    if payload:
        channel["payload"] = "application/fhir+json"
    channel.update(extra.pop("channel", {}))
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "test",
        "criteria": criteria,
        "channel": channel,
        **extra,
    }


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.05)


async def status_of(client: httpx.AsyncClient, subscription_id: str) -> str:
    response = await client.get(f"/Subscription/{subscription_id}")
    return response.json().get("status", "")


async def wait_status(
    client: httpx.AsyncClient, subscription_id: str, wanted: str, within: float = 20.0
) -> None:
    async def reached() -> bool:
        return await status_of(client, subscription_id) == wanted

    await eventually(reached, within, f"Subscription/{subscription_id} status {wanted}")


async def subscribe(client: httpx.AsyncClient, subscription: dict, active: bool = True) -> str:
    response = await client.post("/Subscription", json=subscription)
    assert response.status_code == 201, response.text
    subscription_id = response.json()["id"]
    if active:
        await wait_status(client, subscription_id, "active")
    return subscription_id


def status_parameter(bundle: dict, name: str) -> list:
    parameters = bundle["entry"][0]["resource"]["parameter"]
    return [p for p in parameters if p["name"] == name]


# ----- Redis -----


class RedisServer:
    """A throwaway redis-server on a free port, without persistence: a restart loses everything."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def ping(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall((" ".join(words) + "\r\n").encode())
            return sock.recv(65536)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); Redis tests skipped")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


# ----- real processes -----


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory) -> Iterator[str]:
    """`nphies-facade serve` in the embedded mode (relay and jobs in the server), fast retry settings."""
    from .processes import Server

    server = Server(tmp_path_factory.mktemp("embedded"), fast_env())
    server.start()
    yield server.url
    server.stop()


class ArqStack:
    """Redis, an API server that does not relay (NPHIES_FACADE_REDIS_URL set) and a worker process."""

    def __init__(self, redis: RedisServer, data_dir: Path) -> None:
        from .processes import Server, Worker

        env = {**fast_env(), "NPHIES_FACADE_REDIS_URL": redis.url, "TEST_SLOW_JOB_SECONDS": "3"}
        self.redis = redis
        self.data_dir = data_dir
        self.server = Server(data_dir, env)
        self.worker = Worker(data_dir, env)
        self.env = env

    @property
    def url(self) -> str:
        return self.server.url

    def new_worker(self):
        from .processes import Worker

        return Worker(self.data_dir, self.env)


@pytest.fixture(scope="session")
def arq_stack(redis_server: RedisServer, tmp_path_factory) -> Iterator[ArqStack]:
    stack = ArqStack(redis_server, tmp_path_factory.mktemp("arq"))
    stack.server.start()
    stack.worker.start()
    yield stack
    stack.worker.stop()
    stack.server.stop()


@pytest.fixture
async def http_client(embedded_server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=embedded_server, headers={"Accept": FHIR_JSON}) as client:
        yield client
