"""The production shape: an API server that only enqueues, a worker that runs trigger and step jobs from
Redis (arq), and a person's $approve on the API server resuming the instance in the worker."""

import shutil
from collections.abc import Iterator

import httpx
import pytest

from ..subscriptions.conftest import RedisServer
from ..subscriptions.processes import Server, Worker
from ..subscriptions.receiver import free_port
from .engine_support import (
    FHIR_JSON,
    ended,
    eventually,
    instance_when,
    instances,
    parameters,
    person_tasks,
    toy_env,
    toy_people,
    trigger,
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; the Redis mode is not tested")
    redis = RedisServer(free_port())
    redis.start()
    yield redis.url
    redis.stop()


async def test_instances_run_in_the_worker_and_resume_after_an_approval_on_the_api_server(
    tmp_path, redis_url
):
    env = {**toy_env(), "NPHIES_FACADE_REDIS_URL": redis_url}
    server, worker = Server(tmp_path / "data", env), Worker(tmp_path / "data", env)
    server.start()
    worker.start()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Content-Type": FHIR_JSON}, timeout=30
        ) as client:

            async def triggers_active() -> bool:
                # Installed by the API server at start-up, made active by the worker.
                found = (await client.get("/Subscription", params={"status": "active"})).json()
                criteria = " ".join(e["resource"]["criteria"] for e in found.get("entry", []))
                return "toy-happy" in criteria and "toy-human" in criteria and "decision" in criteria

            await eventually(triggers_active, "the worker's trigger Subscriptions", 60)
            await toy_people(client)
            happy = await trigger(client, "toy-happy")
            task = await instance_when(client, "toy-happy", happy, ended, "toy-happy completed by the worker")
            assert task["status"] == "completed"

            asked = await trigger(client, "toy-human")
            instance = await instance_when(
                client, "toy-human", asked, lambda t: t["status"] == "on-hold", "the instance waits"
            )
            [decision] = await person_tasks(client, instance["id"])
            response = await client.post(f"/Task/{decision['id']}/$approve", json=parameters(reason="ok"))
            assert response.status_code == 200, response.text
            task = await instance_when(client, "toy-human", asked, ended, "toy-human completed by the worker")
            assert task["status"] == "completed"
    finally:
        worker.stop()
        server.stop()


async def test_a_change_taken_before_the_worker_started_still_starts_its_instance(tmp_path, redis_url):
    env = {**toy_env(), "NPHIES_FACADE_REDIS_URL": redis_url}
    server, worker = Server(tmp_path / "data", env), Worker(tmp_path / "data", env)
    server.start()  # the API server installs the trigger Subscriptions itself
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Content-Type": FHIR_JSON}, timeout=30
        ) as client:
            early = await trigger(client, "toy-happy")
            worker.start()

            async def early_instance_ended() -> dict | None:
                found = await instances(client, "toy-happy", early)
                return found[0] if found and ended(found[0]) else None

            task = await eventually(early_instance_ended, "the early change's instance ends", 90)
            assert task["status"] == "completed"
    finally:
        worker.stop()
        server.stop()
