"""Real server processes on loopback, started once per session."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def running_server(cli: list[str], url: str, env: dict[str, str], cwd: Path | None = None) -> Iterator[str]:
    """Runs the server command `cli` until the block ends; yields its `url` once it is ready."""
    process = subprocess.Popen(cli, env=env, cwd=cwd)
    try:
        wait_until_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve_command(port: int, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nphies_facade.server.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    data_dir: Path = tmp_path_factory.mktemp("server-data")
    env = {**os.environ, "NPHIES_FACADE_LOG_LEVEL": "warning", "NPHIES_FACADE_AUTH": "off"}
    with running_server(serve_command(port, data_dir), f"http://127.0.0.1:{port}", env) as url:
        yield url
