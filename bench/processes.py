"""Starting and stopping the processes a benchmark measures: free ports, readiness, process-group stops."""

import contextlib
import os
import signal
import subprocess
import time

import httpx

from nphies_facade.workflows.journeys.harness import free_port

__all__ = ["free_port", "stop", "wait_ready"]


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
