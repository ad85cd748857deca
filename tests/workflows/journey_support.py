"""The server with the journeys installed (journeys/harness.py: uvicorn on loopback, a virtual clock, the
embedded sandbox simulator), and helpers to follow journey Tasks over HTTP."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from nphies_facade.subscriptions.topics import EVENT_SYSTEM
from nphies_facade.workflows.journeys.harness import Harness, output, running, step_of

__all__ = ["Harness", "events", "journey_server", "output", "person_tasks", "settled", "step_of", "until"]


@asynccontextmanager
async def journey_server(data_dir: Path) -> AsyncIterator[Harness]:
    async with running(data_dir, http=True, nphies_poll_schedule="0.05,0.1,0.2") as harness:
        yield harness


async def settled(harness: Harness, workflow: str, subject: str, seconds: float = 30.0) -> dict:
    return await harness.settled(workflow, subject, seconds)


async def until(client: httpx.AsyncClient, path: str, check, seconds: float = 20.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        resource = (await client.get(path)).json()
        if check(resource):
            return resource
        assert time.monotonic() < deadline, f"{path} never got there: {resource}"
        await asyncio.sleep(0.05)


def _matches(bundle: dict) -> list[dict]:
    return [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]


async def events(client: httpx.AsyncClient, name: str, subject: str) -> list[dict]:
    found = await client.get("/Basic", params={"code": f"{EVENT_SYSTEM}|{name}", "subject": subject})
    assert found.status_code == 200, found.text
    return _matches(found.json())


async def person_tasks(client: httpx.AsyncClient, instance_id: str) -> list[dict]:
    found = await client.get("/Task", params={"part-of": f"Task/{instance_id}"})
    assert found.status_code == 200, found.text
    return _matches(found.json())
