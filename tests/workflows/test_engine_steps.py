"""The engine over real HTTP with toy workflows: an instance per trigger, its steps advancing the Task,
retries, failures, and the manual overrides $retry and $skip."""

from nphies_facade.subscriptions.topics import FOCUS_EXTENSION
from nphies_facade.workflows.dsl import WORKFLOW_SYSTEM
from nphies_facade.workflows.instances import TRIGGER_IDENTIFIER, timeline

from .engine_support import (
    Toys,
    effects,
    ended,
    events,
    history,
    instance_when,
    instances,
    output,
    parameters,
    step_of,
    toy_server,
)


async def test_a_trigger_starts_one_instance_that_runs_its_steps_to_the_end(toys: Toys):
    subject = await toys.trigger("toy-happy")
    task = await instance_when(toys.client, "toy-happy", subject, ended, "toy-happy completed")

    assert task["status"] == "completed"
    assert task["code"]["coding"][0] == {
        "system": WORKFLOW_SYSTEM,
        "code": "toy-happy",
        "display": "Toy happy path",
    }
    assert task["focus"] == task["for"] == {"reference": subject}
    assert step_of(task) == "finish"
    assert task["input"][0]["valueReference"]["reference"] == f"{subject}/_history/1"
    assert output(task, "received") is True and output(task, "checked") == subject.split("/")[1]
    assert output(task, "done") is True
    assert [(r.step, r.outcome) for r in timeline(task)] == [
        ("receive", "next"),
        ("check", "next"),
        ("finish", "end"),
    ]
    assert all(r.entered <= r.left for r in timeline(task))
    assert any(e["url"].endswith("trace-id") for e in task["extension"])
    assert await effects(toys.client, subject) == ["finished"]

    # Each advance is a version: the history is the transition log.
    versions = await history(toys.client, task["id"])
    assert [step_of(v) for v in versions] == ["receive", "check", "finish", "finish"]
    assert [v["status"] for v in versions] == ["in-progress"] * 3 + ["completed"]

    # The event the step emitted went out with the advance; the end is an event too.
    assert len(await events(toys.client, "claim.submitted", subject)) == 1
    [completed] = await events(toys.client, "workflow.completed", f"Task/{task['id']}")
    focus = next(e for e in completed["extension"] if e["url"] == FOCUS_EXTENSION)
    last = f"Task/{task['id']}/_history/{task['meta']['versionId']}"
    assert focus["valueReference"]["reference"] == last  # the version written with the event


async def test_a_repeated_trigger_for_an_open_instance_starts_no_second_one(toys: Toys):
    subject = await toys.trigger("toy-human")
    first = await instance_when(
        toys.client, "toy-human", subject, lambda t: t["status"] == "on-hold", "asked"
    )
    basic = (await toys.client.get(f"/{subject}")).json()
    # A new version of the trigger resource for the same subject is another trigger.
    await toys.engine.start_instance(toys.engine.registry.get("toy-human"), f"{subject}/_history/1", "")
    await toys.client.put(f"/{subject}", json={**basic, "created": "2026-01-01"})
    await toys.engine.start_instance(toys.engine.registry.get("toy-human"), f"{subject}/_history/2", "")
    assert [t["id"] for t in await instances(toys.client, "toy-human", subject)] == [first["id"]]
    identifiers = {i["system"]: i["value"] for i in first["identifier"]}
    assert identifiers[TRIGGER_IDENTIFIER] == f"toy-human/{subject}/_history/1"


async def test_a_step_that_raises_is_retried_with_the_attempt_stored_on_the_task(toys: Toys):
    subject = await toys.trigger("toy-retry")
    task = await instance_when(toys.client, "toy-retry", subject, ended, "toy-retry ended")
    assert task["status"] == "completed"
    assert output(task, "attempts") == 3
    flaky = [r for r in timeline(task) if r.step == "flaky"]
    assert flaky[0].attempts == 3
    attempts = [
        next(
            (e["valueInteger"] for e in v.get("extension", []) if e["url"].endswith("workflow-step-attempt")),
            None,
        )
        for v in await history(toys.client, task["id"])
        if step_of(v) == "flaky"
    ]
    assert attempts == [0, 1, 2]


async def test_a_step_that_overruns_its_timeout_is_retried_then_fails_the_instance(toys: Toys):
    subject = await toys.trigger("toy-timeout")
    task = await instance_when(toys.client, "toy-timeout", subject, ended, "toy-timeout failed")
    assert task["status"] == "failed"
    assert task["statusReason"]["text"] == "retries-exhausted"
    assert step_of(task) == "stuck"
    assert "2 attempts; last: the step did not finish within 0.2 s" in task["note"][-1]["text"]
    assert await effects(toys.client, subject) == []


async def test_a_step_failure_fails_the_instance_and_retry_runs_the_step_again(toys: Toys):
    from . import toy_workflows

    subject = await toys.trigger("toy-fail")
    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    assert task["status"] == "failed"
    assert task["statusReason"]["text"] == "bad-input"
    assert step_of(task) == "validate"
    failed_events = await events(toys.client, "workflow.failed", f"Task/{task['id']}")
    assert len(failed_events) == 1

    toy_workflows.FIXED.add(subject)
    response = await toys.client.post(f"/Task/{task['id']}/$retry", json=parameters(reason="input fixed"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "in-progress"
    assert "input fixed" in response.json()["note"][-1]["text"]

    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail completed after $retry")
    assert task["status"] == "completed"
    assert await effects(toys.client, subject) == ["finished"]


async def test_skip_moves_a_failed_instance_on_to_the_given_step_with_the_reason(toys: Toys):
    subject = await toys.trigger("toy-fail")
    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    response = await toys.client.post(
        f"/Task/{task['id']}/$skip", json=parameters(step="finish", reason="checked by hand")
    )
    assert response.status_code == 200, response.text
    task = await instance_when(
        toys.client, "toy-fail", subject, lambda t: t["status"] == "completed", "completed"
    )
    assert [(r.step, r.outcome) for r in timeline(task)][-2:] == [("validate", "skipped"), ("finish", "end")]
    assert any("checked by hand" in note["text"] for note in task["note"])


async def test_skip_without_a_step_ends_the_instance(toys: Toys):
    subject = await toys.trigger("toy-fail")
    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    response = await toys.client.post(f"/Task/{task['id']}/$skip", json=parameters(reason="not needed"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert await effects(toys.client, subject) == []


async def test_overrides_refuse_bad_requests_with_operation_outcomes(toys: Toys):
    subject = await toys.trigger("toy-fail")
    failed = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    happy = await instance_when(toys.client, "toy-happy", await toys.trigger("toy-happy"), ended, "done")

    cases = [
        ("/Task/unknown-task/$retry", parameters(), 404),
        (f"/Task/{happy['id']}/$retry", parameters(), 409),
        (f"/Task/{happy['id']}/$skip", parameters(reason="x"), 409),
        (f"/Task/{failed['id']}/$skip", parameters(), 400),
        (f"/Task/{failed['id']}/$skip", parameters(reason="x", step="nowhere"), 400),
        (f"/Task/{failed['id']}/$retry", parameters(colour="blue"), 400),
        (f"/Task/{failed['id']}/$retry", {"resourceType": "Patient"}, 400),
        (f"/Task/{failed['id']}/$approve", parameters(), 409),
    ]
    for path, body, status in cases:
        response = await toys.client.post(path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    still = (await toys.client.get(f"/Task/{failed['id']}")).json()
    assert still["status"] == "failed" and still["meta"]["versionId"] == failed["meta"]["versionId"]


async def test_the_capability_statement_declares_the_task_operations(toys: Toys):
    statement = (await toys.client.get("/metadata")).json()
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    names = {o["name"] for o in task.get("operation", [])}
    assert {"approve", "reject", "retry", "skip"} <= names


async def test_steps_that_go_on_at_once_run_in_one_job_yet_each_is_a_version(tmp_path):
    async with toy_server(tmp_path / "data", sweep_interval=300) as toys:  # no sweep enqueues meanwhile
        queue = toys.engine.queue
        enqueue, queued = queue.enqueue, []

        async def recording(job_ids, **options):
            queued.extend(job_ids)
            await enqueue(job_ids, **options)

        queue.enqueue = recording
        subject = await toys.trigger("toy-happy")
        task = await instance_when(toys.client, "toy-happy", subject, ended, "toy-happy completed")
        assert [j for j in queued if j.startswith(f"step:{task['id']}:")] == [f"step:{task['id']}:receive:1"]
        versions = await history(toys.client, task["id"])
        assert [step_of(v) for v in versions] == ["receive", "check", "finish", "finish"]
