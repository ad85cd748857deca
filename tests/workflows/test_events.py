"""Workflow events as subscription topics: a real rest-hook receiver on loopback gets the backport
notification Bundle of each event, only for its topic and filter, and never for a rolled-back write."""

import pytest

from nphies_facade import exact_json
from nphies_facade.resources.context import RequestContext
from nphies_facade.workflows.events import EVENTS, TOPIC_BASE, emit, topic_url
from tests.json_text import numbers_in, parsed
from tests.subscriptions.conftest import rest_hook, status_parameter, subscribe

EVENT_CODES = "http://nphies-facade.org/fhir/CodeSystem/workflow-event"


@pytest.fixture
def events_app(sub_app):
    """The subscriptions suite's app (tests/conftest.py keeps the journeys out of it; see conftest.py)."""
    return sub_app


def claim() -> dict:
    return {
        "resourceType": "Claim",
        "status": "active",
        "use": "claim",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "oral"}]},
        "patient": {"reference": "Patient/p1"},
        "created": "2026-11-25",
        "provider": {"reference": "Organization/o1"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/c1"}}],
    }


PARTIES = {
    "Patient/p1": {"resourceType": "Patient", "id": "p1"},
    "Organization/o1": {"resourceType": "Organization", "id": "o1", "name": "Provider"},
    "Coverage/c1": {
        "resourceType": "Coverage",
        "id": "c1",
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/o1"}],
    },
}


async def put_parties(api) -> None:
    """The patient, provider and coverage a Claim names (referential integrity)."""
    for key, resource in PARTIES.items():
        answer = await api.put(f"/{key}", json=resource)
        assert answer.status_code in (200, 201), answer.text


async def post_claim(api) -> dict:
    """A Claim, after the patient, provider and coverage it names (referential integrity)."""
    await put_parties(api)
    created = await api.post("/Claim", json=claim())
    assert created.status_code == 201, created.text
    return created.json()


async def claim_paid(app, claim_id: str, task: dict) -> None:
    """The Task write and the event it causes, in one transaction (as the engine does)."""
    service = app.state.service
    ctx = RequestContext.system("test-workflow")
    async with service.transaction() as tx:
        await service.update(ctx, "Task", task["id"], {**task, "status": "completed"}, tx=tx)
        await emit(service, "claim.paid", f"Claim/{claim_id}", ctx=ctx, tx=tx, data={"amount": 120.5})


async def test_a_topic_subscriber_gets_a_backport_notification_with_the_focus(api, events_app, receiver):
    created = await post_claim(api)
    task = (
        await api.post("/Task", json={"resourceType": "Task", "status": "in-progress", "intent": "order"})
    ).json()
    paid = await subscribe(api, rest_hook(receiver.url + "/events", topic_url("claim.paid"), payload=True))
    other = await subscribe(api, rest_hook(receiver.url + "/other", topic_url("claim.denied"), payload=True))

    await claim_paid(events_app, created["id"], task)

    await receiver.wait_for(lambda: receiver.numbers(paid) == [1])
    [note] = receiver.requests(paid)
    assert (note.method, note.path) == ("POST", "/events")
    assert note.signature_ok is True
    bundle = note.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    status = bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    assert (
        status_parameter(bundle, "subscription")[0]["valueReference"]["reference"] == f"Subscription/{paid}"
    )
    assert status_parameter(bundle, "topic")[0]["valueCanonical"] == f"{TOPIC_BASE}claim.paid"
    assert status_parameter(bundle, "type")[0]["valueCode"] == "event-notification"
    assert status_parameter(bundle, "events-since-subscription-start")[0]["valueString"] == "1"
    event = {p["name"]: p for p in status_parameter(bundle, "notification-event")[0]["part"]}
    assert event["event-number"]["valueString"] == "1"
    assert event["focus"]["valueReference"]["reference"] == f"Claim/{created['id']}/_history/1"
    assert "valueInstant" in event["timestamp"]
    focus = bundle["entry"][1]
    assert focus["fullUrl"] == f"http://fhir.test/Claim/{created['id']}"
    assert focus["resource"]["resourceType"] == "Claim" and focus["resource"]["id"] == created["id"]
    assert receiver.requests(other) == []
    status_answer = (await api.get(f"/Subscription/{paid}/$status")).json()
    assert status_parameter(status_answer, "topic")[0]["valueCanonical"] == f"{TOPIC_BASE}claim.paid"
    replay = (await api.get(f"/Subscription/{paid}/$events")).json()
    assert status_parameter(replay, "topic")[0]["valueCanonical"] == f"{TOPIC_BASE}claim.paid"
    assert status_parameter(replay, "events-since-subscription-start")[0]["valueString"] == "1"


async def test_a_rolled_back_write_emits_nothing(api, events_app, receiver):
    created = await post_claim(api)
    task = (
        await api.post("/Task", json={"resourceType": "Task", "status": "in-progress", "intent": "order"})
    ).json()
    sub = await subscribe(api, rest_hook(receiver.url + "/events", topic_url("claim.paid")))
    service = events_app.state.service
    ctx = RequestContext.system("test-workflow")
    with pytest.raises(RuntimeError):
        async with service.transaction() as tx:
            await emit(service, "claim.paid", f"Claim/{created['id']}", ctx=ctx, tx=tx)
            raise RuntimeError("the step failed after emitting")
    records = await api.get("/Basic", params={"code": f"{EVENT_CODES}|claim.paid"})
    assert not records.json().get("entry")

    await claim_paid(events_app, created["id"], task)
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    [note] = receiver.requests(sub)
    bundle = note.json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Parameters"]  # no payload: no focus
    records = (await api.get("/Basic", params={"code": f"{EVENT_CODES}|claim.paid"})).json()
    [record] = records["entry"]
    assert record["resource"]["subject"]["reference"] == f"Claim/{created['id']}"


async def test_a_focus_filter_selects_the_events_about_one_resource(api, events_app, receiver):
    first = await post_claim(api)
    second = await post_claim(api)
    criteria = f"{topic_url('claim.submitted')}?focus=Claim/{second['id']}"
    sub = await subscribe(api, rest_hook(receiver.url + "/events", criteria, payload=True))
    service = events_app.state.service
    ctx = RequestContext.system("test-workflow")
    await emit(service, "claim.submitted", f"Claim/{first['id']}", ctx=ctx)
    await emit(service, "claim.submitted", f"Claim/{second['id']}", ctx=ctx)
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    [note] = receiver.requests(sub)
    assert note.json()["entry"][1]["resource"]["id"] == second["id"]


async def test_an_event_carries_the_trace_id_of_the_write_that_caused_it(api, events_app):
    created = await post_claim(api)
    service = events_app.state.service
    ctx = RequestContext(actor="test", scopes=("system/*.*",), trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    await emit(service, "claim.adjudicated", f"Claim/{created['id']}", ctx=ctx)
    [record] = (await api.get("/Basic", params={"code": f"{EVENT_CODES}|claim.adjudicated"})).json()["entry"]
    trace = [e for e in record["resource"]["extension"] if e["url"].endswith("/trace-id")]
    assert trace == [
        {"url": "http://nphies-facade.org/fhir/StructureDefinition/trace-id", "valueString": ctx.trace_id}
    ]


async def test_a_topic_notification_carries_the_focus_s_decimals_as_written(api, events_app, receiver):
    body = exact_json.dumps(
        {**claim(), "total": {"value": exact_json.JsonNumber("105.00"), "currency": "SAR"}}
    )
    await put_parties(api)
    answer = await api.post("/Claim", content=body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    task = (
        await api.post("/Task", json={"resourceType": "Task", "status": "in-progress", "intent": "order"})
    ).json()
    paid = await subscribe(api, rest_hook(receiver.url + "/events", topic_url("claim.paid"), payload=True))
    await claim_paid(events_app, created["id"], task)
    await receiver.wait_for(lambda: receiver.numbers(paid) == [1])
    [note] = receiver.requests(paid)
    [focus] = [e["resource"] for e in parsed(note.body)["entry"] if e["resource"]["resourceType"] == "Claim"]
    assert numbers_in(focus["total"]) == ["105.00"]


async def test_unknown_topics_and_filters_are_refused(api, receiver):
    unknown = await api.post("/Subscription", json=rest_hook(receiver.url, f"{TOPIC_BASE}claim.lost"))
    assert unknown.status_code == 400
    assert "unknown topic" in unknown.json()["issue"][0]["diagnostics"]
    bad_filter = await api.post(
        "/Subscription", json=rest_hook(receiver.url, f"{topic_url('claim.paid')}?amount=3")
    )
    assert bad_filter.status_code == 400
    assert bad_filter.json()["issue"][0]["expression"] == ["Subscription.criteria"]


async def test_emit_refuses_unknown_events(events_app):
    with pytest.raises(ValueError):
        await emit(events_app.state.service, "claim.lost", "Claim/1", ctx=RequestContext.system())


async def test_the_capability_statement_lists_every_topic(api):
    statement = (await api.get("/metadata")).json()
    [subscription] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    listed = {e["valueCanonical"] for e in subscription["extension"]}
    assert listed == {f"{TOPIC_BASE}{name}" for name in EVENTS}
