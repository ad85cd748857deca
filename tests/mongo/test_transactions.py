"""MongoDB transactions: write conflicts become TransientConflict, commits of unknown outcome are retried,
FhirService runs a conflicted write again, and a server that is no replica set is refused at start-up."""

import asyncio

import orjson
import pytest
from pymongo.errors import OperationFailure

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.mongo.connection import NotAReplicaSet
from nphies_facade.resources.mongo.store import MongoStore
from nphies_facade.resources.mongo.transaction import in_transaction
from nphies_facade.resources.service import FhirService
from nphies_facade.resources.store import StoredVersion, TransientConflict

from .fake_client import FakeMongoClient, FakeSession


def _version(resource_id: str, version: int = 1) -> StoredVersion:
    body = orjson.dumps({"resourceType": "Patient", "id": resource_id})
    return StoredVersion("Patient", resource_id, version, "2024-01-01T00:00:00Z", "PUT", body)


@pytest.fixture
async def client() -> FakeMongoClient:
    return FakeMongoClient()


@pytest.fixture
async def store(client):
    opened = MongoStore(client=client)
    await opened.open()
    return opened


@pytest.fixture
async def other_process(client):
    """A second store on the same server, as another API process would have."""
    opened = MongoStore(client=client)
    await opened.open()
    return opened


async def test_a_standalone_server_is_refused_with_a_clear_message():
    store = MongoStore(client=FakeMongoClient(replica_set=False))
    with pytest.raises(NotAReplicaSet, match="replica set"):
        await store.open()


async def test_a_write_conflict_is_a_transient_conflict_and_leaves_nothing(store, other_process):
    first_wrote, second_done = asyncio.Event(), asyncio.Event()

    async def first():
        async with store.transaction() as tx:
            await tx.write(_version("a"), {}, "t1")
            first_wrote.set()
            await second_done.wait()

    async def second():
        await first_wrote.wait()
        try:
            async with other_process.transaction() as tx:
                await tx.write(_version("b"), {}, "t2")  # takes the same counter documents
        finally:
            second_done.set()

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], TransientConflict)
    assert await store.read("Patient", "b") is None
    assert [e.id for e in await store.outbox_after(0)] == ["a"]


async def test_a_commit_of_unknown_outcome_is_retried(store, monkeypatch):
    commit = FakeSession.commit_transaction
    calls = []

    async def flaky(self):
        calls.append(1)
        if len(calls) == 1:
            raise OperationFailure(
                "lost", code=91, details={"errorLabels": ["UnknownTransactionCommitResult"]}
            )
        await commit(self)

    monkeypatch.setattr(FakeSession, "commit_transaction", flaky)
    async with store.transaction() as tx:
        await tx.write(_version("a"), {}, "t")
    assert len(calls) == 2 and (await store.read("Patient", "a")) is not None


async def test_in_transaction_runs_the_work_again_after_a_conflict_and_gives_up_eventually(store):
    attempts = []

    async def work(tx):
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientConflict("conflict")
        return "done"

    assert await in_transaction(store.transaction, work) == "done"
    assert len(attempts) == 3

    async def never(tx):
        raise TransientConflict("conflict")

    with pytest.raises(TransientConflict):
        await in_transaction(store.transaction, never, attempts=2)


async def test_writes_of_one_process_queue_instead_of_conflicting(store, client, extractor):
    service = FhirService(store, extractor)
    await service.open()
    ctx = RequestContext.system()
    genders = ["male", "female", "other", "unknown"] * 2
    await asyncio.gather(*[service.create(ctx, {"resourceType": "Patient", "gender": g}) for g in genders])
    assert client.aborts == 0
    await service.close()


async def test_fhir_service_runs_writes_conflicting_with_another_process_again(
    store, other_process, extractor
):
    services = [FhirService(store, extractor), FhirService(other_process, extractor)]
    for service in services:
        await service.open()
    ctx = RequestContext.system()
    await services[0].update(ctx, "Patient", "p", {"resourceType": "Patient", "id": "p"})
    genders = ["male", "female", "other", "unknown"] * 2
    results = await asyncio.gather(
        *[
            services[n % 2].update(ctx, "Patient", "p", {"resourceType": "Patient", "id": "p", "gender": g})
            for n, g in enumerate(genders)
        ]
    )
    assert sorted(r.version.version for r in results) == list(range(2, 10))
    assert (await store.read("Patient", "p")).version == 9
    assert store.client.aborts > 0  # the two processes' writes did conflict and were run again
    for service in services:
        await service.close()
