"""People in the loop over real HTTP: an AskPerson step opens a decision Task and the instance waits until
the Task is completed or rejected, through PUT/PATCH or through $approve and $reject."""

from datetime import datetime, timedelta

from nphies_facade.workflows.instances import HUMAN_SYSTEM, timeline

from .engine_support import (
    Toys,
    effects,
    ended,
    instance_when,
    output,
    parameters,
    person_tasks,
    step_of,
)
from .toy_workflows import REVIEWER


async def asked(toys: Toys, subject: str) -> tuple[dict, dict]:
    """The instance on hold at its AskPerson step, and the decision Task it opened."""
    instance = await instance_when(
        toys.client,
        "toy-human",
        subject,
        lambda t: t["status"] == "on-hold",
        "the instance waits for a person",
    )
    [decision] = await person_tasks(toys.client, instance["id"])
    return instance, decision


async def test_ask_person_opens_a_decision_task_and_the_instance_waits(toys: Toys):
    subject = await toys.trigger("toy-human")
    instance, decision = await asked(toys, subject)
    assert step_of(instance) == "ask"
    assert decision["status"] == "requested"
    assert decision["owner"] == {"reference": REVIEWER}
    assert decision["code"]["coding"] == [{"system": HUMAN_SYSTEM, "code": "decision"}]
    assert decision["description"] == "Toy review: approve or reject"
    assert decision["for"] == {"reference": subject}
    authored = datetime.fromisoformat(decision["authoredOn"])
    assert datetime.fromisoformat(decision["restriction"]["period"]["end"]) - authored == timedelta(hours=1)
    assert instance["restriction"]["period"]["end"] == decision["restriction"]["period"]["end"]
    owned = await toys.client.get("/Task", params={"owner": REVIEWER, "status": "requested"})
    assert decision["id"] in {e["resource"]["id"] for e in owned.json().get("entry", [])}


async def test_completing_the_decision_task_with_put_resumes_at_on_approve(toys: Toys):
    subject = await toys.trigger("toy-human")
    instance, decision = await asked(toys, subject)
    patch = [{"op": "replace", "path": "/status", "value": "in-progress"}]
    started = await toys.client.patch(
        f"/Task/{decision['id']}", json=patch, headers={"Content-Type": "application/json-patch+json"}
    )
    assert started.status_code == 200, started.text
    done = await toys.client.put(f"/Task/{decision['id']}", json={**started.json(), "status": "completed"})
    assert done.status_code == 200, done.text

    task = await instance_when(toys.client, "toy-human", subject, ended, "the instance ends")
    assert task["status"] == "completed"
    assert output(task, "decision") == "approved"
    assert output(task, "verdict") == "approved"
    assert [(r.step, r.outcome) for r in timeline(task)] == [("ask", "approved"), ("approved", "end")]
    assert await effects(toys.client, subject) == ["approved"]


async def test_approve_operation_completes_the_decision_and_resumes_the_instance(toys: Toys):
    subject = await toys.trigger("toy-human")
    instance, decision = await asked(toys, subject)
    response = await toys.client.post(
        f"/Task/{decision['id']}/$approve", json=parameters(reason="looks right")
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert response.json()["statusReason"]["text"] == "looks right"

    task = await instance_when(toys.client, "toy-human", subject, ended, "the instance ends")
    assert task["status"] == "completed"
    assert output(task, "decision-reason") == "looks right"
    assert output(task, "decision-task") == {"reference": f"Task/{decision['id']}"}

    again = await toys.client.post(f"/Task/{decision['id']}/$approve", json=parameters())
    assert again.status_code == 409
    assert again.json()["resourceType"] == "OperationOutcome"


async def test_reject_operation_resumes_at_on_reject(toys: Toys):
    subject = await toys.trigger("toy-human")
    _, decision = await asked(toys, subject)
    response = await toys.client.post(
        f"/Task/{decision['id']}/$reject", json=parameters(reason="not covered")
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"

    task = await instance_when(toys.client, "toy-human", subject, ended, "the instance ends")
    assert task["status"] == "failed"
    assert task["statusReason"]["text"] == "rejected-by-reviewer"
    assert output(task, "decision") == "rejected"
    assert await effects(toys.client, subject) == []


async def test_a_rejection_written_with_put_resumes_at_on_reject(toys: Toys):
    subject = await toys.trigger("toy-human")
    _, decision = await asked(toys, subject)
    done = await toys.client.put(f"/Task/{decision['id']}", json={**decision, "status": "rejected"})
    assert done.status_code == 200, done.text
    task = await instance_when(toys.client, "toy-human", subject, ended, "the instance ends")
    assert [(r.step, r.outcome) for r in timeline(task)][0] == ("ask", "rejected")


async def test_approve_refuses_what_is_not_an_open_decision(toys: Toys):
    subject = await toys.trigger("toy-human")
    instance, decision = await asked(toys, subject)
    for path, body, status in [
        ("/Task/nope/$approve", parameters(), 404),
        (f"/Task/{instance['id']}/$approve", parameters(), 409),
        (f"/Task/{decision['id']}/$reject", parameters(reason=""), 400),
        (f"/Task/{decision['id']}/$reject", parameters(why="x"), 400),
    ]:
        response = await toys.client.post(path, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    still = (await toys.client.get(f"/Task/{instance['id']}")).json()
    assert still["status"] == "on-hold"
