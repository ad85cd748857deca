"""Trusted writes: resources the server builds itself skip the R4 validation, unless the service
is told to validate its own resources too (the test suite's servers are); everything else is validated."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.service import FhirService
from nphies_facade.resources.sqlite.store import SqliteStore

SYSTEM = RequestContext.system()
# An element R4 does not define breaks validation, not the store.
BROKEN_TASK = {"resourceType": "Task", "status": "draft", "intent": "order", "notAnElement": 1}


@asynccontextmanager
async def service(path: Path, validate_own: bool) -> AsyncIterator[FhirService]:
    store = SqliteStore(path / "trusted.sqlite3")
    await store.open()
    try:
        yield FhirService(store, Extractor(SearchRegistry()), validate_own=validate_own)
    finally:
        await store.close()


async def test_a_trusted_write_skips_model_validation(tmp_path: Path) -> None:
    async with service(tmp_path, validate_own=False) as fhir:
        created = await fhir.create(SYSTEM, dict(BROKEN_TASK), trusted=True)
        assert created.version is not None
        task_id = created.version.id
        updated = await fhir.update(SYSTEM, "Task", task_id, {**BROKEN_TASK, "id": task_id}, trusted=True)
        assert updated.version is not None and updated.version.version == 2


async def test_an_untrusted_write_is_always_validated(tmp_path: Path) -> None:
    async with service(tmp_path, validate_own=False) as fhir:
        with pytest.raises(FhirError) as raised:
            await fhir.create(SYSTEM, dict(BROKEN_TASK))
        assert raised.value.status == 400
        stored = await fhir.create(SYSTEM, {"resourceType": "Task", "status": "draft", "intent": "order"})
        assert stored.version is not None
        with pytest.raises(FhirError):
            await fhir.update(SYSTEM, "Task", stored.version.id, {**BROKEN_TASK, "id": stored.version.id})


async def test_validate_own_checks_trusted_writes_too(tmp_path: Path) -> None:
    async with service(tmp_path, validate_own=True) as fhir:
        with pytest.raises(FhirError) as raised:
            await fhir.create(SYSTEM, dict(BROKEN_TASK), trusted=True)
        assert raised.value.status == 400
