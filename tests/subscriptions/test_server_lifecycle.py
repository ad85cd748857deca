"""The Subscription lifecycle through a real `nphies-facade serve` process (embedded mode):
requested -> active -> error -> active, end honoured, $status and $events over HTTP, bad criteria 400."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import rest_hook, status_of, status_parameter, subscribe, wait_status

pytestmark = pytest.mark.integration


def patient(marker: str) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:test:life", "value": marker}]}


async def test_requested_active_error_active(http_client, receiver):
    marker = uuid.uuid4().hex
    subscription = rest_hook(receiver.url + "/hook", f"Patient?identifier=urn:test:life|{marker}")
    created = await http_client.post("/Subscription", json=subscription)
    assert created.json()["status"] == "requested"
    sub = created.json()["id"]
    await wait_status(http_client, sub, "active")
    assert len(receiver.requests(sub, kind="handshake")) == 1

    receiver.status = 500
    for _ in range(3):
        await http_client.post("/Patient", json=patient(marker))
    await wait_status(http_client, sub, "error")
    failing = (await http_client.get(f"/Subscription/{sub}")).json()
    assert "HTTP 500" in failing["error"]
    status = (await http_client.get(f"/Subscription/{sub}/$status")).json()
    assert status_parameter(status, "status")[0]["valueCode"] == "error"
    assert status_parameter(status, "events-pending")[0]["valueInteger"] >= 1
    assert {p["name"]: p for p in status_parameter(status, "delivery-attempt")[0]["part"]}["http-status"][
        "valueInteger"
    ] == 500

    receiver.status = 200
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1, 2, 3])
    await wait_status(http_client, sub, "active")
    events = (await http_client.get(f"/Subscription/{sub}/$events?eventsSinceNumber=1")).json()
    assert len(status_parameter(events, "notification-event")) == 3


async def test_end_turns_the_subscription_off(http_client, receiver):
    marker = uuid.uuid4().hex
    end = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="milliseconds")
    sub = await subscribe(
        http_client, rest_hook(receiver.url + "/hook", f"Patient?identifier=urn:test:life|{marker}", end=end)
    )
    await wait_status(http_client, sub, "off", within=10)
    await http_client.post("/Patient", json=patient(marker))
    await asyncio.sleep(0.5)
    assert receiver.numbers(sub) == [] and await status_of(http_client, sub) == "off"


async def test_criteria_that_need_other_resources_are_refused(http_client):
    subscription = rest_hook("http://127.0.0.1:9/h", "Patient?_has:Observation:subject:code=1234-5")
    response = await http_client.post("/Subscription", json=subscription)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "not-supported"
