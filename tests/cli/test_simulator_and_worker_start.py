"""At start, `nphies-facade simulator` prints where it listens, and `nphies-facade worker` logs where
its NPHIES messages go: the simulator it is pointed at, or its own in-process sandbox simulator (not
the API server's URL, which is another simulator with another state)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.workflows.test_engine_redis import redis_url  # noqa: F401 (fixture)

from .server_process import run_cli

CLI = [sys.executable, "-m", "nphies_facade.server.cli"]


def _until_logged(process: subprocess.Popen, log: Path, text: str) -> str:
    deadline = time.monotonic() + 30
    while text not in (seen := log.read_text()):
        assert process.poll() is None, f"exited {process.returncode}:\n{seen}"
        assert time.monotonic() < deadline, f"{text!r} never came:\n{seen}"
        time.sleep(0.1)
    return seen


def _started(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    process = _started([*CLI, "simulator", "--port", str(port)], log)
    try:
        yield port, _until_logged(process, log, "listening on"), process
    finally:
        _stop(process)


def test_the_simulator_says_where_it_listens_and_answers_there(simulator):
    port, printed, _ = simulator
    base = f"http://127.0.0.1:{port}"
    assert f"NPHIES simulator listening on {base} (POST {base}/$process-message;" in printed
    assert f"point NPHIES_FACADE_NPHIES_URL at {base}" in printed
    deadline = time.monotonic() + 10
    while True:
        try:
            assert httpx.get(f"{base}/health").status_code == 200
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _worker_log(tmp_path: Path, redis: str, expected: str, **env: str) -> str:
    data_dir = tmp_path / "data"
    assert run_cli("db", "init", "--data-dir", str(data_dir)).code == 0
    log = tmp_path / "worker.log"
    command = [*CLI, "worker", "--data-dir", str(data_dir), "--redis-url", redis]
    process = _started(command, log, {"NPHIES_FACADE_LOG_LEVEL": "info", **env})
    try:
        return _until_logged(process, log, expected)
    finally:
        _stop(process)


def test_a_worker_pointed_at_the_simulator_names_its_url(simulator, redis_url, tmp_path):  # noqa: F811
    port = simulator[0]
    url = f"http://127.0.0.1:{port}"
    logged = _worker_log(tmp_path, redis_url, "NPHIES: messages go to", NPHIES_FACADE_NPHIES_URL=url)
    assert f"NPHIES: messages go to {url} as provider" in logged


def test_a_sandbox_worker_says_its_simulator_is_its_own(redis_url, tmp_path):  # noqa: F811
    logged = _worker_log(tmp_path, redis_url, "NPHIES SANDBOX")
    assert "this worker sends messages to its own embedded simulator (in this process, not the API" in logged
    assert "messages go to the embedded simulator at" not in logged
