"""Fixtures of the MongoDB backend tests that need no server."""

import pytest

from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor


@pytest.fixture(scope="session")
def registry() -> SearchRegistry:
    return SearchRegistry()


@pytest.fixture(scope="session")
def extractor(registry: SearchRegistry) -> Extractor:
    return Extractor(registry)
