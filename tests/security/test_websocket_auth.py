"""The websocket channel with authentication on: no token, no binding; a token may bind only the
Subscriptions its scopes let it read."""

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from nphies_facade.server.app import create_app

from .conftest import BASE, FHIR_JSON, bearer

SUBSCRIPTION = {
    "resourceType": "Subscription",
    "status": "requested",
    "reason": "portal live updates",
    "criteria": "Task?status=requested",
    "channel": {"type": "websocket"},
}


@pytest.fixture
def client(secure_settings, clock):
    with TestClient(create_app(secure_settings, clock), base_url=BASE) as test_client:
        yield test_client


@pytest.fixture
def subscription_id(client, mint) -> str:
    answer = client.post(
        "/Subscription", json=SUBSCRIPTION, headers={**bearer(mint()), "Content-Type": FHIR_JSON}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_bind_without_a_token_is_refused(client, subscription_id):
    with client.websocket_connect("/websocket") as socket:
        socket.send_text(f"bind {subscription_id}")
        assert socket.receive_text().startswith("error unauthenticated")


def test_a_bad_token_in_the_handshake_closes_the_connection(client, subscription_id):
    with client.websocket_connect("/websocket", headers=bearer("not-a-token")) as socket:
        assert socket.receive_text().startswith("error unauthenticated")
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 1008


def test_a_token_in_the_handshake_binds(client, mint, subscription_id):
    with client.websocket_connect("/websocket", headers=bearer(mint("system/Subscription.r"))) as socket:
        socket.send_text(f"bind {subscription_id}")
        assert socket.receive_text() == f"bound {subscription_id}"


def test_a_token_message_binds_for_browsers(client, mint, subscription_id):
    with client.websocket_connect("/websocket") as socket:
        socket.send_text(f"token {mint('system/Subscription.r')}")
        assert socket.receive_text() == "authenticated"
        socket.send_text(f"bind {subscription_id}")
        assert socket.receive_text() == f"bound {subscription_id}"


def test_a_token_that_may_not_read_subscriptions_cannot_bind(client, mint, subscription_id):
    with client.websocket_connect("/websocket", headers=bearer(mint("system/Patient.r"))) as socket:
        socket.send_text(f"bind {subscription_id}")
        assert socket.receive_text() == f"error {subscription_id} may not be read by this client"
