"""Security records kept in the store (`store.security()`), on every backend."""

import pytest

from nphies_facade.resources.security_store import GENESIS_HASH, AuditHead, AuditQuery, AuditRow

from .writing import delete, patient, write


def _builder(action: str, patient_hash: str | None = None):
    def build(head: AuditHead | None) -> AuditRow:
        seq = head.seq + 1 if head else 1
        prev = head.hash if head else GENESIS_HASH
        return AuditRow(seq, f"2024-01-0{seq}T00:00:00Z", action, "x", "0", "system", None, None, f"Patient/{seq}",
                        patient_hash, None, None, "trace", None, prev, f"{seq:064d}")  # fmt: skip

    return build


async def test_audit_records_chain_in_order_and_are_queried_newest_first(store):
    security = store.security()
    async with store.transaction() as tx:
        first = await security.append_audit(tx, _builder("C", "h1"))
        second = await security.append_audit(tx, _builder("R", "h2"))
    alone = await security.append_audit_alone([_builder("U", "h1"), _builder("D")])
    assert (first.seq, second.seq, [r.seq for r in alone]) == (1, 2, [3, 4])
    assert second.prev_hash == first.hash and alone[0].prev_hash == second.hash
    assert [r.seq for r in await security.audit_rows()] == [1, 2, 3, 4]
    assert [r.seq for r in await security.audit_rows(after_seq=2, limit=1)] == [3]
    assert [r.seq for r in await security.audit_query(AuditQuery(patient_hash="h1"))] == [3, 1]
    assert [r.seq for r in await security.audit_query(AuditQuery(action="R"))] == [2]
    assert [r.seq for r in await security.audit_query(AuditQuery(since="2024-01-03T00:00:00Z"))] == [4, 3]
    assert [r.seq for r in await security.audit_query(AuditQuery(before_seq=3, count=1))] == [2]
    assert await security.audit_row(3) == alone[0]
    assert await security.audit_row(9) is None


async def test_an_audit_record_in_a_rolled_back_transaction_is_gone(store):
    security = store.security()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await security.append_audit(tx, _builder("C"))
            raise RuntimeError("rolled back")
    assert await security.audit_rows() == []


async def test_clients_and_one_time_token_ids(store):
    security = store.security()
    await security.put_client("b", {"client_id": "b", "scope": "system/*.read"})
    await security.put_client("a", {"client_id": "a"})
    await security.put_client("b", {"client_id": "b", "scope": "system/*.*"})
    assert await security.get_client("b") == {"client_id": "b", "scope": "system/*.*"}
    assert await security.get_client("z") is None
    assert [c["client_id"] for c in await security.list_clients()] == ["a", "b"]
    assert await security.claim_jti("k", expires_at=100.0, now=10.0)
    assert not await security.claim_jti("k", expires_at=100.0, now=20.0)
    assert await security.claim_jti("k", expires_at=300.0, now=200.0)  # the first use expired


async def test_a_removed_client_is_gone_for_the_per_request_state_read(store):
    security = store.security()
    await security.put_client("a", {"client_id": "a", "status": "active"})
    assert await security.client_state("a") == {"client_id": "a", "status": "active"}
    assert await security.delete_client("a")
    assert not await security.delete_client("a")
    assert await security.get_client("a") is None
    assert [c["client_id"] for c in await security.list_clients()] == []


async def test_launch_records_are_stored_by_kind_taken_once_and_purged(store):
    security = store.security()
    assert await security.put_record("user", "noura", {"id": "u1"}, create=True)
    assert not await security.put_record("user", "noura", {"id": "u2"}, create=True)
    assert await security.get_record("user", "noura") == {"id": "u1"}
    await security.put_record("user", "ali", {"id": "u3"})
    await security.put_record("app", "portal", {"client_id": "portal"})
    assert [r["id"] for r in await security.list_records("user")] == ["u3", "u1"]
    assert await security.take_record("code", "absent") == (None, False)
    await security.put_record("code", "c1", {"grant": "g"}, purge_at=100.0)
    assert await security.take_record("code", "c1") == ({"grant": "g"}, True)
    assert await security.take_record("code", "c1") == ({"grant": "g"}, False)
    await security.put_record("code", "c2", {"grant": "h"}, purge_at=500.0, now=200.0)  # purges c1
    assert await security.get_record("code", "c1") is None
    assert await security.get_record("code", "c2") == {"grant": "h"}
    assert await security.delete_record("app", "portal")
    assert not await security.delete_record("app", "portal")


async def test_retention_finds_expired_versions_and_erases_them(store, extractor):
    security = store.security()
    await write(store, extractor, patient("a", "1"), at="2024-01-01T00:00:00Z")
    await write(store, extractor, patient("b", "2"), at="2024-01-01T00:00:00Z")
    await write(store, extractor, patient("c", "3"), at="2024-06-01T00:00:00Z")
    await write(store, extractor, patient("a", "1", gender="male"), 2, "2024-01-02T00:00:00Z")
    await delete(store, "Patient", "b", 2, "2024-01-03T00:00:00Z")
    expired = await security.expired("Patient", before="2024-02-01T00:00:00Z")
    assert [(v.id, v.version, v.deleted) for v in expired] == [("a", 2, False), ("b", 2, True)]
    assert [
        v.id
        for v in await security.expired(
            "Patient", "2024-02-01T00:00:00Z", after=("2024-01-02T00:00:00Z", "a")
        )
    ] == ["b"]
    async with store.transaction() as tx:
        versions = await security.versions(tx, "Patient", "a")
        assert [v.version for v in versions] == [1, 2] and versions[0].position < versions[1].position
        await security.replace_bodies(tx, "Patient", "a", [(1, b'{"redacted":1}'), (2, b'{"redacted":2}')])
    assert (await store.read("Patient", "a")).body == b'{"redacted":2}'
    assert (await store.vread("Patient", "a", 1)).body == b'{"redacted":1}'
    async with store.transaction() as tx:
        assert await security.purge(tx, "Patient", "b") == 2
        assert await security.purge(tx, "Patient", "nobody") == 0
    assert await store.read("Patient", "b") is None and await store.vread("Patient", "b", 1) is None
    assert await store.find_ids("Patient", [("identifier", "2")]) == []
