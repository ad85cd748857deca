"""README.md's commands work in a fresh clone, as a new user would run them.

The test clones this repository's HEAD, gives the clone a `.venv` whose `nphies-facade` and `python` run the
clone's code with the interpreter of this test run (no install, so it stays fast), and then runs what the
README documents, read from its code blocks so that an edit to the README is what gets tested: the server
as the `make run ARGS=...` example starts it (on a free port and a temporary data dir), `make test` (on one
small test file), `demo`, the token commands, every curl command (which must answer 2xx), the posts of
`examples/` and the Task searches, repeated until each Task has ended as the README says."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import free_port, running_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("make", "curl", ".venv/bin/")
ASSIGNMENT = re.compile(r"^([A-Z_]+)=\$\((.*)\)$")
ENDED = frozenset({"completed", "failed", "cancelled", "rejected", "entered-in-error"})
# How each followed Task must end: (status, the step in businessStatus or its text).
EXPECTED_ENDS = {
    "urn:nphies-facade:workflow|eligibility": ("completed", "verified"),
    "urn:nphies-facade:workflow|claims": ("completed", "paid"),
    "urn:nphies-facade:operation|submit": ("completed", "approved"),
}
QUICK_TESTS = "tests/test_metadata_and_health.py"
# What a user types where the README shows a placeholder (a Task's id) or a command prompts (a password).
PLACEHOLDER = re.compile(r"\b[A-Z]+_ID\b")
TYPED = "first-hour-Passw0rd!\nfirst-hour-Passw0rd!\n"


def readme_commands(markdown: str) -> list[str]:
    """The shell commands of the README's code blocks, in order, continuation lines joined; lines that
    show output (the demo's timeline) are left out."""
    commands: list[str] = []
    pending = ""
    in_fence = False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence and not line.startswith("    "):
            pending = ""
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1].rstrip() + " "
            continue
        pending = ""
        if text.startswith(PROGRAMS) or ASSIGNMENT.match(text):
            commands.append(text)
    return commands


def run_example(markdown: str) -> str:
    """The `make run ARGS="..."` example of the README's prose."""
    found = re.search(r'`(make run ARGS="[^"`]*")`', markdown)
    assert found, 'README.md no longer shows how to run the server with options (make run ARGS="...")'
    return found.group(1)


def make_recipe(clone: Path, command: str, env: dict, marker: str) -> str:
    """The line of `make -n` for `command` that runs `marker` (the venv's set-up lines are skipped: the
    clone's .venv already runs its code)."""
    dry = subprocess.run(
        [*shlex.split(command)[:1], "-n", *shlex.split(command)[1:]],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert dry.returncode == 0, dry.stderr
    lines = [line for line in dry.stdout.splitlines() if marker in line]
    assert lines, f"`{command}` no longer runs {marker}: {dry.stdout}"
    return lines[-1]


def fresh_clone(tmp: Path) -> Path:
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, program in (("python", ""), ("nphies-facade", " -m nphies_facade.server.cli")):
        shim = bin_dir / name
        shim.write_text(
            f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(clone))} exec {shlex.quote(sys.executable)}{program} "$@"\n'
        )
        shim.chmod(0o755)
    return clone


def user_environment(port: int, data_dir: Path) -> dict[str, str]:
    """A shell's environment without this test run's settings (nor those of a `make test` it runs under,
    which make `make -n` print its directories); the port and data dir the server was
    started with, as the README says commands must share them."""
    own = ("NPHIES_FACADE_", "PYTEST", "PYTHON", "MAKE", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return {**env, "NPHIES_FACADE_PORT": str(port), "NPHIES_FACADE_DATA_DIR": str(data_dir)}


class Shell:
    """Runs README commands one by one in the clone; variables assigned (`TOKEN=$(...)`) carry over."""

    def __init__(self, clone: Path, env: dict[str, str], port: int) -> None:
        self.clone, self.env, self.port = clone, dict(env), port

    def adapt(self, command: str) -> str:
        command = re.sub(r"\b(localhost|127\.0\.0\.1):8080\b", rf"\1:{self.port}", command)
        return re.sub(r"^curl ", "curl --fail-with-body ", command)

    def run(self, command: str, timeout: float = 120) -> str:
        assigned = ASSIGNMENT.match(command)
        script = self.adapt(assigned.group(2) if assigned else command)
        # A session of its own (no terminal), so a password prompt reads what the user "types" on stdin.
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.clone,
            env=self.env,
            input=TYPED,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
        assert done.returncode == 0, (
            f"README command failed ({done.returncode}): {command}\n{done.stdout}\n{done.stderr}"
        )
        if assigned:
            self.env[assigned.group(1)] = done.stdout.strip()
        return done.stdout


def follow(shell: Shell, command: str, seconds: float = 90.0) -> dict:
    """Runs a Task search until the Task it finds has ended; that Task."""
    deadline = time.monotonic() + seconds
    while True:
        found = json.loads(shell.run(command))
        tasks = [e["resource"] for e in found.get("entry", [])]
        if tasks and tasks[0]["status"] in ENDED:
            return tasks[0]
        assert time.monotonic() < deadline, f"the Task of `{command}` did not end: {tasks}"
        time.sleep(0.3)


def ended_as(task: dict) -> tuple[str, str]:
    business = task.get("businessStatus") or {}
    steps = [c.get("code", "") for c in business.get("coding") or []]
    return task["status"], " ".join([*steps, business.get("text", "")])


def test_readme_commands_work_in_a_fresh_clone(tmp_path):
    clone = fresh_clone(tmp_path)
    markdown = (clone / "README.md").read_text()
    port, data_dir = free_port(), tmp_path / "fhir-data"
    env = user_environment(port, data_dir)
    example = run_example(markdown)
    example = re.sub(r"--port\s+\d+", f"--port {port}", example)
    example = re.sub(r"--data-dir\s+[^\s\"]+", f"--data-dir {data_dir}", example)
    serve = make_recipe(clone, example, env, " serve")
    commands = readme_commands(markdown)
    assert "make run" in commands and "make test" in commands, commands

    with running_server(["sh", "-c", f"exec {serve}"], f"http://127.0.0.1:{port}", env, cwd=clone):
        shell = Shell(clone, env, port)
        shell.run(make_recipe(clone, f"make test ARGS={QUICK_TESTS}", env, "pytest"), timeout=300)
        followed: dict[str, dict] = {}
        with_placeholders = []
        for command in commands:
            if command in ("make run", "make test"):
                continue
            code = re.search(r"code=([^' ]+)", command)
            if PLACEHOLDER.search(command):
                with_placeholders.append(command)  # run once there is something to put in
            elif command.startswith("curl") and "/Task" in command and code:
                task = follow(shell, command)
                followed[code.group(1)] = task
                status, step = EXPECTED_ENDS[code.group(1)]
                assert ended_as(task)[0] == status and step in ended_as(task)[1], (command, task)
            else:
                shell.run(command)
        assert sorted(followed) == sorted(EXPECTED_ENDS), followed
        values = {"TASK_ID": next(iter(followed.values()))["id"]}
        for command in with_placeholders:
            unknown = set(PLACEHOLDER.findall(command)) - set(values)
            assert not unknown, f"the test does not know what to put for {unknown} in: {command}"
            shell.run(PLACEHOLDER.sub(lambda m: values[m.group(0)], command))
