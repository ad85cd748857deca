"""The server in process (ASGI) with its sandbox simulator, authentication off, fast poll schedule."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

from ..nphies.samples import EXAMPLES

FHIR_JSON = "application/fhir+json"

# The material comes from ../shared/nphies; without it there is nothing to test against.
collect_ignore_glob = [] if EXAMPLES.is_dir() else ["test_*.py"]


def fast_settings(data_dir: Path, **overrides) -> Settings:
    values = {
        "data_dir": data_dir,
        "base_url": "http://fhir.test",
        "auth": "off",
        "rate_limit": 0,
        "nphies_poll_schedule": "0.1,0.2,0.3",
        "nphies_timeout": 2.0,
        "nphies_connect_timeout": 1.0,
        "nphies_backoff": 0.01,
        "nphies_max_backoff": 0.05,
        "nphies_sweep_interval": 0.5,
        "nphies_retry_schedule": "0.1,0.2",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://fhir.test",
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
        timeout=30,
    ) as c:
        yield c
