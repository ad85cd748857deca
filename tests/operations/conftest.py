"""The server in process (ASGI) with its sandbox simulator, authentication off, fast poll schedule."""

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

from ..integration.conftest import free_port
from ..nphies.samples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
FHIR_JSON = "application/fhir+json"
SIMULATOR = "/_simulator/nphies"

# The material comes from ../shared/nphies; without it there is nothing to test against.
collect_ignore_glob = [] if EXAMPLES.is_dir() else ["test_*.py"]


def fast_settings(data_dir: Path, **overrides) -> Settings:
    values = {
        "data_dir": data_dir,
        "base_url": "http://fhir.test",
        "auth": "off",
        "rate_limit": 0,
        "nphies_poll_schedule": "0.1,0.2,0.3",
        "nphies_timeout": 2.0,
        "nphies_connect_timeout": 1.0,
        "nphies_backoff": 0.01,
        "nphies_max_backoff": 0.05,
        "nphies_sweep_interval": 0.5,
        "nphies_retry_schedule": "0.1,0.2",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return fast_settings(tmp_path_factory.mktemp("operations") / "data")


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on `settings`, for as long as the block runs."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://fhir.test",
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
            timeout=30,
        ) as c:
            yield c


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One app per test module (every test stores resources of its own, under fresh ids)."""
    async with serving(settings) as c:
        yield c


@pytest.fixture
async def faults(client: httpx.AsyncClient) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Sets the simulator's fault rules (each a dict) for one test; they are cleared after it."""

    async def set_faults(*rules: dict) -> None:
        response = await client.put(f"{SIMULATOR}/__simulator/faults", json=list(rules))
        assert response.status_code == 200, response.text

    yield set_faults
    await client.delete(f"{SIMULATOR}/__simulator/faults")


@pytest.fixture
async def impatient_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Gives NPHIES 0.3 s per attempt and one retry, for tests of timeouts."""
    settings = fast_settings(
        tmp_path / "impatient", nphies_timeout=0.3, nphies_connect_timeout=0.2, nphies_retries=1
    )
    async with serving(settings) as c:
        yield c


@pytest.fixture
def simulator_process() -> Iterator[str]:
    """`nphies-facade simulator` in its own process; its URL."""
    port = free_port()
    command = [sys.executable, "-m", "nphies_facade.server.cli", "simulator", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
