"""Durable timers on a virtual clock: a Wait is stored on the Task and ends when the clock passes it (also
after a restart), and a step whose SLA passes is escalated: businessStatus, an escalation Task, events and
metrics."""

from datetime import datetime, timedelta

from prometheus_client import REGISTRY

from nphies_facade.workflows.instances import ESCALATED, HUMAN_SYSTEM, STEP_DUE, timeline

from .engine_support import (
    VirtualClock,
    effects,
    ended,
    events,
    history,
    instance_when,
    parameters,
    person_tasks,
    step_of,
    toy_server,
)
from .toy_workflows import SUPERVISOR


def due_of(task: dict) -> datetime:
    return datetime.fromisoformat(next(e["valueInstant"] for e in task["extension"] if e["url"] == STEP_DUE))


def waiting(task: dict) -> bool:
    return step_of(task) == "wake" and task["status"] == "in-progress"


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total", labels) or 0.0


async def test_a_wait_ends_when_the_clock_passes_its_due_time_even_after_a_restart(tmp_path):
    clock = VirtualClock()
    data = tmp_path / "data"
    async with toy_server(data, clock=clock) as toys:
        subject = await toys.trigger("toy-wait")
        task = await instance_when(toys.client, "toy-wait", subject, waiting, "the instance waits")
        waited = due_of(task) - datetime.fromisoformat(task["lastModified"])
        assert timedelta(minutes=59) < waited <= timedelta(hours=1)
        assert "toy nap" in task["businessStatus"]["text"]
        await toys.engine.sweeper.sweep()
        assert (await toys.client.get(f"/Task/{task['id']}")).json()["meta"]["versionId"] == task["meta"][
            "versionId"
        ]

    clock.advance(timedelta(hours=1, seconds=1))
    async with toy_server(data, clock=clock) as toys:
        task = await instance_when(toys.client, "toy-wait", subject, ended, "the wait ends after the restart")
        assert task["status"] == "completed"
        assert await effects(toys.client, subject) == ["woke"]
        assert [(r.step, r.outcome) for r in timeline(task)] == [("nap", "wait"), ("wake", "end")]


async def test_the_sweep_runs_a_wait_that_ends_while_the_server_runs(tmp_path):
    async with toy_server(tmp_path / "data") as toys:
        subject = await toys.trigger("toy-wait")
        await instance_when(toys.client, "toy-wait", subject, waiting, "the instance waits")
        toys.clock.advance(timedelta(hours=2))
        task = await instance_when(toys.client, "toy-wait", subject, ended, "the wait ends")
        assert task["status"] == "completed"


async def test_a_step_past_its_sla_is_escalated_once(tmp_path):
    before = counted("nphies_workflow_escalations", workflow="toy-human", step="ask")
    breached_before = counted("nphies_workflow_sla", workflow="toy-human", step="ask", result="breached")
    async with toy_server(tmp_path / "data") as toys:
        subject = await toys.trigger("toy-human")
        instance = await instance_when(
            toys.client, "toy-human", subject, lambda t: t["status"] == "on-hold", "the instance waits"
        )
        toys.clock.advance(timedelta(minutes=61))

        def escalated(task: dict) -> bool:
            return any(c.get("code") == ESCALATED for c in task["businessStatus"]["coding"])

        task = await instance_when(toys.client, "toy-human", subject, escalated, "the step is escalated")
        assert task["status"] == "on-hold" and step_of(task) == "ask"
        assert "escalated" in task["businessStatus"]["text"]

        tasks = await person_tasks(toys.client, instance["id"])
        [escalation] = [
            t for t in tasks if t["code"]["coding"][0] == {"system": HUMAN_SYSTEM, "code": "escalation"}
        ]
        assert escalation["owner"] == {"reference": SUPERVISOR}
        assert escalation["status"] == "requested"
        assert escalation["partOf"] == [{"reference": f"Task/{instance['id']}"}]

        breaches = await events(toys.client, "sla.breached", f"Task/{instance['id']}")
        assert len(breaches) == 1
        assert len(await events(toys.client, "task.escalated", f"Task/{escalation['id']}")) == 1

        await toys.engine.sweeper.sweep()  # later sweeps leave an escalated step alone
        assert len(await events(toys.client, "sla.breached", f"Task/{instance['id']}")) == 1
        assert len(await person_tasks(toys.client, instance["id"])) == 2

        # The person still decides; the step log says the SLA was breached.
        [decision] = [t for t in tasks if t["code"]["coding"][0]["code"] == "decision"]
        approved = await toys.client.post(f"/Task/{decision['id']}/$approve", json=parameters())
        assert approved.status_code == 200, approved.text
        task = await instance_when(toys.client, "toy-human", subject, ended, "the instance ends")
        assert timeline(task)[0].sla == "breached"
        assert sum(escalated(v) for v in await history(toys.client, task["id"])) == 1

    assert counted("nphies_workflow_escalations", workflow="toy-human", step="ask") == before + 1
    assert (
        counted("nphies_workflow_sla", workflow="toy-human", step="ask", result="breached")
        == breached_before + 1
    )


async def test_a_step_left_in_time_counts_its_sla_met(tmp_path):
    before = counted("nphies_workflow_sla", workflow="toy-human", step="ask", result="met")
    async with toy_server(tmp_path / "data") as toys:
        subject = await toys.trigger("toy-human")
        instance = await instance_when(
            toys.client, "toy-human", subject, lambda t: t["status"] == "on-hold", "the instance waits"
        )
        [decision] = await person_tasks(toys.client, instance["id"])
        await toys.client.post(f"/Task/{decision['id']}/$approve", json=parameters())
        task = await instance_when(toys.client, "toy-human", subject, ended, "the instance ends")
        assert timeline(task)[0].sla == "met"
        assert await events(toys.client, "sla.breached", f"Task/{instance['id']}") == []
    assert counted("nphies_workflow_sla", workflow="toy-human", step="ask", result="met") == before + 1
