"""A step advances its instance once, whatever runs it: a redelivered job, a second worker on the same
store, or a server killed with SIGKILL in the middle of a step and started again."""

import asyncio
from datetime import timedelta

import httpx

from nphies_facade.workflows.engine import Engine, step_job_id
from nphies_facade.workflows.instances import timeline

from ..subscriptions.processes import Server
from .engine_support import (
    FHIR_JSON,
    effects,
    ended,
    events,
    eventually,
    history,
    instance_when,
    step_of,
    toy_env,
    toy_server,
    trigger,
)


async def test_a_redelivered_job_and_a_second_worker_advance_the_instance_once(tmp_path):
    # No periodic sweep: the test delivers the step job itself, several times at once.
    async with toy_server(tmp_path / "data", sweep_interval=3600) as toys:
        subject = await toys.trigger("toy-wait")

        def waiting(task: dict) -> bool:
            return step_of(task) == "wake" and task["status"] == "in-progress"

        task = await instance_when(toys.client, "toy-wait", subject, waiting, "the instance waits")
        job = step_job_id(task["id"], "wake", int(task["meta"]["versionId"]))
        toys.clock.advance(timedelta(hours=2))
        second_worker = Engine(toys.engine.service, toys.clock, runs_jobs=False)
        results = await asyncio.gather(
            toys.engine.run(job), toys.engine.run(job), second_worker.run(job), second_worker.run(job)
        )
        assert results == [None] * 4
        assert await toys.engine.run(job) is None  # a late redelivery finds a newer version

        task = (await toys.client.get(f"/Task/{task['id']}")).json()
        assert task["status"] == "completed"
        versions = await history(toys.client, task["id"])
        assert [(step_of(v), v["status"]) for v in versions] == [
            ("nap", "in-progress"),
            ("wake", "in-progress"),
            ("wake", "completed"),
        ]
        assert len(await events(toys.client, "workflow.completed", f"Task/{task['id']}")) == 1
        assert await effects(toys.client, subject) == ["woke"]


async def test_a_server_killed_mid_step_completes_the_instance_once_after_restart(tmp_path):
    env = {**toy_env(), "TOY_SLOW_SECONDS": "3"}
    data = tmp_path / "data"
    server = Server(data, env)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"Content-Type": FHIR_JSON}) as client:
            subject = await trigger(client, "toy-slow")

            async def started() -> bool:
                return "slow-started-1" in await effects(client, subject)

            await eventually(started, "the slow step to start")
        server.kill()

        server = Server(data, env)
        server.start()
        async with httpx.AsyncClient(base_url=server.url, headers={"Content-Type": FHIR_JSON}) as client:
            task = await instance_when(
                client, "toy-slow", subject, ended, "the instance completes after restart"
            )
            assert task["status"] == "completed"
            versions = await history(client, task["id"])
            assert [(step_of(v), v["status"]) for v in versions] == [
                ("slow", "in-progress"),
                ("record", "in-progress"),
                ("record", "completed"),
            ]
            assert [r.step for r in timeline(task)] == ["slow", "record"]
            assert await effects(client, subject) == ["recorded", "slow-started-1"]
            found = await client.get("/Task", params={"focus": subject})
            assert len(found.json().get("entry", [])) == 1
            assert len(await events(client, "workflow.completed", f"Task/{task['id']}")) == 1
    finally:
        server.stop()
