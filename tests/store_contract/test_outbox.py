"""The outbox through the store port: one event per committed write, in commit order, by sequence."""

import asyncio

from .writing import delete, patient, write


async def test_each_write_appends_an_event_with_a_higher_seq(store, extractor):
    _, created = await write(store, extractor, patient("a"), trace_id="t1")
    _, updated = await write(store, extractor, patient("a", gender="male"), 2, "2024-01-02T00:00:00Z", "t2")
    deleted = await delete(store, "Patient", "a", 3, "2024-01-03T00:00:00Z")
    assert created.seq < updated.seq < deleted.seq
    assert await store.outbox_after(0) == [created, updated, deleted]
    assert [(e.action, e.version, e.trace_id) for e in (created, updated)] == [
        ("create", 1, "t1"),
        ("update", 2, "t2"),
    ]
    assert created.at == "2024-01-01T00:00:00Z"


async def test_outbox_after_pages_by_seq(store, extractor):
    events = [(await write(store, extractor, patient(f"p{n}")))[1] for n in range(5)]
    assert await store.outbox_after(0, limit=2) == events[:2]
    assert await store.outbox_after(events[1].seq, limit=2) == events[2:4]
    assert await store.outbox_after(events[-1].seq) == []


async def test_concurrent_writers_get_distinct_increasing_seqs_in_commit_order(service, store):
    from nphies_facade.resources.context import RequestContext

    async def create(n: int):
        return await service.create(RequestContext.system(), patient("ignored", f"20000000{n:02d}"))

    results = await asyncio.gather(*[create(n) for n in range(12)])
    events = await store.outbox_after(0, limit=100)
    patients = [e for e in events if e.resource_type == "Patient"]
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert {e.id for e in patients} == {r.version.id for r in results}
    assert len(patients) == 12
