"""A server with the journeys installed, in this process, for the demo, the simulation and the benchmark:
served over loopback HTTP (uvicorn) or called in process (ASGI), on a clock the caller may move."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ...server.app import create_app
from ...server.settings import Settings
from ..dsl import WORKFLOW_SYSTEM
from ..timeline_report import event_name, events_about, output, step_of  # noqa: F401 (re-exported)
from . import install, synthetic

FHIR_JSON = "application/fhir+json"
RUNNING = frozenset({"requested", "received", "accepted", "ready", "in-progress"})


class VirtualClock:
    """Real time plus an offset that only moves forward (`advance`): SLA hours pass in an instant."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for(data_dir: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "base_url": base_url,
        "auth": "off",
        "rate_limit": 0,
        "log_level": "warning",
        "nphies_poll_schedule": "0.05,0.1,0.2,0.5,1",
        "nphies_retry_schedule": "0.1,0.2,0.5",
        "nphies_sweep_interval": 0.5,
        "workflow_sweep_interval": 0.5,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Harness:
    client: httpx.AsyncClient
    app: Any
    clock: VirtualClock
    parties: synthetic.Parties = field(default_factory=synthetic.Parties)

    @property
    def engine(self) -> Any:
        return self.app.state.workflows

    def registration(self, **options: Any) -> synthetic.Registration:
        return synthetic.Registration(self.parties, self.clock().date(), **options)

    async def post(self, resources: list[dict]) -> None:
        response = await self.client.post("/", json=synthetic.transaction(resources))
        if response.status_code != 200:
            raise RuntimeError(f"the transaction was refused ({response.status_code}): {response.text[:500]}")

    async def instance(self, workflow: str, subject: str) -> dict | None:
        found = await self.client.get(
            "/Task", params={"code": f"{WORKFLOW_SYSTEM}|{workflow}", "focus": subject}
        )
        found.raise_for_status()
        return next((e["resource"] for e in found.json().get("entry", []) if _match(e)), None)

    async def settled(
        self, workflow: str, subject: str, seconds: float = 60.0, done: Callable[[dict], bool] | None = None
    ) -> dict:
        """The instance once it has stopped running steps (ended, or on hold for a person)."""
        done = done or (lambda t: t["status"] not in RUNNING)
        deadline = time.monotonic() + seconds
        pause = 0.01
        while True:
            task = await self.instance(workflow, subject)
            if task is not None and done(task):
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {workflow} journey of {subject} did not settle in {seconds:.0f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.25)

    async def events(self, subject: str) -> list[dict]:
        return await events_about(self.client, subject)

    async def simulator(self, path: str, method: str = "GET", body: Any = None) -> httpx.Response:
        return await self.client.request(method, f"/_simulator/nphies/__simulator/{path}", json=body)


def _match(entry: dict) -> bool:
    return entry.get("search", {}).get("mode", "match") == "match"


@asynccontextmanager
async def running(data_dir: Path, http: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
    """The server with the journeys, for as long as the block runs (uvicorn on loopback when `http`)."""
    install.install()
    clock = VirtualClock()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(settings_for(data_dir, base, **overrides), clock)
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    try:
        if http:
            async with (
                _uvicorn(app, port),
                httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client,
            ):
                yield await _ready(Harness(client, app, clock))
        else:
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url=base, headers=headers, timeout=60) as client,
            ):
                yield await _ready(Harness(client, app, clock))
    finally:
        install.uninstall()


async def _ready(harness: Harness) -> Harness:
    await harness.post(harness.parties.resources())
    return harness


@asynccontextmanager
async def _uvicorn(app: Any, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await serving
