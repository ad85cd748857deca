"""The engine's small parts without a server: step job ids, the Task form's values and schedule, the
decision paths through the Task state machine, and what the registry accepts."""

from datetime import UTC, datetime, timedelta

import pytest

from nphies_facade.workflows.dsl import End, Step, Workflow
from nphies_facade.workflows.engine import parse_step_job, step_job_id
from nphies_facade.workflows.human import status_path
from nphies_facade.workflows.instances import (
    ESCALATED,
    log_step,
    mark_escalated,
    new_instance,
    set_values,
    state_of,
    task_value,
    timeline,
)
from nphies_facade.workflows.registry import Definitions

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def done(step) -> End:
    return End()


TOY = Workflow("unit-toy", "Unit toy", "one", (Step("one", done, sla=timedelta(hours=1)), Step("two", done)))


def test_step_job_ids_round_trip_and_other_ids_are_not_step_jobs():
    job = step_job_id("abc-1", "my:step", 7)
    assert parse_step_job(job) == ("abc-1", 7)
    assert parse_step_job("wf:sub:3") is None
    assert parse_step_job("step:abc:one:x") is None


def test_a_new_instance_is_in_progress_at_its_first_step_due_now_with_its_sla():
    task = new_instance(TOY, "Patient/1", "Patient/1/_history/1", "trace", NOW, NOW + timedelta(hours=1))
    state = state_of(task)
    assert (state.workflow, state.step, state.status, state.attempt) == ("unit-toy", "one", "in-progress", 0)
    assert state.due == NOW and state.entered == NOW
    assert state.deadline == NOW + timedelta(hours=1) and not state.escalated


def test_escalation_marks_the_business_status_and_the_step_log_says_breached():
    task = mark_escalated(new_instance(TOY, "Patient/1", "Patient/1/_history/1", "t", NOW, NOW), NOW)
    state = state_of(task)
    assert state.escalated and state.step == "one"
    assert "escalated" in task["businessStatus"]["text"]
    assert {"system": "urn:nphies-facade:workflow-step-status", "code": ESCALATED} in task["businessStatus"][
        "coding"
    ]
    log_step(task, state, NOW + timedelta(minutes=5), "next", 2)
    [record] = timeline(task)
    assert (record.step, record.outcome, record.attempts, record.sla) == ("one", "next", 2, "breached")


def test_output_values_take_their_fhir_type_and_replace_by_name():
    assert task_value(True) == {"valueBoolean": True}
    assert task_value(3) == {"valueInteger": 3}
    assert task_value(1.5) == {"valueDecimal": 1.5}
    assert task_value({"reference": "Claim/1"}) == {"valueReference": {"reference": "Claim/1"}}
    assert task_value({"valueDate": "2026-01-01"}) == {"valueDate": "2026-01-01"}
    assert task_value([1, 2]) == {"valueString": "[1,2]"}
    entries = set_values(None, {"a": "x", "b": 1})
    entries = set_values(entries, {"a": "y", "b": None})
    assert entries == [{"type": {"text": "a"}, "valueString": "y"}]


@pytest.mark.parametrize(
    ("status", "target", "path"),
    [
        ("requested", "completed", ["in-progress", "completed"]),
        ("ready", "completed", ["completed"]),
        ("requested", "rejected", ["rejected"]),
        ("in-progress", "rejected", None),
        ("in-progress", "cancelled", ["cancelled"]),
    ],
)
def test_decisions_follow_the_task_state_machine(status, target, path):
    assert status_path({"status": status}, target) == path


def test_the_registry_refuses_a_workflow_whose_start_is_not_a_step():
    with pytest.raises(ValueError):
        Definitions().register(Workflow("unit-bad", "Bad", "missing", (Step("one", done),)))
