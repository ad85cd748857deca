"""The NPHIES simulator as a real server on loopback (uvicorn in a background thread, once per session)."""

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import uvicorn

from nphies_facade.nphies.gateway import GatewaySettings, NphiesGateway
from nphies_facade.nphies.simulator import SimulatorSettings, create_simulator_app

from .samples import EXAMPLES

# The tests read the NPHIES material in ../shared/nphies; without it there is nothing to test against.
collect_ignore_glob = [] if EXAMPLES.is_dir() else ["test_*.py"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_simulator_app(SimulatorSettings()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the simulator did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
async def control(simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator's control API (faults, APA); faults are cleared after each test."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=5) as client:
        yield client
        await client.delete("/__simulator/faults")


@pytest.fixture
def provider() -> str:
    """A provider license of its own for each test, so faults and queues never cross tests."""
    return f"PR-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_gateway(simulator_url: str) -> Callable[..., NphiesGateway]:
    def make(**overrides) -> NphiesGateway:
        settings = {"base_url": simulator_url, "timeout": 5.0, "retries": 2, "backoff": 0.01, **overrides}
        return NphiesGateway(GatewaySettings(**settings))

    return make


@pytest.fixture
async def gateway(make_gateway) -> AsyncIterator[NphiesGateway]:
    async with make_gateway() as client:
        yield client
