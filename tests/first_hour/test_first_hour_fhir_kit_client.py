"""fhir-kit-client, the JavaScript FHIR client, works in full against a real server on loopback: the node
script does create, search (with `total`), count, JSON Patch with If-Match, conditional create twice (one
resource), update, delete and reads the errors as OperationOutcomes. npm installs the client into the
git-ignored `.cache/node` once; the test is skipped where node or npm is missing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None, reason="node/npm missing"
    ),
]

PACKAGE = "fhir-kit-client@2.0.3"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "node"
ENTRY = CACHE / "node_modules" / "fhir-kit-client" / "dist" / "index.js"
SCRIPT = Path(__file__).with_name("fhir_kit_client.mjs")


def installed_client() -> Path:
    if not ENTRY.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), PACKAGE],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return ENTRY


def test_fhir_kit_client_create_search_count_patch_conditional_create_update_delete(loopback_url):
    entry = installed_client()
    run = subprocess.run(
        ["node", str(SCRIPT), loopback_url],
        env={**os.environ, "FHIR_KIT_CLIENT": str(entry)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fhir-kit-client: ok" in run.stdout
