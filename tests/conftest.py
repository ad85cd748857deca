"""Shared fixtures: the app in-process over ASGI, with a fresh SQLite store per test."""

import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nphies_facade.resources.mongo import store as mongo_store
from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings

from .mongo.fake_client import FakeMongoClient
from .r4_package import fetch_r4_examples

# Authentication is on by default; suites other than tests/security/ exercise FHIR behaviour without
# tokens, so apps and server processes they start run with it off unless a test says otherwise.
os.environ.setdefault("NPHIES_FACADE_AUTH", "off")
# The journeys run by default; suites that are not about them start apps and servers without them (the
# journey tests install them themselves).
os.environ.setdefault("NPHIES_FACADE_WORKFLOW_MODULES", "")
# Resources the server builds itself skip validation in production; here every one of them is validated.
os.environ.setdefault("NPHIES_FACADE_VALIDATE_OWN_RESOURCES", "true")
# Freezing the collector's view of start-up suits one server process, not a test run of many apps.
os.environ.setdefault("NPHIES_FACADE_GC_TUNING", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared"
FHIR_EXAMPLES = SHARED / "fhir-examples"
FHIR_JSON = "application/fhir+json"


def example(name: str) -> dict:
    return json.loads((FHIR_EXAMPLES / name).read_text())


def requires_shared() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not FHIR_EXAMPLES.is_dir(), reason="../shared/fhir-examples is not present")


@pytest.fixture(scope="session")
def r4_package() -> Path:
    """The folder of the full official R4 examples package (tests/r4_package.py)."""
    return fetch_r4_examples()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", base_url="http://fhir.test", auth="off")


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
    ) as c:
        yield c


@pytest.fixture
def each_store_settings() -> dict:
    """Settings a module gives `client_on_each_store` on top of its own (override it in the module)."""
    return {}


@pytest.fixture(params=["sqlite", "mongodb-inprocess"])
async def client_on_each_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, each_store_settings: dict
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on the SQLite store, then on the MongoDB store over the in-process stand-in."""
    extra = dict(each_store_settings)
    if request.param == "mongodb-inprocess":
        server = FakeMongoClient()
        monkeypatch.setattr(mongo_store, "connect", lambda url: server)
        extra["mongodb_url"] = "mongodb://db.test/?replicaSet=rs0"
    application = create_app(
        Settings(data_dir=tmp_path / "data", base_url="http://fhir.test", auth="off", rate_limit=0, **extra)
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        async with httpx.AsyncClient(transport=transport, base_url="http://fhir.test", headers=headers) as c:
            yield c


# At the end of a whole run the interpreter did not exit after printing the summary: it waited on an
# aiosqlite worker thread (not a daemon) of a store some test left open, or spent minutes finalising the
# multi-GB heap. The run's outcome is known by then, so the process ends with its status at once, naming
# any threads left running.
_exit_status: list[int] = []


def pytest_sessionfinish(session, exitstatus) -> None:
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config) -> None:
    if not _exit_status:
        return
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if left:
        print(
            f"\n{len(left)} threads left running by the tests: {', '.join(sorted(left)[:5])}", file=sys.stderr
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status[-1])
