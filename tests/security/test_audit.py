"""The audit trail: a record per interaction with hashed identifiers and payload digests, chained by hash;
`audit verify` finds a record altered in the store; denials survive rolled-back transactions."""

import asyncio
import contextlib
import hashlib
import hmac
import io
import sqlite3

import orjson
from fhir.resources.R4B.auditevent import AuditEvent

from nphies_facade.resources import audit
from nphies_facade.resources.context import RequestContext
from nphies_facade.server.cli import main as cli

from .conftest import patient

BACKGROUND_ACTORS = frozenset({"operation:submit"})


async def trail(app) -> list:
    """The audit rows of this test's own actions (the submit scheduler's start-up sweep is audited too)."""
    await app.state.service.audit.drain()
    rows = await app.state.store.security().audit_rows(0, 10_000)
    return [r for r in rows if r.actor not in BACKGROUND_ACTORS]


async def test_every_interaction_is_recorded_with_hashed_identifiers(as_token, secure_app):
    async with as_token("system/*.cruds", sub="emr-1", role="clerk") as emr:
        created = await emr.put("/Patient/p9", json=patient("p9"))
        assert created.status_code == 201
        assert (await emr.get("/Patient/p9")).status_code == 200
        assert (await emr.get("/Patient", params={"family": "Alharbi"})).status_code == 200
        assert (await emr.get("/Patient/p9/_history")).status_code == 200
        assert (await emr.delete("/Patient/p9")).status_code == 204
        assert (await emr.get("/Claim/nothing")).status_code == 404
    rows = await trail(secure_app)
    # Reads and searches are appended in batches, so the trail holds them in a later position.
    by_subtype = sorted((r.action, r.subtype, r.outcome) for r in rows)
    assert by_subtype == sorted([
        ("C", "create", "0"),
        ("R", "read", "0"),
        ("E", "search-type", "0"),
        ("R", "history-instance", "0"),
        ("D", "delete", "0"),
        ("R", "http", "4"),
    ])
    create = next(r for r in rows if r.action == "C")
    assert create.actor == "emr-1" and create.role == "clerk" and create.entity == "Patient/p9"
    key = secure_app.state.security.auditor._key
    assert create.patient_hash == hmac.new(key, b"Patient/p9", hashlib.sha256).hexdigest()
    assert "p9" not in (create.patient_hash or "")
    stored = await secure_app.state.store.vread("Patient", "p9", 1)
    canonical = orjson.dumps(orjson.loads(stored.body), option=orjson.OPT_SORT_KEYS)
    assert create.digest == hashlib.sha256(canonical).hexdigest()
    assert len({r.trace_id for r in rows}) == len(rows)


async def test_the_chain_verifies_and_names_a_record_altered_in_the_store(
    as_token, secure_app, secure_settings
):
    async with as_token() as emr:
        for n in range(4):
            assert (await emr.post("/Patient", json=patient(family=f"F{n}"))).status_code == 201
    await secure_app.state.service.audit.drain()
    total = len(await secure_app.state.store.security().audit_rows(0, 10_000))
    report = await audit.verify_chain(secure_app.state.store.security())
    assert report.ok and report.records == total >= 4

    async def verify() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = await asyncio.to_thread(
                cli, ["audit", "verify", "--data-dir", str(secure_settings.data_dir)]
            )
        return code, out.getvalue()

    assert await verify() == (0, f"audit chain intact: {total} records\n")
    with sqlite3.connect(secure_settings.database_path) as db:
        db.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = 3")
    code, out = await verify()
    assert code == 1
    assert out.startswith("audit chain broken at record 3:") and "altered" in out
    with sqlite3.connect(secure_settings.database_path) as db:
        db.execute("UPDATE audit SET actor = 'test-client' WHERE seq = 3")
        db.execute("DELETE FROM audit WHERE seq = 2")
    code, out = await verify()
    assert code == 1 and "record 2 is missing" in out


async def test_denials_are_audited_even_when_the_transaction_rolls_back(as_token, secure_app):
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Organization", "name": "x"},
                "request": {"method": "POST", "url": "Organization"},
            },
        ],
    }
    async with as_token("system/Patient.c") as app:
        assert (await app.post("/", json=transaction)).status_code == 403
    rows = await trail(secure_app)
    assert [(r.action, r.subtype, r.outcome, r.entity) for r in rows] == [
        ("C", "create", "4", "Organization")
    ]
    assert "scopes" in orjson.loads(rows[0].detail)["reason"]
    assert (await audit.verify_chain(secure_app.state.store.security())).ok


async def test_audit_events_are_served_as_valid_r4_resources(as_token, secure_app):
    async with as_token() as emr:
        await emr.put("/Patient/p7", json=patient("p7"))
        await emr.get("/Patient/p7")
    async with as_token("system/AuditEvent.rs") as auditor:
        bundle = (await auditor.get("/AuditEvent", params={"patient": "Patient/p7"})).json()
        events = [e["resource"] for e in bundle["entry"]]
        assert [e["action"] for e in events] == ["R", "C"]
        for event in events:
            AuditEvent.model_validate(event)
            assert "p7" not in orjson.dumps(event["entity"][1]).decode()
        one = await auditor.get(f"/AuditEvent/{events[0]['id']}")
        assert one.status_code == 200 and one.json()["subtype"][0]["code"] == "read"
        paged = (await auditor.get("/AuditEvent", params={"_count": "1"})).json()
        assert len(paged["entry"]) == 1 and any(link["relation"] == "next" for link in paged["link"])


async def test_other_parts_record_their_events_through_the_api(secure_app):
    service = secure_app.state.service
    ctx = RequestContext(actor="worker-1", scopes=("system/*.*",))
    message = {"resourceType": "Bundle", "type": "message"}
    await audit.record(
        service,
        ctx,
        action="E",
        subtype="nphies-exchange",
        entity="Claim/c1",
        patient="Patient/p1",
        provider="Organization/o1",
        payload=message,
        detail={"event": "claim-request"},
    )
    row = (await trail(secure_app))[-1]
    assert (row.action, row.subtype, row.entity, row.actor) == (
        "E",
        "nphies-exchange",
        "Claim/c1",
        "worker-1",
    )
    assert row.patient_hash == service.audit.pseudonym("Patient/p1")
    assert row.digest == audit.payload_digest(message)
