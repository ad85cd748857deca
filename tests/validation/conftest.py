"""Fixtures over the full official R4 examples package (`hl7.fhir.r4.examples@4.0.1`, which
tests/r4_package.py fetches into the git-ignored `.cache/`); tests that need it skip when npm cannot."""

from pathlib import Path

import orjson
import pytest

from nphies_facade.server.settings import Settings

from ..r4_package import fetch_r4_examples

NOT_EXAMPLES = frozenset({"package.json", ".index.json"})


@pytest.fixture(scope="session")
def r4_examples() -> list[Path]:
    """Every resource file of the official R4 examples package."""
    return sorted(p for p in fetch_r4_examples().glob("*.json") if p.name not in NOT_EXAMPLES)


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
    """The suite's settings without the rate limit: these tests send hundreds of requests in a row.
    Referential integrity is off: the examples and corpora here refer to resources they never create
    (tests/integration/test_references_http.py covers the references)."""
    return Settings(
        data_dir=tmp_path / "data",
        base_url="http://fhir.test",
        auth="off",
        rate_limit=0,
        referential_integrity="off",
    )
