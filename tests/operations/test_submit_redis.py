"""$submit with Redis (NPHIES_FACADE_REDIS_URL): the API server only enqueues the Task's steps on the arq
queue; a real `nphies-facade worker` process runs them, polls queued answers, and a restarted worker
resumes what was waiting."""

import asyncio
import shutil
from collections.abc import Iterator

import pytest

from ..integration.conftest import free_port
from ..subscriptions.conftest import RedisServer
from ..subscriptions.processes import Worker
from .conftest import fast_settings, serving
from .helpers import handled, outputs, step, task_path, wait_for_task
from .material import INSTITUTIONAL_PA, ORAL_CLAIM, material, store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; steps on arq are not tested")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


def worker_env(settings) -> dict[str, str]:
    names = (
        "base_url",
        "auth",
        "redis_url",
        "nphies_url",
        "nphies_poll_schedule",
        "nphies_timeout",
        "nphies_connect_timeout",
        "nphies_backoff",
        "nphies_max_backoff",
        "nphies_sweep_interval",
        "nphies_retry_schedule",
    )
    values = {name: getattr(settings, name) for name in names}
    env = {f"NPHIES_FACADE_{name.upper()}": str(value) for name, value in values.items() if value is not None}
    return {**env, "NPHIES_FACADE_QUEUE_POLL_INTERVAL": "0.05"}


async def test_the_worker_runs_the_steps_the_api_server_enqueued(redis, tmp_path) -> None:
    settings = fast_settings(tmp_path / "data", redis_url=redis.url)
    worker = Worker(settings.data_dir, worker_env(settings))
    async with serving(settings) as client:
        found = material(ORAL_CLAIM)
        await store(client, found)
        submitted = await client.post(f"/{found.claim}/$submit")
        assert submitted.status_code == 202, submitted.text
        path = task_path(submitted)
        await asyncio.sleep(1.0)
        waiting = (await client.get(path)).json()
        assert (waiting["status"], step(waiting)) == ("requested", "queued")  # no worker: nothing ran

        worker.start()
        try:
            task = await wait_for_task(client, path, seconds=30)
            assert task["status"] == "completed", task
            assert outputs(task, "claim-response")
            # The API server's own sandbox simulator saw no claim: the worker sent it.
            assert (await handled(client)).get("claim-request", 0) == 0
        finally:
            worker.stop()


async def test_a_queued_answer_is_polled_by_a_restarted_worker(redis, tmp_path, simulator_process) -> None:
    """NPHIES (the simulator) in its own process, as in production: it keeps the queued answer while the
    worker is killed."""
    settings = fast_settings(
        tmp_path / "data", redis_url=redis.url, nphies_poll_schedule="1,1,1", nphies_url=simulator_process
    )
    worker = Worker(settings.data_dir, worker_env(settings))
    async with serving(settings) as client:
        found = material(INSTITUTIONAL_PA, priority="deferred")
        await store(client, found)
        submitted = await client.post(f"/{found.claim}/$submit")
        path = task_path(submitted)
        worker.start()
        try:
            for _ in range(300):
                task = (await client.get(path)).json()
                if outputs(task, "interim-response"):
                    break
                await asyncio.sleep(0.05)
            assert outputs(task, "interim-response"), task
            worker.kill()  # SIGKILL while the Task waits to poll
            worker.start()
            task = await wait_for_task(client, path, seconds=30)
            assert task["status"] == "completed", task
            assert outputs(task, "claim-response")
        finally:
            worker.stop()
