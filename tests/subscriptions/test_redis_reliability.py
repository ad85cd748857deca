"""The production shape: an API server and `nphies-facade worker` processes with jobs on a real Redis.

The store is the truth and Redis only transport: a worker killed mid-job, a flushed Redis and a
restarted Redis lose no job and run no side effect twice.
"""

import asyncio
import sqlite3
import uuid

import httpx
import pytest

from .conftest import eventually, rest_hook, subscribe
from .workflow_fixtures import JOB_SYSTEM

pytest.importorskip("arq")
pytestmark = pytest.mark.integration


def workflow_subscription(workflow: str, criteria: str) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "test workflow",
        "criteria": criteria,
        "channel": {"type": "message", "endpoint": f"urn:nphies-facade:workflow:{workflow}"},
    }


def patient(system: str, marker: str) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": system, "value": marker}]}


async def side_effects(api: httpx.AsyncClient, prefix: str) -> dict[str, int]:
    """Basic resources the handlers created, counted by key (a key seen twice is a side effect twice)."""
    counts: dict[str, int] = {}
    cursor = "/Basic/_history?_count=1000"
    while cursor:
        page = (await api.get(cursor)).json()
        for entry in page.get("entry", []):
            resource = entry.get("resource") or {}
            if resource.get("meta", {}).get("versionId") != "1":
                continue
            for identifier in resource.get("identifier", []):
                if identifier["system"] == JOB_SYSTEM and identifier["value"].startswith(prefix):
                    counts[identifier["value"]] = counts.get(identifier["value"], 0) + 1
        cursor = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    return counts


def job_rows(data_dir, prefix: str) -> list[tuple]:
    with sqlite3.connect(f"file:{data_dir}/nphies-facade.sqlite3?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT job_id, state, attempts FROM jobs WHERE job_id LIKE ? ORDER BY seq", (prefix + "%",)
        ).fetchall()


async def test_a_worker_killed_mid_job_completes_it_once_after_restart(arq_stack):
    marker = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=arq_stack.url) as api:
        sub = await subscribe(
            api, workflow_subscription("test-slow", f"Patient?identifier=urn:test:kill|{marker}")
        )
        await api.post("/Patient", json=patient("urn:test:kill", marker))
        prefix = f"wf:{sub}:"

        async def started() -> bool:
            return any(key.endswith(":started") for key in await side_effects(api, prefix))

        await eventually(started, what="the slow job to start")
        arq_stack.worker.kill()
        arq_stack.worker = arq_stack.new_worker()
        arq_stack.worker.start()

        async def done() -> bool:
            return any(key.endswith(":done") for key in await side_effects(api, prefix))

        await eventually(done, within=60, what="the job to complete after the restart")
        effects = await side_effects(api, prefix)
        assert sorted(k.rsplit(":", 1)[1] for k in effects) == ["done", "started"]
        assert set(effects.values()) == {1}
        [(job_id, state, attempts)] = job_rows(arq_stack.data_dir, prefix)
        assert (state, attempts) == ("done", 2)


async def test_flushing_redis_with_jobs_pending_loses_none(arq_stack, receiver):
    marker = uuid.uuid4().hex
    criteria = f"Patient?identifier=urn:test:flush|{marker}"
    async with httpx.AsyncClient(base_url=arq_stack.url) as api:
        sub = await subscribe(api, workflow_subscription("test-slowish", criteria))
        hook = await subscribe(api, rest_hook(receiver.url + "/hook", criteria))
        for _ in range(40):
            await api.post("/Patient", json=patient("urn:test:flush", marker))

        async def queued() -> bool:
            return int(arq_stack.redis.command("ZCARD", "nphies-facade:jobs").split(b":")[1]) > 8

        await eventually(queued, what="jobs waiting in Redis")
        assert arq_stack.redis.command("FLUSHALL").startswith(b"+OK")
        prefix = f"wf:{sub}:"

        async def all_done() -> bool:
            return len(await side_effects(api, prefix)) == 40

        await eventually(all_done, within=60, what="all 40 jobs after the flush")
        assert set((await side_effects(api, prefix)).values()) == {1}
        assert {state for _, state, _ in job_rows(arq_stack.data_dir, prefix)} == {"done"}
        await receiver.wait_for(lambda: receiver.numbers(hook) == list(range(1, 41)))


async def test_restarting_redis_with_jobs_pending_loses_none(arq_stack):
    marker = uuid.uuid4().hex
    criteria = f"Patient?identifier=urn:test:restart|{marker}"
    async with httpx.AsyncClient(base_url=arq_stack.url) as api:
        sub = await subscribe(api, workflow_subscription("test-slowish", criteria))
        for _ in range(20):
            await api.post("/Patient", json=patient("urn:test:restart", marker))
        arq_stack.redis.stop()
        for _ in range(10):
            await api.post("/Patient", json=patient("urn:test:restart", marker))
        await asyncio.sleep(1.0)
        arq_stack.redis.start()
        prefix = f"wf:{sub}:"

        async def all_done() -> bool:
            return len(await side_effects(api, prefix)) == 30

        await eventually(all_done, within=60, what="all 30 jobs after the restart")
        assert set((await side_effects(api, prefix)).values()) == {1}
        assert arq_stack.worker.running
