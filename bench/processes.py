"""Starting and stopping the processes a benchmark measures: free ports, readiness, process-group stops."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nphies_facade.workflows.journeys.harness import free_port

__all__ = ["free_port", "group_cpu_seconds", "start_simulator", "stop", "wait_ready"]

ROOT = Path(__file__).resolve().parents[1]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 60.0) -> None:
    """Waits for `url` to answer 200; stops the process and raises if it exits or never answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{url} did not answer")


def stop(process: subprocess.Popen) -> None:
    """Ends a process started with start_new_session and what it started (uvicorn workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def start_simulator() -> tuple[subprocess.Popen, str]:
    """`nphies-facade simulator` in its own process, as NPHIES is another system; (process, base URL)."""
    port = free_port()
    command = [sys.executable, "-m", "nphies_facade.server.cli", "simulator", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", process)
    return process, url


def group_cpu_seconds(*groups: int) -> float:
    """CPU time (user + system) used so far by the processes of some process groups (the server's and
    its workers')."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:
            total += int(fields[11]) + int(fields[12])
    return total / ticks
