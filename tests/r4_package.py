"""The full official R4 examples package (`hl7.fhir.r4.examples@4.0.1`: 5,307 files), fetched once with
`npm pack` into the git-ignored `.cache/` of the checkout; tests that need it skip when npm cannot fetch it."""

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
CACHE = Path(__file__).resolve().parents[1] / ".cache"
UNPACKED = CACHE / "hl7.fhir.r4.examples-4.0.1" / "package"


def fetch_r4_examples() -> Path:
    """The unpacked package's folder (skips the calling test when npm cannot fetch it)."""
    if UNPACKED.is_dir():
        return UNPACKED
    CACHE.mkdir(exist_ok=True)
    if shutil.which("npm") is None:
        pytest.skip(f"npm is not installed, so {PACKAGE} cannot be fetched")
    done = subprocess.run(
        ["npm", "pack", PACKAGE, "--silent", "--pack-destination", str(CACHE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    tarball = CACHE / "hl7.fhir.r4.examples-4.0.1.tgz"
    if done.returncode != 0 or not tarball.is_file():
        pytest.skip(f"npm pack {PACKAGE} failed: {done.stderr.strip()[:200]}")
    with tarfile.open(tarball) as archive:
        archive.extractall(UNPACKED.parent, filter="data")
    return UNPACKED
