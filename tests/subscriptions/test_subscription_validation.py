"""Creating and updating Subscriptions: criteria that cannot be evaluated in memory and channels that
cannot be served are refused with 400; `active` and `error` are the server's to set."""

import pytest

from .conftest import rest_hook, status_of, subscribe, wait_status


@pytest.mark.parametrize(
    ("criteria", "why"),
    [
        ("Patient?general-practitioner:Practitioner.name=Ali", "other resources"),
        ("Patient?_has:Observation:subject:code=1234-5", "other resources"),
        ("Patient?shoe-size=42", "Unknown search parameter"),
        ("Patient?gender=female&_count=10", "result parameters"),
        ("Patient?_include=Patient:organization", "result parameters"),
        ("Spaceship?name=x", "unknown resource type"),
        ("Observation?date=yesterday", "not a valid date"),
    ],
)
async def test_criteria_that_cannot_be_evaluated_in_memory_are_refused(api, criteria, why):
    response = await api.post("/Subscription", json=rest_hook("http://127.0.0.1:9/hook", criteria))
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert why in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"] == ["Subscription.criteria"]


@pytest.mark.parametrize(
    ("channel", "where"),
    [
        ({"type": "email", "endpoint": "mailto:ops@example.org"}, "Subscription.channel.type"),
        ({"type": "rest-hook", "endpoint": "ftp://example.org/x"}, "Subscription.channel.endpoint"),
        ({"type": "rest-hook"}, "Subscription.channel.endpoint"),
        ({"type": "message", "endpoint": "urn:other:thing"}, "Subscription.channel.endpoint"),
        (
            {"type": "rest-hook", "endpoint": "http://x/h", "payload": "application/xml"},
            "Subscription.channel.payload",
        ),
        (
            {"type": "rest-hook", "endpoint": "http://x/h", "header": ["no colon here"]},
            "Subscription.channel.header[0]",
        ),
    ],
)
async def test_channels_that_cannot_be_served_are_refused(api, channel, where):
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "test",
        "criteria": "Patient?gender=female",
        "channel": channel,
    }
    response = await api.post("/Subscription", json=subscription)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [where]


async def test_an_update_with_bad_criteria_is_refused_and_nothing_changes(api):
    subscription_id = await subscribe(
        api, rest_hook("http://127.0.0.1:9/h", "Patient?gender=male"), active=False
    )
    current = (await api.get(f"/Subscription/{subscription_id}")).json()
    current["criteria"] = "Patient?_has:Observation:subject:code=x"
    response = await api.put(f"/Subscription/{subscription_id}", json=current)
    assert response.status_code == 400
    assert (await api.get(f"/Subscription/{subscription_id}")).json()["meta"]["versionId"] == "1"


async def test_a_transaction_with_a_bad_subscription_writes_nothing(api):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7d3c0a8e-1f7e-4a55-9b0a-2f2b3c4d5e6f",
                "resource": {"resourceType": "Patient", "gender": "female"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": rest_hook("http://127.0.0.1:9/h", "Patient?_has:Observation:subject:code=x"),
                "request": {"method": "POST", "url": "Subscription"},
            },
        ],
    }
    response = await api.post("/", json=bundle)
    assert response.status_code == 400
    assert not (await api.get("/_history")).json().get("entry")


async def test_client_set_active_becomes_requested_and_the_server_activates(api):
    subscription = {
        "resourceType": "Subscription",
        "status": "active",
        "reason": "portal",
        "criteria": "Task?status=requested",
        "channel": {"type": "websocket"},
    }
    response = await api.post("/Subscription", json=subscription)
    assert response.status_code == 201
    assert response.json()["status"] == "requested"
    subscription_id = response.json()["id"]
    await wait_status(api, subscription_id, "active")


async def test_a_client_update_that_keeps_criteria_and_channel_keeps_the_status(api):
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "portal",
        "criteria": "Task?status=requested",
        "channel": {"type": "websocket"},
    }
    subscription_id = await subscribe(api, subscription)
    current = (await api.get(f"/Subscription/{subscription_id}")).json()
    current["reason"] = "portal, renamed"
    assert (await api.put(f"/Subscription/{subscription_id}", json=current)).json()["status"] == "active"
    current = (await api.get(f"/Subscription/{subscription_id}")).json()
    current["criteria"] = "Task?status=accepted"
    assert (await api.put(f"/Subscription/{subscription_id}", json=current)).json()["status"] == "requested"
    await wait_status(api, subscription_id, "active")
    current = (await api.get(f"/Subscription/{subscription_id}")).json()
    current["status"] = "off"
    assert (await api.put(f"/Subscription/{subscription_id}", json=current)).json()["status"] == "off"
    assert await status_of(api, subscription_id) == "off"
