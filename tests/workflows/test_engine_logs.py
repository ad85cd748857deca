"""What the engine tells operators: a log line for each workflow failure (instance, workflow, step,
reason code), each retry with its real reason, a retrying Task's statusReason saying why, and the
started/ended counters agreeing after $retry. Never the data the step worked on."""

import logging
from collections.abc import AsyncIterator

import pytest

from nphies_facade.workflows import metrics
from nphies_facade.workflows.engine import RETRY_REASON_SYSTEM

from . import toy_workflows
from .engine_support import Toys, ended, history, instance_when, parameters
from .journey_support import Harness, journey_server, until

NPHIES_DOWN = [{"kind": "error", "status": 503, "probability": 1.0}]


def _lines(caplog, logger: str = "nphies_facade.workflows") -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


async def test_a_failed_instance_is_logged_with_its_step_and_reason(toys: Toys, caplog):
    caplog.set_level(logging.INFO, "nphies_facade.workflows")
    subject = await toys.trigger("toy-fail")
    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    [line] = [r for r in _lines(caplog) if r.getMessage().startswith("workflow failed")]
    assert line.getMessage() == f"workflow failed: toy-fail Task/{task['id']} step validate: bad-input"
    assert line.levelno == logging.WARNING
    assert line.fields == {
        "workflow": "toy-fail",
        "instance": f"Task/{task['id']}",
        "step": "validate",
        "reason": "bad-input",
    }


async def test_a_retrying_task_says_why_in_its_status_reason_and_the_log(toys: Toys, caplog):
    caplog.set_level(logging.INFO, "nphies_facade.workflows")
    subject = await toys.trigger("toy-retry")
    task = await instance_when(toys.client, "toy-retry", subject, ended, "toy-retry ended")
    retrying = [v for v in await history(toys.client, task["id"]) if "statusReason" in v]
    assert len(retrying) == 2  # attempts 1 and 2 failed; the third went on
    reason = retrying[0]["statusReason"]
    assert reason["coding"] == [{"system": RETRY_REASON_SYSTEM, "code": "exception"}]
    assert reason["text"].startswith("step flaky attempt 1 of 3 failed: RuntimeError; trying again at ")
    assert "statusReason" not in task  # the step went on: the retry's reason is gone
    retried = [r.getMessage() for r in _lines(caplog) if "retrying" in r.getMessage()]
    assert retried == [
        f"toy-retry Task/{task['id']} step flaky attempt {n} failed (exception: RuntimeError); retrying"
        for n in (1, 2)
    ]


def _counted(workflow: str) -> tuple[float, float]:
    started = metrics.WORKFLOW_STARTED.labels(workflow)._value.get()
    ended_ = sum(metrics.WORKFLOW_ENDED.labels(workflow, o)._value.get() for o in ("completed", "failed"))
    return started, ended_


async def test_retry_counts_the_instance_as_started_again_so_ended_never_exceeds_started(toys: Toys):
    before = _counted("toy-fail")
    subject = await toys.trigger("toy-fail")
    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    assert _counted("toy-fail") == (before[0] + 1, before[1] + 1)
    toy_workflows.FIXED.add(subject)
    response = await toys.client.post(f"/Task/{task['id']}/$retry", json=parameters(reason="fixed"))
    assert response.status_code == 200, response.text
    await instance_when(toys.client, "toy-fail", subject, lambda t: t["status"] == "completed", "completed")
    assert _counted("toy-fail") == (before[0] + 2, before[1] + 2)


async def test_skip_to_the_end_counts_a_start_and_a_completed_end(toys: Toys):
    before = _counted("toy-fail")
    subject = await toys.trigger("toy-fail")
    task = await instance_when(toys.client, "toy-fail", subject, ended, "toy-fail failed")
    response = await toys.client.post(f"/Task/{task['id']}/$skip", json=parameters(reason="done by hand"))
    assert response.status_code == 200, response.text
    assert _counted("toy-fail") == (before[0] + 2, before[1] + 2)


@pytest.fixture(scope="module")
async def served(tmp_path_factory) -> AsyncIterator[Harness]:
    async with journey_server(tmp_path_factory.mktemp("logs") / "data") as running:
        yield running


async def test_a_journey_retrying_on_nphies_503s_names_nphies_not_the_exception_type(served: Harness, caplog):
    caplog.set_level(logging.INFO, "nphies_facade.workflows")
    assert (await served.simulator("faults", "PUT", NPHIES_DOWN)).status_code == 200
    try:
        registration = served.registration()
        await served.post(registration.resources())
        instance = await served.settled(
            "eligibility", registration.patient, done=lambda t: "statusReason" in t
        )
        reason = instance["statusReason"]
        assert reason["coding"][0]["system"] == RETRY_REASON_SYSTEM
        assert "NPHIES" in reason["text"] and "HTTP 50" in reason["text"], reason["text"]
    finally:
        assert (await served.simulator("faults", "PUT", [])).status_code == 200
    task = await until(served.client, f"/Task/{instance['id']}", lambda t: t["status"] == "completed", 60)
    assert "statusReason" not in task
    retried = [
        m for r in _lines(caplog) if f"Task/{instance['id']}" in (m := r.getMessage()) and "retrying" in m
    ]
    assert retried and all("NPHIES" in m and "OutcomeError" not in m for m in retried), retried
    family = registration.resources()[0]["name"][0]["family"]
    assert family not in "\n".join(r.getMessage() for r in caplog.records)
