"""The Makefile's interpreter and installs: python3.11 when present, else python3 when it is 3.11+,
else a clear refusal; `make run` installs the server alone, `make test` the test tools too."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(ROOT), *argv], capture_output=True, text=True, timeout=60)


def old_python(folder: Path) -> Path:
    """A `python3` that says it is 3.9 and fails every other command (as the version check does)."""
    shim = folder / "python3"
    shim.write_text('#!/bin/sh\n[ "$1" = "--version" ] && echo "Python 3.9.2" && exit 0\nexit 1\n')
    shim.chmod(0o755)
    return shim


def test_run_installs_the_server_without_the_test_tools(tmp_path):
    planned = make("-n", "run", f"VENV={tmp_path}/venv").stdout
    assert "pip install --quiet -e .\n" in planned and "[test]" not in planned
    assert f"touch {tmp_path}/venv/.installed-run" in planned
    tested = make("-n", "test", f"VENV={tmp_path}/venv").stdout
    assert "pip install --quiet -e '.[test]'" in tested


def test_python3_11_is_preferred_and_python3_serves_when_it_is_recent(tmp_path):
    candidates = f"PYTHON_CANDIDATES={tmp_path}/missing/python3.11 {sys.executable}"
    planned = make("-n", "run", f"VENV={tmp_path}/venv", candidates).stdout
    assert f"{sys.executable} -m venv {tmp_path}/venv" in planned
    if shutil.which("python3.11"):
        assert "python3.11 -m venv" in make("-n", "run", f"VENV={tmp_path}/venv").stdout


def test_an_old_python_is_refused_with_a_clear_message(tmp_path):
    shim = old_python(tmp_path)
    found = make("run", f"VENV={tmp_path}/venv", f"PYTHON_CANDIDATES={tmp_path}/python3.11 {shim}")
    assert found.returncode != 0
    assert "nphies-facade needs Python 3.11 or newer: none of" in found.stderr
    given = make("run", f"VENV={tmp_path}/venv", f"PYTHON={shim}")
    assert given.returncode != 0
    assert f"nphies-facade needs Python 3.11 or newer; {shim} is Python 3.9.2" in given.stderr
    assert not (tmp_path / "venv").exists()
