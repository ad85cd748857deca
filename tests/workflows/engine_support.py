"""The engine tests' server: the app with the toy workflows, served by uvicorn on loopback (real HTTP) in the
test's event loop, on a virtual clock; and helpers to start toy instances and follow their Tasks."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings
from nphies_facade.subscriptions.topics import EVENT_SYSTEM
from nphies_facade.workflows.dsl import STEP_SYSTEM, WORKFLOW_SYSTEM
from nphies_facade.workflows.engine import Engine
from nphies_facade.workflows.journeys.harness import VirtualClock, free_port

from . import toy_workflows

FHIR_JSON = "application/fhir+json"
TOY_MODULE = "tests.workflows.toy_registered"
TOY_SYSTEM = "urn:test:toy"
EFFECT_SYSTEM = "urn:test:toy-effect"


def ended(task: dict) -> bool:
    return task["status"] in ("completed", "failed", "cancelled")


def toy_env() -> dict[str, str]:
    """Settings for a toy server process: fast relay, sweeps and retries."""
    return {
        "NPHIES_FACADE_AUTH": "off",
        "NPHIES_FACADE_WORKFLOW_MODULES": TOY_MODULE,
        "NPHIES_FACADE_RELAY_POLL_INTERVAL": "0.01",
        "NPHIES_FACADE_RECONCILE_INTERVAL": "0.2",
        "NPHIES_FACADE_RETRY_INITIAL": "0.05",
        "NPHIES_FACADE_WORKFLOW_SWEEP_INTERVAL": "0.2",
        "NPHIES_FACADE_RATE_LIMIT": "0",
    }


@dataclass
class Toys:
    client: httpx.AsyncClient
    clock: VirtualClock
    app: object

    @property
    def engine(self) -> Engine:
        return self.app.state.workflows  # type: ignore[attr-defined]

    async def trigger(self, workflow: str) -> str:
        """Writes the Basic that starts `workflow`; returns its reference (the instance's subject)."""
        return await trigger(self.client, workflow)


async def trigger(client: httpx.AsyncClient, workflow: str) -> str:
    basic = {"resourceType": "Basic", "code": {"coding": [{"system": TOY_SYSTEM, "code": workflow}]}}
    response = await client.post("/Basic", json=basic)
    assert response.status_code == 201, response.text
    return f"Basic/{response.json()['id']}"


@asynccontextmanager
async def toy_server(
    data_dir: Path, sweep_interval: float = 0.2, clock: VirtualClock | None = None
) -> AsyncIterator[Toys]:
    clock = clock or VirtualClock()
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        base_url=f"http://127.0.0.1:{port}",
        auth="off",
        rate_limit=0,
        relay_poll_interval=0.01,
        reconcile_interval=0.2,
        retry_initial=0.05,
        workflow_sweep_interval=sweep_interval,
        log_level="warning",
    )
    toy_workflows.install()
    app = create_app(settings, clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as client:
            await toy_people(client)
            yield Toys(client, clock, app)
    finally:
        server.should_exit = True
        await serving
        toy_workflows.uninstall()


async def toy_people(client: httpx.AsyncClient) -> None:
    """The reviewer and supervisor the toy workflows' human steps are owned by (referential integrity:
    a Task's owner must exist)."""
    for reference in (toy_workflows.REVIEWER, toy_workflows.SUPERVISOR):
        resource_type, resource_id = reference.split("/")
        answer = await client.put(f"/{reference}", json={"resourceType": resource_type, "id": resource_id})
        assert answer.status_code in (200, 201), answer.text


def entries(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "outcome"]


async def eventually(check: Callable[[], Awaitable[object]], what: str, seconds: float = 20.0) -> object:
    """The first truthy result of `check`, polled until `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not reached within {seconds} s"
        await asyncio.sleep(0.05)


async def instances(client: httpx.AsyncClient, workflow: str, subject: str) -> list[dict]:
    found = await client.get("/Task", params={"code": f"{WORKFLOW_SYSTEM}|{workflow}", "focus": subject})
    assert found.status_code == 200, found.text
    return entries(found.json())


async def instance_when(
    client: httpx.AsyncClient, workflow: str, subject: str, check: Callable[[dict], bool], what: str
) -> dict:
    async def found() -> dict | None:
        tasks = await instances(client, workflow, subject)
        return tasks[0] if tasks and check(tasks[0]) else None

    return await eventually(found, what)  # type: ignore[return-value]


def step_of(task: dict) -> str:
    return next(c["code"] for c in task["businessStatus"]["coding"] if c["system"] == STEP_SYSTEM)


def output(task: dict, name: str) -> object:
    for entry in task.get("output") or []:
        if entry["type"].get("text") == name:
            return next(v for k, v in entry.items() if k.startswith("value"))
    return None


async def events(client: httpx.AsyncClient, name: str, subject: str) -> list[dict]:
    found = await client.get("/Basic", params={"code": f"{EVENT_SYSTEM}|{name}", "subject": subject})
    assert found.status_code == 200, found.text
    return entries(found.json())


async def effects(client: httpx.AsyncClient, subject: str) -> list[str]:
    """The side effects toy steps recorded about a subject (one Basic each)."""
    found = await client.get("/Basic", params={"subject": subject, "_count": "100"})
    return sorted(
        b["code"]["text"]
        for b in entries(found.json())
        if any(i.get("system") == EFFECT_SYSTEM for i in b.get("identifier", []))
    )


async def person_tasks(client: httpx.AsyncClient, instance_id: str) -> list[dict]:
    found = await client.get("/Task", params={"part-of": f"Task/{instance_id}"})
    assert found.status_code == 200, found.text
    return entries(found.json())


async def history(client: httpx.AsyncClient, task_id: str) -> list[dict]:
    """The versions of a Task, oldest first."""
    found = await client.get(f"/Task/{task_id}/_history", params={"_count": "100"})
    assert found.status_code == 200, found.text
    return list(reversed([e["resource"] for e in found.json().get("entry", []) if "resource" in e]))


def parameters(**values: str) -> dict:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, "valueString": value} for name, value in values.items()],
    }
