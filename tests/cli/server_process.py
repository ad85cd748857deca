"""A real `nphies-facade serve` process on a free loopback port, its stderr (the server's log) kept in a
file, and the CLI run in-process with its stdout, stderr and exit code."""

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nphies_facade.server.cli import main as cli
from tests.integration.conftest import free_port, wait_until_ready


@dataclass
class LiveServer:
    url: str
    port: int
    data_dir: Path
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text()


@contextlib.contextmanager
def serve(folder: Path, **env: str) -> Iterator[LiveServer]:
    """`nphies-facade serve --port P --data-dir D` until the block ends; `env` adds settings."""
    port = free_port()
    data_dir = folder / "data"
    log_file = folder / "server.log"
    command = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir)]
    environment = {**os.environ, "NPHIES_FACADE_LOG_LEVEL": "info", **env}
    with log_file.open("w") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield LiveServer(url, port, data_dir, log_file)
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> Ran:
    """`nphies-facade ARGV` in this process (argparse exits become exit codes)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli(list(argv))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())
