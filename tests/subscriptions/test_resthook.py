"""The rest-hook channel in the embedded mode: R4 notification shapes, headers and signatures, ordered
delivery through outages, the active/error lifecycle, end, dead letters and $resend, $status/$events."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from nphies_facade.server.app import create_app

from .conftest import FHIR_JSON, eventually, rest_hook, status_of, status_parameter, subscribe, wait_status
from .receiver import Receiver


def patient(family: str, gender: str = "female") -> dict:
    return {"resourceType": "Patient", "gender": gender, "name": [{"family": family}]}


async def test_handshake_then_an_empty_post_per_event_without_payload(api, receiver):
    criteria = "Patient?gender=female"
    headers = ["Authorization: Bearer portal-token", "X-Tenant: clinic-7"]
    sub = await subscribe(api, rest_hook(receiver.url + "/hook", criteria, channel={"header": headers}))
    handshake = receiver.requests(sub, kind="handshake")
    assert len(handshake) == 1 and handshake[0].body == b""

    await api.post("/Patient", json=patient("Alharbi", "male"))
    await api.post("/Patient", json=patient("Alqahtani"))
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    [note] = receiver.requests(sub)
    assert (note.method, note.path, note.body) == ("POST", "/hook", b"")
    assert note.headers["authorization"] == "Bearer portal-token"
    assert note.headers["x-tenant"] == "clinic-7"
    assert note.signature_ok is True


async def test_with_payload_each_event_puts_the_version_that_was_written(api, receiver):
    sub = await subscribe(api, rest_hook(receiver.url + "/fhir", "Patient?gender=female", payload=True))
    [handshake] = receiver.requests(sub, kind="handshake")
    assert handshake.json()["type"] == "history"
    assert status_parameter(handshake.json(), "type")[0]["valueCode"] == "handshake"

    created = (await api.post("/Patient", json=patient("Alqahtani"))).json()
    changed = dict(created, name=[{"family": "Alotaibi"}])
    await api.put(f"/Patient/{created['id']}", json=changed)
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2])
    first, second = receiver.requests(sub)
    assert (first.method, first.path) == ("PUT", f"/fhir/Patient/{created['id']}")
    assert first.headers["content-type"] == FHIR_JSON
    assert first.json()["name"][0]["family"] == "Alqahtani" and first.json()["meta"]["versionId"] == "1"
    assert second.json()["name"][0]["family"] == "Alotaibi" and second.json()["meta"]["versionId"] == "2"
    assert first.signature_ok and second.signature_ok


async def test_a_connection_the_endpoint_closed_while_idle_is_reopened_without_a_failure(api):
    receiver = Receiver(keep_alive=0.2).start()
    try:
        sub = await subscribe(api, rest_hook(receiver.url + "/hook", "Patient?gender=female"))
        await api.post("/Patient", json=patient("First"))
        await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
        await asyncio.sleep(0.6)
        await api.post("/Patient", json=patient("Second"))
        await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2])
        status = (await api.get(f"/Subscription/{sub}/$status")).json()
        assert status_parameter(status, "consecutive-failures")[0]["valueInteger"] == 0
        attempts = status_parameter(status, "delivery-attempt")
        assert all({p["name"]: p for p in a["part"]}["outcome"]["valueCode"] == "delivered" for a in attempts)
    finally:
        receiver.stop()


NOTIFY_DELETES = [{"url": "urn:nphies-facade:subscription:notify-deletes", "valueBoolean": True}]


async def test_a_deletion_notifies_only_the_subscriptions_that_ask_for_deletions(api, receiver):
    criteria = "Patient?gender=female"
    deletes = await subscribe(
        api, rest_hook(receiver.url + "/fhir", criteria, payload=True, extension=NOTIFY_DELETES)
    )
    empty = await subscribe(api, rest_hook(receiver.url + "/hook", criteria, extension=NOTIFY_DELETES))
    plain = await subscribe(api, rest_hook(receiver.url + "/plain", criteria, payload=True))

    created = (await api.post("/Patient", json=patient("Alqahtani"))).json()
    assert (await api.delete(f"/Patient/{created['id']}")).status_code in (200, 204)
    await receiver.wait_for(lambda: receiver.numbers(deletes) == [1, 2] and receiver.numbers(empty) == [1, 2])
    put, delete = receiver.requests(deletes)
    assert (put.method, delete.method) == ("PUT", "DELETE")
    assert delete.path == f"/fhir/Patient/{created['id']}" and delete.body == b""
    assert delete.signature_ok is True
    assert [(r.method, r.path, r.body) for r in receiver.requests(empty)] == [("POST", "/hook", b"")] * 2

    await api.post("/Patient", json=patient("Later"))
    await receiver.wait_for(lambda: receiver.numbers(plain) == [1, 2])
    assert [r.method for r in receiver.requests(plain)] == ["PUT", "PUT"]
    events = (await api.get(f"/Subscription/{deletes}/$events")).json()
    status, created_entry, deletion, later = events["entry"]
    assert deletion["request"] == {"method": "DELETE", "url": f"Patient/{created['id']}"}
    assert "resource" not in deletion and created_entry["resource"]["id"] == created["id"]


async def test_a_deletion_matches_the_version_it_ended(api, receiver):
    sub = await subscribe(
        api,
        rest_hook(receiver.url + "/fhir", "Patient?gender=female", payload=True, extension=NOTIFY_DELETES),
    )
    male = (await api.post("/Patient", json=patient("Alharbi", "male"))).json()
    await api.delete(f"/Patient/{male['id']}")
    female = (await api.post("/Patient", json=patient("Alqahtani"))).json()
    await api.delete(f"/Patient/{female['id']}")
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2])
    assert [(r.method, r.path) for r in receiver.requests(sub)] == [
        ("PUT", f"/fhir/Patient/{female['id']}"),
        ("DELETE", f"/fhir/Patient/{female['id']}"),
    ]


async def test_deletions_are_refused_for_workflow_and_topic_subscriptions(api):
    workflow = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "test",
        "criteria": "Patient?gender=female",
        "channel": {"type": "message", "endpoint": "urn:nphies-facade:workflow:demo"},
        "extension": NOTIFY_DELETES,
    }
    refused = await api.post("/Subscription", json=workflow)
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["expression"] == ["Subscription.extension"]
    broken = rest_hook(
        "http://127.0.0.1:9/hook",
        "Patient?gender=female",
        extension=[{"url": NOTIFY_DELETES[0]["url"], "valueString": "yes"}],
    )
    assert (await api.post("/Subscription", json=broken)).status_code == 400


async def test_a_rolled_back_transaction_produces_no_notification(api, receiver):
    sub = await subscribe(api, rest_hook(receiver.url + "/fhir", "Patient?gender=female", payload=True))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient("Rolledback"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "DELETE", "url": "Patient/does-not-exist"}},
            {
                "resource": {"resourceType": "Patient", "gender": 7},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    assert (await api.post("/", json=bundle)).status_code >= 400
    kept = (await api.post("/Patient", json=patient("Committed"))).json()
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    await asyncio.sleep(0.3)
    [note] = receiver.requests(sub)
    assert note.path == f"/fhir/Patient/{kept['id']}"


async def test_outage_then_500s_then_recovery_delivers_everything_in_order(api, receiver):
    sub = await subscribe(api, rest_hook(receiver.url + "/hook", "Patient?gender=female"))
    receiver.stop()
    for i in range(5):
        await api.post("/Patient", json=patient(f"Down{i}"))
    await wait_status(api, sub, "error")
    assert "failed" in (await api.get(f"/Subscription/{sub}")).json()["error"]

    receiver.status = 500
    receiver.start()
    for i in range(5):
        await api.post("/Patient", json=patient(f"Failing{i}"))
    await asyncio.sleep(0.5)
    assert await status_of(api, sub) == "error"
    assert receiver.numbers(sub) == []

    receiver.status = 200
    await receiver.wait_for(lambda: len(receiver.numbers(sub)) == 10)
    assert receiver.numbers(sub) == list(range(1, 11))
    await wait_status(api, sub, "active")
    assert "error" not in (await api.get(f"/Subscription/{sub}")).json()


async def test_a_failing_subscription_does_not_hold_up_another(api, receiver):
    broken = await subscribe(api, rest_hook(receiver.url + "/broken", "Patient?gender=female"))
    healthy = await subscribe(api, rest_hook(receiver.url + "/ok", "Patient?gender=female"))
    receiver.stop()
    other = Receiver(secret=receiver.secret).start()
    try:
        current = (await api.get(f"/Subscription/{healthy}")).json()
        current["channel"]["endpoint"] = other.url + "/ok"
        await api.put(f"/Subscription/{healthy}", json=current)
        await wait_status(api, healthy, "active")
        for i in range(3):
            await api.post("/Patient", json=patient(f"P{i}"))
        await other.wait_for(lambda: other.numbers(healthy) == [1, 2, 3])
        await wait_status(api, broken, "error")
    finally:
        other.stop()
        receiver.start()


async def test_end_is_honoured(api, receiver):
    end = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat(timespec="milliseconds")
    sub = await subscribe(api, rest_hook(receiver.url + "/hook", "Patient?gender=female", end=end))
    await api.post("/Patient", json=patient("Before"))
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    await wait_status(api, sub, "off", within=10)
    await api.post("/Patient", json=patient("After"))
    await asyncio.sleep(0.5)
    assert receiver.numbers(sub) == [1]


async def test_status_and_events_report_numbers_attempts_and_resources(api, receiver):
    sub = await subscribe(api, rest_hook(receiver.url + "/fhir", "Patient?gender=female", payload=True))
    ids = [(await api.post("/Patient", json=patient(f"F{i}"))).json()["id"] for i in range(3)]
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2, 3])

    status = (await api.get(f"/Subscription/{sub}/$status")).json()
    assert status["type"] == "searchset"
    assert status_parameter(status, "events-since-subscription-start")[0]["valueString"] == "3"
    assert status_parameter(status, "status")[0]["valueCode"] == "active"
    attempts = status_parameter(status, "delivery-attempt")
    assert attempts and {p["name"]: p for p in attempts[0]["part"]}["outcome"]["valueCode"] == "delivered"

    events = (await api.get(f"/Subscription/{sub}/$events?eventsSinceNumber=2&eventsUntilNumber=3")).json()
    assert events["type"] == "history"
    numbers = [
        {p["name"]: p for p in e["part"]}["event-number"]["valueString"]
        for e in status_parameter(events, "notification-event")
    ]
    assert numbers == ["2", "3"]
    assert [e["resource"]["id"] for e in events["entry"][1:]] == ids[1:]

    post = await api.post(
        f"/Subscription/{sub}/$events",
        json={"resourceType": "Parameters", "parameter": [{"name": "eventsSinceNumber", "valueString": "3"}]},
    )
    assert len(status_parameter(post.json(), "notification-event")) == 1
    assert (await api.get(f"/Subscription/{sub}/$events?eventsSinceNumber=x")).status_code == 400
    assert (await api.get("/Subscription/nope/$status")).status_code == 404


async def test_dead_letters_set_error_and_resend_delivers_them(sub_settings, receiver):
    settings = sub_settings.model_copy(update={"retry_window": 0.3, "failures_before_error": 100})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fhir.test") as api:
            sub = await subscribe(api, rest_hook(receiver.url + "/hook", "Patient?gender=female"))
            receiver.status = 500
            for i in range(2):
                await api.post("/Patient", json=patient(f"Lost{i}"))

            async def both_dead() -> bool:
                status = (await api.get(f"/Subscription/{sub}/$status")).json()
                return status_parameter(status, "events-dead")[0]["valueInteger"] == 2

            await eventually(both_dead, what="two dead letters")
            assert await status_of(api, sub) == "error"
            assert "dead letter" in (await api.get(f"/Subscription/{sub}")).json()["error"]

            receiver.status = 200
            resent = (await api.post(f"/Subscription/{sub}/$resend")).json()
            assert resent["parameter"][1]["valueInteger"] == 2
            await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2])
            await wait_status(api, sub, "active")


async def test_delivery_state_survives_a_restart(sub_settings, receiver):
    async def run(steps):
        app = create_app(sub_settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fhir.test") as api:
                return await steps(api)

    async def before(api):
        sub = await subscribe(api, rest_hook(receiver.url + "/hook", "Patient?gender=female"))
        receiver.stop()
        for i in range(3):
            await api.post("/Patient", json=patient(f"Pending{i}"))
        return sub

    sub = await run(before)
    receiver.start()

    async def after(api):
        await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2, 3])
        status = (await api.get(f"/Subscription/{sub}/$status")).json()
        assert status_parameter(status, "events-since-subscription-start")[0]["valueString"] == "3"
        events = (await api.get(f"/Subscription/{sub}/$events")).json()
        assert len(status_parameter(events, "notification-event")) == 3

    await run(after)
