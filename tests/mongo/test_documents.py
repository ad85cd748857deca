"""The documents the MongoDB backend stores: shapes, index entries mirroring SQLite rows, exact bodies."""

import orjson

from nphies_facade.resources.mongo.documents import entry_for, index_entries, new_resource
from nphies_facade.resources.mongo.store import MongoStore
from nphies_facade.resources.search.values import CompositeValue, DateValue, QuantityValue, TokenValue
from nphies_facade.resources.sqlite.index_rows import row_for
from nphies_facade.resources.store import HistoryQuery, StoredVersion

from .corpus import corpus
from .fake_client import FakeMongoClient

ROW_FIELDS = ("s1", "s2", "s3", "s4", "n1", "n2", "n3")


async def _open() -> MongoStore:
    store = MongoStore(client=FakeMongoClient())
    await store.open()
    return store


async def test_bodies_round_trip_byte_for_byte():
    store = await _open()
    body = '{ "resourceType":"Patient",  "id":"p1", "name":[{"text":"عبدالله ٱلْعَلِيّ"}] ,"x":1.50 }\n'.encode()
    async with store.transaction() as tx:
        await tx.write(StoredVersion("Patient", "p1", 1, "2024-01-01T00:00:00Z", "PUT", body), {}, "t")
    assert (await store.read("Patient", "p1")).body == body
    assert (await store.vread("Patient", "p1", 1)).body == body
    assert (await store.history(HistoryQuery("Patient", "p1")))[0].body == body
    doc = await store.collections.resources.find_one({"_id": "Patient/p1"})
    assert isinstance(doc["body"], bytes) and doc["body"] == body


async def test_resource_history_and_outbox_documents_have_their_documented_shape():
    store = await _open()
    body = orjson.dumps({"resourceType": "Patient", "id": "p1"})
    index = {"identifier": [TokenValue("sys", "123")]}
    async with store.transaction() as tx:
        event = await tx.write(
            StoredVersion("Patient", "p1", 1, "2024-01-01T00:00:00Z", "POST", body), index, "t1"
        )
    resource = await store.collections.resources.find_one({"_id": "Patient/p1"})
    assert resource == {
        "_id": "Patient/p1",
        "type": "Patient",
        "id": "p1",
        "rid": 1,
        "version": 1,
        "last_updated": "2024-01-01T00:00:00Z",
        "deleted": False,
        "method": "POST",
        "position": 1,
        "body": body,
        "idx": [{"p": "identifier", "s1": "123", "s2": "sys"}],
    }
    history = await store.collections.history.find_one({"_id": 1})
    assert history == {
        "_id": 1,
        "type": "Patient",
        "id": "p1",
        "version": 1,
        "last_updated": "2024-01-01T00:00:00Z",
        "method": "POST",
        "body": body,
    }
    outbox = await store.collections.outbox.find_one({"_id": event.seq})
    assert outbox == {
        "_id": 1,
        "type": "Patient",
        "id": "p1",
        "version": 1,
        "action": "create",
        "at": "2024-01-01T00:00:00Z",
        "trace_id": "t1",
    }


def test_index_entries_hold_the_sqlite_row_columns_that_are_not_null(extractor):
    checked = 0
    for resource in corpus():
        for values in extractor.extract(resource).values():
            for value in values:
                row, entry = row_for(value), entry_for(value)
                if row is None:
                    assert entry is None
                    continue
                expected = {f: v for f, v in zip(ROW_FIELDS, row, strict=True) if v is not None}
                assert {f: entry[f] for f in ROW_FIELDS if f in entry} == expected
                assert all(isinstance(entry[f], float) for f in ("n1", "n2", "n3") if f in entry)
                checked += 1
    assert checked > 500


def test_a_composite_entry_also_holds_its_components_entries():
    value = CompositeValue(
        (
            ("code", TokenValue("http://loinc.org", "8867-4")),
            ("value", QuantityValue(72, 71.5, 72.5, "u", "/min", "/min")),
        )
    )
    entry = entry_for(value)
    assert entry["c"] == [entry_for(TokenValue("http://loinc.org", "8867-4")), entry_for(value.parts[1][1])]
    assert entry["s1"] == "8867-4"


def test_a_deletion_keeps_no_index_entries():
    version = StoredVersion("Patient", "p1", 2, "2024-01-01T00:00:00Z", "DELETE", None)
    document = new_resource(version, {}, 7)
    assert document["deleted"] is True and document["idx"] == [] and document["body"] is None
    assert index_entries({"birthdate": [DateValue(0, 86_400_000)]}) == [
        {"p": "birthdate", "n1": 0.0, "n2": 86400000.0}
    ]
