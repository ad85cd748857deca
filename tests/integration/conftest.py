"""Real server processes on loopback, started once per session."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become ready")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    data_dir: Path = tmp_path_factory.mktemp("server-data")
    cli = [
        sys.executable,
        "-m",
        "nphies_facade.server.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    env = {**os.environ, "NPHIES_FACADE_LOG_LEVEL": "warning", "NPHIES_FACADE_AUTH": "off"}
    process = subprocess.Popen(cli, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
