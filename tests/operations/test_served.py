"""End to end through real HTTP: `nphies-facade serve` on loopback with its sandbox simulator, and a
restart that resumes a Task's schedule against an `nphies-facade simulator` process."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ..integration.conftest import free_port, wait_until_ready
from .helpers import SIMULATOR, exchanges, outputs, read, set_faults, step, task_path, wait_for_task
from .material import ELIGIBILITY, INSTITUTIONAL_PA, NOT_ACTIVE, UNKNOWN, VISION_CLAIM, material, store

ROOT = Path(__file__).resolve().parents[2]
FAST = {
    "NPHIES_FACADE_AUTH": "off",
    "NPHIES_FACADE_RATE_LIMIT": "0",
    "NPHIES_FACADE_LOG_LEVEL": "warning",
    "NPHIES_FACADE_NPHIES_POLL_SCHEDULE": "0.2,0.5",
    "NPHIES_FACADE_NPHIES_RETRY_SCHEDULE": "0.1",
    "NPHIES_FACADE_NPHIES_TIMEOUT": "3",
    "NPHIES_FACADE_NPHIES_BACKOFF": "0.01",
    "NPHIES_FACADE_NPHIES_SWEEP_INTERVAL": "0.5",
}


class Served:
    def __init__(self, data_dir: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(data_dir)]
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, env={**os.environ, **FAST, **env}, cwd=ROOT, stdout=sink, stderr=sink
            )
        wait_until_ready(self.url, self.process)

    def stop(self, kill: bool = False) -> None:
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=15)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    server = Served(folder / "data", folder / "serve.log")
    yield server
    server.stop()


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) as c:
        yield c
        await c.delete(f"{SIMULATOR}/__simulator/faults")


async def test_capability_statement_and_start_up_log_say_the_sandbox_is_in_use(client, served) -> None:
    statement = (await client.get("/metadata")).json()
    assert statement["extension"] == [
        {"url": "urn:nphies-facade:extension:nphies-sandbox", "valueBoolean": True}
    ]
    assert "NPHIES SANDBOX" in statement["implementation"]["description"]
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert [o["name"] for o in resources["Claim"]["operation"]] == ["submit", "cancel", "validate"]
    assert [o["name"] for o in resources["Coverage"]["operation"]] == ["eligibility", "validate"]
    assert "SANDBOX" in resources["Task"]["operation"][0]["documentation"]
    assert "NPHIES SANDBOX" in served.log.read_text()


async def test_eligibility_over_http(client) -> None:
    answers = {}
    for member in (None, NOT_ACTIVE, UNKNOWN):
        found = material(ELIGIBILITY, **({"member": member} if member else {}))
        await store(client, found)
        response = await client.post(f"/{found.coverage}/$eligibility")
        assert response.status_code == 200, response.text
        answers[member] = response.json()
        if member is None:
            again = await client.post(f"/{found.coverage}/$eligibility")
            assert (again.headers["x-cache"], again.json()["id"]) == ("HIT", response.json()["id"])
    assert answers[None]["insurance"][0]["inforce"] is True
    assert answers[NOT_ACTIVE]["insurance"][0]["inforce"] is False
    assert answers[UNKNOWN]["outcome"] == "error"


async def test_submit_over_http_polls_a_queued_answer_to_completion(client) -> None:
    found = material(INSTITUTIONAL_PA, priority="deferred")
    await store(client, found)
    task = await wait_for_task(client, task_path(await client.post(f"/{found.claim}/$submit")))
    assert (task["status"], step(task)) == ("completed", "answered")
    assert (await read(client, outputs(task, "claim-response")[0]["reference"]))["outcome"] == "complete"


async def test_injected_faults_over_http(client) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    await set_faults(client, {"kind": "error", "status": 502, "events": ["eligibility-request"]})
    assert (await client.post(f"/{found.coverage}/$eligibility")).status_code == 502
    await set_faults(client, {"kind": "error", "status": 503, "events": ["claim-request"], "limit": 1})
    claim = material(VISION_CLAIM)
    await store(client, claim)
    task = await wait_for_task(client, task_path(await client.post(f"/{claim.claim}/$submit")))
    assert task["status"] == "completed"
    assert [event for event, _ in await exchanges(client, task)] == [
        "claim-request",
        "status-check",
        "claim-request",
    ]


async def test_a_restarted_server_resumes_the_schedule_of_a_task(tmp_path, simulator_process) -> None:
    """The first server is killed while its Task waits for the next poll; the next one polls on time."""
    env = {"NPHIES_FACADE_NPHIES_URL": simulator_process, "NPHIES_FACADE_NPHIES_POLL_SCHEDULE": "3"}
    first = Served(tmp_path / "data", tmp_path / "first.log", **env)
    headers = {"Content-Type": "application/fhir+json"}
    try:
        async with httpx.AsyncClient(base_url=first.url, headers=headers, timeout=30) as client:
            statement = (await client.get("/metadata")).json()
            assert statement["extension"][0]["valueBoolean"] is False
            found = material(INSTITUTIONAL_PA, priority="deferred")
            await store(client, found)
            path = task_path(await client.post(f"/{found.claim}/$submit"))
            while step(task := (await client.get(path)).json()) != "pended":
                assert task["status"] != "failed", task
                await asyncio.sleep(0.05)
    finally:
        first.stop(kill=True)
    second = Served(tmp_path / "data", tmp_path / "second.log", **env)
    try:
        async with httpx.AsyncClient(base_url=second.url, headers=headers, timeout=30) as client:
            task = await wait_for_task(client, path, seconds=20)
            assert task["status"] == "completed", task
            assert [e for e, _ in await exchanges(client, task)] == ["priorauth-request", "poll-request"]
    finally:
        second.stop()
