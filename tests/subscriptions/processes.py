"""Real `nphies-facade serve` and `nphies-facade worker` processes on loopback for the tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .receiver import free_port

ROOT = Path(__file__).resolve().parents[2]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nphies_facade.server.cli", *args]


class Process:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.env = {**os.environ, "NPHIES_FACADE_LOG_LEVEL": "warning", **env}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, env=self.env, cwd=ROOT)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Server(Process):
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        super().__init__(_command("serve", "--port", str(self.port), "--data-dir", str(data_dir)), env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")


class Worker(Process):
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        super().__init__(_command("worker", "--data-dir", str(data_dir)), env)
