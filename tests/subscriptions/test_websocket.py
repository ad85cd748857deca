"""The R4 websocket channel through a real server: bind/bound/ping, many clients per Subscription,
clients that go away, and status checks on what may be bound."""

import asyncio
import uuid

import pytest
import websockets

from .conftest import subscribe

pytestmark = pytest.mark.integration


def websocket_subscription(criteria: str) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "portal live updates",
        "criteria": criteria,
        "channel": {"type": "websocket"},
    }


def task(owner: str, status: str = "requested") -> dict:
    return {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "owner": {"reference": f"Organization/{owner}"},
    }


async def post_task(http_client, owner: str):
    """A Task owned by an Organization, created first (referential integrity)."""
    json_type = {"Content-Type": "application/fhir+json"}
    organization = {"resourceType": "Organization", "id": owner, "name": f"Provider {owner}"}
    answer = await http_client.put(f"/Organization/{owner}", json=organization, headers=json_type)
    assert answer.status_code in (200, 201), answer.text
    return await http_client.post("/Task", json=task(owner), headers=json_type)


async def bind(url: str, subscription_id: str):
    socket = await websockets.connect(url.replace("http", "ws") + "/websocket")
    await socket.send(f"bind {subscription_id}")
    assert await asyncio.wait_for(socket.recv(), 5) == f"bound {subscription_id}"
    return socket


async def test_bound_clients_are_pinged_for_each_event(embedded_server, http_client):
    owner = uuid.uuid4().hex
    sub = await subscribe(http_client, websocket_subscription(f"Task?owner=Organization/{owner}"))
    first, second = await bind(embedded_server, sub), await bind(embedded_server, sub)
    try:
        await post_task(http_client, owner)
        await post_task(http_client, "someone-else")
        assert await asyncio.wait_for(first.recv(), 5) == f"ping {sub}"
        assert await asyncio.wait_for(second.recv(), 5) == f"ping {sub}"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(first.recv(), 0.5)
    finally:
        await first.close()
        await second.close()


async def test_a_deletion_pings_a_client_whose_subscription_asks_for_deletions(embedded_server, http_client):
    owner = uuid.uuid4().hex
    subscription = websocket_subscription(f"Task?owner=Organization/{owner}")
    subscription["extension"] = [
        {"url": "urn:nphies-facade:subscription:notify-deletes", "valueBoolean": True}
    ]
    sub = await subscribe(http_client, subscription)
    socket = await bind(embedded_server, sub)
    try:
        created = await post_task(http_client, owner)
        assert await asyncio.wait_for(socket.recv(), 5) == f"ping {sub}"
        await http_client.delete(f"/Task/{created.json()['id']}")
        assert await asyncio.wait_for(socket.recv(), 5) == f"ping {sub}"
    finally:
        await socket.close()


async def test_a_client_that_goes_away_is_forgotten_and_the_subscription_stays_active(
    embedded_server, http_client
):
    owner = uuid.uuid4().hex
    sub = await subscribe(http_client, websocket_subscription(f"Task?owner=Organization/{owner}"))
    gone = await bind(embedded_server, sub)
    gone.transport.abort()  # the client vanishes without a closing handshake
    staying = await bind(embedded_server, sub)
    try:
        for _ in range(2):
            await post_task(http_client, owner)
            assert await asyncio.wait_for(staying.recv(), 5) == f"ping {sub}"
        assert (await http_client.get(f"/Subscription/{sub}")).json()["status"] == "active"
    finally:
        await staying.close()
    again = await bind(embedded_server, sub)
    try:
        await post_task(http_client, owner)
        assert await asyncio.wait_for(again.recv(), 5) == f"ping {sub}"
    finally:
        await again.close()


async def test_only_live_websocket_subscriptions_can_be_bound(embedded_server, http_client):
    socket = await websockets.connect(embedded_server.replace("http", "ws") + "/websocket")
    try:
        await socket.send("bind no-such-subscription")
        assert (await asyncio.wait_for(socket.recv(), 5)).startswith("error no-such-subscription")
        await socket.send("hello")
        assert (await asyncio.wait_for(socket.recv(), 5)).startswith("error")
    finally:
        await socket.close()
