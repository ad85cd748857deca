"""The full official R4 examples package (`hl7.fhir.r4.examples@4.0.1`), fetched once with `npm pack` into
the git-ignored `.cache/` of the checkout; tests that need it skip when npm cannot fetch it."""

import shutil
import subprocess
import tarfile
from pathlib import Path

import orjson
import pytest

from nphies_facade.server.settings import Settings

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
CACHE = Path(__file__).resolve().parents[2] / ".cache"
UNPACKED = CACHE / "hl7.fhir.r4.examples-4.0.1" / "package"
NOT_EXAMPLES = frozenset({"package.json", ".index.json"})


def _fetch() -> Path:
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


@pytest.fixture(scope="session")
def r4_examples() -> list[Path]:
    """Every resource file of the official R4 examples package."""
    return sorted(p for p in _fetch().glob("*.json") if p.name not in NOT_EXAMPLES)


@pytest.fixture(scope="session")
def r4_resources(r4_examples: list[Path]) -> dict[str, dict]:
    """File name -> resource, for every resource of the official R4 examples package."""
    found = {}
    for path in r4_examples:
        resource = orjson.loads(path.read_bytes())
        if isinstance(resource, dict) and "resourceType" in resource:
            found[path.name] = resource
    return found


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The suite's settings without the rate limit: these tests send hundreds of requests in a row."""
    return Settings(data_dir=tmp_path / "data", base_url="http://fhir.test", auth="off", rate_limit=0)
