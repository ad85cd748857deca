"""$cancel and Task $poll in process, and Tasks left behind by a process that died."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from nphies_facade.operations.codes import STEP_DUE
from nphies_facade.resources.clock import fhir_instant

from .conftest import fast_settings
from .helpers import contained_errors, error_codes, exchanges, outputs, read, step, task_path, wait_for_task
from .material import INSTITUTIONAL_PA, VISION_CLAIM, material, parameters, store


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """Pended answers are released after 0.5 s; polls are 30 s apart, so only $poll gets them sooner."""
    folder = tmp_path_factory.mktemp("cancel-and-poll")
    config = folder / "simulator.json"
    config.write_text(json.dumps({"deferred_delay": 0.5}))
    return fast_settings(folder / "data", nphies_simulator_config=config, nphies_poll_schedule="30")


async def pended(client, sample: str = INSTITUTIONAL_PA) -> tuple[dict, str]:
    found = material(sample, priority="deferred")
    await store(client, found)
    response = await client.post(f"/{found.claim}/$submit")
    path = task_path(response)
    for _ in range(100):
        task = (await client.get(path)).json()
        if step(task) == "pended":
            return found.focus, path
        await asyncio.sleep(0.05)
    raise AssertionError(f"the Task never pended: {task}")


async def test_poll_now_collects_the_answer_before_the_next_scheduled_poll(client) -> None:
    _, path = await pended(client)
    for _ in range(50):
        polled = await client.post(f"{path}/$poll")
        assert polled.status_code == 200
        if polled.json()["status"] != "in-progress":
            break
        await asyncio.sleep(0.1)
    task = polled.json()
    assert (task["status"], step(task)) == ("completed", "answered")
    events = [event for event, _ in await exchanges(client, task)]
    assert events[0] == "priorauth-request" and set(events[1:]) == {"poll-request"}


async def test_poll_of_an_ended_task_returns_it_and_of_other_tasks_is_refused(client) -> None:
    found = material(VISION_CLAIM)
    await store(client, found)
    path = task_path(await client.post(f"/{found.claim}/$submit"))
    done = await wait_for_task(client, path)
    again = await client.post(f"{path}/$poll")
    assert again.status_code == 200 and again.json()["meta"]["versionId"] == done["meta"]["versionId"]
    other = await client.post(
        "/Task", json={"resourceType": "Task", "status": "requested", "intent": "order"}
    )
    assert (await client.post(f"/Task/{other.json()['id']}/$poll")).status_code == 422


async def test_cancel_ends_the_pending_submission(client) -> None:
    claim, path = await pended(client)
    response = await client.post(f"/Claim/{claim['id']}/$cancel", json=parameters(reason="NP"))
    assert response.status_code == 200, response.text
    cancel = response.json()
    assert (cancel["code"]["coding"][0]["code"], cancel["status"]) == ("cancel", "completed")
    assert cancel["input"][0]["valueCode"] == "NP"
    submission = (await client.get(path)).json()
    assert (submission["status"], step(submission)) == ("cancelled", "cancelled")
    await asyncio.sleep(0.6)
    assert (await client.post(f"{path}/$poll")).json()["status"] == "cancelled"
    again = (await client.post(f"/Claim/{claim['id']}/$cancel")).json()
    assert (again["status"], again["businessStatus"]["text"]) == ("completed", "already cancelled")


async def test_cancel_of_a_claim_nphies_never_saw_fails_with_its_error(client) -> None:
    found = material(VISION_CLAIM)
    await store(client, found)
    response = await client.post(f"/{found.claim}/$cancel")
    assert response.status_code == 200
    task = response.json()
    assert task["status"] == "failed" and error_codes(contained_errors(task)) == ["BV-00222"]
    [record] = outputs(task, "exchange")
    assert await exchanges(client, task) == [("cancel-request", "answered")]
    assert (await read(client, record["reference"]))["context"]["related"] == [
        {"reference": f"Task/{task['id']}"}
    ]


async def test_task_abandoned_mid_send_is_checked_and_completed(client) -> None:
    """As a process that died after taking the send step leaves it: in flight, its lease over."""
    found = material(VISION_CLAIM)
    await store(client, found)
    past = fhir_instant(datetime.now(UTC) - timedelta(seconds=5))
    task = {
        "resourceType": "Task",
        "identifier": [{"system": "urn:nphies-facade:submit", "value": f"{found.claim}/_history/1"}],
        "status": "in-progress",
        "intent": "order",
        "code": {"coding": [{"system": "urn:nphies-facade:operation", "code": "submit"}]},
        "focus": {"reference": found.claim},
        "input": [
            {
                "type": {"coding": [{"system": "urn:nphies-facade:task-input", "code": "claim"}]},
                "valueReference": {"reference": f"{found.claim}/_history/1"},
            }
        ],
        "businessStatus": {"coding": [{"system": "urn:nphies-facade:nphies-step", "code": "sending"}]},
        "extension": [{"url": STEP_DUE, "valueInstant": past}],
    }
    created = await client.post("/Task", json=task)
    done = await wait_for_task(client, f"/Task/{created.json()['id']}")
    assert done["status"] == "completed", done
    assert await exchanges(client, done) == [("status-check", "answered"), ("claim-request", "answered")]
