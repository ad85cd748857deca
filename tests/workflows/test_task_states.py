"""The R4 Task state machine holds for every way a Task can be written, through real HTTP on the app."""

import pytest

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.task_states import HELD_FROM, TRANSITIONS, check_transition, held_from

JSON_PATCH = "application/json-patch+json"


def task(status: str, **extra) -> dict:
    return {"resourceType": "Task", "status": status, "intent": "order", **extra}


async def create(client, status: str, **extra) -> dict:
    response = await client.post("/Task", json=task(status, **extra))
    assert response.status_code == 201, response.text
    return response.json()


async def put_status(client, body: dict, status: str):
    return await client.put(f"/Task/{body['id']}", json={**body, "status": status})


async def patch_status(client, task_id: str, status: str):
    ops = [{"op": "replace", "path": "/status", "value": status}]
    return await client.patch(f"/Task/{task_id}", json=ops, headers={"Content-Type": JSON_PATCH})


def assert_refused(response, before: str, after: str) -> None:
    assert response.status_code == 409, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text = outcome["issue"][0]["diagnostics"]
    assert f"from {before} to {after}" in text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("draft", "requested"),
        ("requested", "received"),
        ("requested", "accepted"),
        ("requested", "rejected"),
        ("requested", "in-progress"),
        ("received", "ready"),
        ("accepted", "in-progress"),
        ("ready", "in-progress"),
        ("in-progress", "completed"),
        ("in-progress", "failed"),
        ("in-progress", "on-hold"),
        ("completed", "entered-in-error"),
        ("cancelled", "entered-in-error"),
    ],
)
def test_spec_transitions_are_allowed(before: str, after: str) -> None:
    check_transition(task(before), task(after))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("draft", "completed"),
        ("draft", "in-progress"),
        ("requested", "completed"),
        ("accepted", "rejected"),
        ("completed", "in-progress"),
        ("failed", "requested"),
        ("cancelled", "completed"),
        ("rejected", "accepted"),
        ("entered-in-error", "draft"),
        ("in-progress", "requested"),
    ],
)
def test_illegal_transitions_are_refused(before: str, after: str) -> None:
    with pytest.raises(FhirError) as refused:
        check_transition(task(before), task(after))
    assert refused.value.status == 409
    assert f"from {before} to {after}" in refused.value.issues[0].diagnostics


def test_every_status_may_stay_where_it_is() -> None:
    for status in TRANSITIONS:
        check_transition(task(status), task(status))


def test_an_unknown_status_is_a_bad_request() -> None:
    with pytest.raises(FhirError) as refused:
        check_transition(None, task("finished"))
    assert refused.value.status == 400


async def test_update_and_patch_follow_the_state_machine(client) -> None:
    body = await create(client, "requested")
    assert_refused(await put_status(client, body, "completed"), "requested", "completed")
    assert (await patch_status(client, body["id"], "in-progress")).status_code == 200
    assert (await patch_status(client, body["id"], "completed")).status_code == 200
    assert_refused(await patch_status(client, body["id"], "in-progress"), "completed", "in-progress")
    stored = (await client.get(f"/Task/{body['id']}")).json()
    assert stored["status"] == "completed"
    assert stored["meta"]["versionId"] == "3"


async def test_an_update_without_a_transition_is_allowed_in_a_final_status(client) -> None:
    body = await create(client, "completed")
    response = await client.put(f"/Task/{body['id']}", json={**body, "description": "annotated later"})
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "annotated later"


async def test_entered_in_error_is_final(client) -> None:
    body = await create(client, "failed")
    assert (await patch_status(client, body["id"], "entered-in-error")).status_code == 200
    assert_refused(await patch_status(client, body["id"], "failed"), "entered-in-error", "failed")


async def test_on_hold_resumes_only_to_the_status_it_was_held_from(client) -> None:
    body = await create(client, "ready")
    held = await patch_status(client, body["id"], "on-hold")
    assert held.status_code == 200
    assert held_from(held.json()) == "ready"
    assert_refused(await patch_status(client, body["id"], "in-progress"), "on-hold", "in-progress")
    # A client update while on hold that drops the extension keeps the server's memory.
    current = held.json()
    current.pop("extension")
    kept = await client.put(f"/Task/{body['id']}", json={**current, "description": "waiting for the payer"})
    assert held_from(kept.json()) == "ready"
    resumed = await patch_status(client, body["id"], "ready")
    assert resumed.status_code == 200
    assert held_from(resumed.json()) is None


async def test_the_hold_memory_is_the_servers_not_the_clients(client) -> None:
    body = await create(client, "in-progress")
    forged = {**body, "status": "on-hold", "extension": [{"url": HELD_FROM, "valueCode": "requested"}]}
    held = await client.put(f"/Task/{body['id']}", json=forged)
    assert held.status_code == 200
    assert held_from(held.json()) == "in-progress"
    assert_refused(await patch_status(client, body["id"], "requested"), "on-hold", "requested")


async def test_conditional_update_and_patch_are_checked(client) -> None:
    identifier = {"system": "urn:test:task", "value": "cond-1"}
    body = await create(client, "requested", identifier=[identifier])
    query = "identifier=urn:test:task|cond-1"
    refused = await client.put(f"/Task?{query}", json=task("completed", identifier=[identifier]))
    assert_refused(refused, "requested", "completed")
    ops = [{"op": "replace", "path": "/status", "value": "draft"}]
    refused = await client.patch(f"/Task?{query}", json=ops, headers={"Content-Type": JSON_PATCH})
    assert_refused(refused, "requested", "draft")
    accepted = await client.put(f"/Task?{query}", json=task("accepted", identifier=[identifier]))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["id"] == body["id"]


async def test_an_illegal_transition_in_a_transaction_writes_nothing(client) -> None:
    body = await create(client, "completed")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": task("requested"), "request": {"method": "POST", "url": "Task"}},
            {
                "resource": {**body, "status": "in-progress"},
                "request": {"method": "PUT", "url": f"Task/{body['id']}"},
            },
        ],
    }
    response = await client.post("/", json=bundle)
    assert response.status_code == 409, response.text
    assert "from completed to in-progress" in response.text
    assert (await client.get(f"/Task/{body['id']}")).json()["meta"]["versionId"] == "1"
    assert not (await client.get("/Task", params={"status": "requested"})).json().get("entry")


async def test_a_batch_entry_gets_its_own_409(client) -> None:
    body = await create(client, "cancelled")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {**body, "status": "ready"},
                "request": {"method": "PUT", "url": f"Task/{body['id']}"},
            },
            {"resource": task("draft"), "request": {"method": "POST", "url": "Task"}},
        ],
    }
    response = await client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["status"].startswith("409")
    assert "from cancelled to ready" in first["response"]["outcome"]["issue"][0]["diagnostics"]
    assert second["response"]["status"].startswith("201")
