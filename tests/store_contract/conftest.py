"""The store contract suite: every test runs against each backend of the store port.

sqlite             always
mongodb-inprocess  always: the MongoDB backend's code over an in-process stand-in for the server
                   (tests/mongo/fake_client.py: mongomock's query engine, snapshot transactions)
mongodb            a real server, when NPHIES_FACADE_TEST_MONGODB_URL names one (a replica set, e.g.
                   `docker compose up mongo` and mongodb://localhost:27017/?replicaSet=rs0)
"""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nphies_facade.resources.mongo.store import MongoStore
from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.service import FhirService
from nphies_facade.resources.sqlite.store import SqliteStore
from nphies_facade.resources.store import Store

from ..mongo.fake_client import FakeMongoClient

MONGODB_URL = os.environ.get("NPHIES_FACADE_TEST_MONGODB_URL")
BACKENDS = [
    "sqlite",
    "mongodb-inprocess",
    pytest.param(
        "mongodb",
        marks=pytest.mark.skipif(
            not MONGODB_URL,
            reason="set NPHIES_FACADE_TEST_MONGODB_URL (e.g. mongodb://localhost:27017/?replicaSet=rs0) "
            "to run the contract suite against MongoDB",
        ),
    ),
]


@pytest.fixture(scope="session")
def registry() -> SearchRegistry:
    return SearchRegistry()


@pytest.fixture(scope="session")
def extractor(registry: SearchRegistry) -> Extractor:
    return Extractor(registry)


async def _real_mongodb() -> AsyncIterator[Store]:
    database = f"contract_{uuid.uuid4().hex[:12]}"
    store = MongoStore(MONGODB_URL, database)
    await store.open()
    try:
        yield store
    finally:
        await store.client.drop_database(database)
        await store.close()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "mongodb":
        async for opened in _real_mongodb():
            yield opened
        return
    backend: Store
    if request.param == "sqlite":
        backend = SqliteStore(tmp_path / "contract.sqlite3")
    else:
        backend = MongoStore(client=FakeMongoClient())
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def service(store: Store, extractor: Extractor) -> AsyncIterator[FhirService]:
    fhir = FhirService(store, extractor)
    await fhir.open()
    try:
        yield fhir
    finally:
        await fhir.close()
