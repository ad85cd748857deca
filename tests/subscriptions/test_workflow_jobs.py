"""Workflow jobs in the embedded mode (in-process runner): installed trigger Subscriptions, one job per
matching change, retries with backoff, dead jobs and $resend, and a record of every run."""

import asyncio

import httpx
import pytest

from nphies_facade.resources.context import RequestContext
from nphies_facade.server.app import create_app
from nphies_facade.subscriptions.workflow import (
    WorkflowRegistry,
    install_subscriptions,
    trigger_subscription,
    workflow_endpoint,
)

from .conftest import eventually, status_of, status_parameter, subscribe, wait_status
from .workflow_fixtures import JOB_SYSTEM


def workflow_subscription(workflow: str, criteria: str) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "test workflow",
        "criteria": criteria,
        "channel": {"type": "message", "endpoint": workflow_endpoint(workflow)},
    }


async def job_records(api) -> dict[str, int]:
    """How many Basic resources the test handlers wrote, by job id (side effects)."""
    history = (await api.get("/Basic/_history?_count=1000")).json()
    counts: dict[str, int] = {}
    for entry in history.get("entry", []):
        resource = entry.get("resource")
        if resource and resource["meta"]["versionId"] == "1":
            for identifier in resource.get("identifier", []):
                if identifier["system"] == JOB_SYSTEM:
                    counts[identifier["value"]] = counts.get(identifier["value"], 0) + 1
    return counts


async def test_install_subscriptions_is_idempotent_and_visible(sub_app, api):
    service = sub_app.state.service
    wanted = [
        trigger_subscription("test-record", "eligibility-trigger", "Coverage?status=active", "eligibility")
    ]
    first = await install_subscriptions(service, wanted)
    again = await install_subscriptions(service, wanted)
    assert first[0].created and not again[0].created
    assert again[0].version.id == first[0].version.id
    subscription_id = first[0].version.id
    await wait_status(api, subscription_id, "active")
    listed = (await api.get("/Subscription/_history")).json()
    assert {e["resource"]["id"] for e in listed["entry"] if "resource" in e} == {subscription_id}

    changed = [
        trigger_subscription("test-record", "eligibility-trigger", "Coverage?status=cancelled", "eligibility")
    ]
    [updated] = await install_subscriptions(service, changed)
    assert updated.version.id == subscription_id
    current = (await api.get(f"/Subscription/{subscription_id}")).json()
    assert current["criteria"] == "Coverage?status=cancelled"
    await wait_status(api, subscription_id, "active")


async def test_each_matching_change_runs_its_workflow_job_once(api):
    sub = await subscribe(api, workflow_subscription("test-record", "Patient?gender=female"))
    ids = [
        (await api.post("/Patient", json={"resourceType": "Patient", "gender": "female"})).json()["id"]
        for _ in range(3)
    ]
    await api.post("/Patient", json={"resourceType": "Patient", "gender": "male"})

    async def three_jobs() -> bool:
        return len(await job_records(api)) == 3

    await eventually(three_jobs, what="three jobs done")
    records = await job_records(api)
    assert set(records.values()) == {1}
    assert all(job_id.startswith(f"wf:{sub}:") for job_id in records)
    status = (await api.get(f"/Subscription/{sub}/$status")).json()
    runs = status_parameter(status, "delivery-attempt")
    assert len(runs) == 3
    parts = {p["name"]: p for p in runs[0]["part"]}
    assert parts["outcome"]["valueCode"] == "done" and parts["channel"]["valueCode"] == "message"
    assert parts["job"]["valueString"].startswith(f"wf:{sub}:")
    del ids


async def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(api):
    sub = await subscribe(api, workflow_subscription("test-flaky", "Patient?gender=other"))
    await api.post("/Patient", json={"resourceType": "Patient", "gender": "other"})

    async def outcomes() -> list[str]:
        status = (await api.get(f"/Subscription/{sub}/$status")).json()
        return [
            {p["name"]: p for p in a["part"]}["outcome"]["valueCode"]
            for a in status_parameter(status, "delivery-attempt")
        ]

    async def done() -> bool:
        # run records are written in batches, after the job's own record
        return len(await job_records(api)) == 1 and len(await outcomes()) == 3

    await eventually(done, what="the flaky job to succeed")
    assert await outcomes() == ["done", "failed", "failed"]


async def test_a_job_that_keeps_failing_is_dead_sets_error_and_can_be_resent(sub_settings):
    app = create_app(sub_settings.model_copy(update={"retry_window": 0.3}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fhir.test"
        ) as api:
            sub = await subscribe(api, workflow_subscription("test-poison", "Patient?gender=unknown"))
            await api.post("/Patient", json={"resourceType": "Patient", "gender": "unknown"})
            await wait_status(api, sub, "error")
            assert "dead" in (await api.get(f"/Subscription/{sub}")).json()["error"]
            status = (await api.get(f"/Subscription/{sub}/$status")).json()
            assert status_parameter(status, "events-dead")[0]["valueInteger"] == 1

            resent = (await api.post(f"/Subscription/{sub}/$resend")).json()
            assert resent["parameter"][1]["valueInteger"] == 1

            async def dead_again() -> bool:
                status = (await api.get(f"/Subscription/{sub}/$status")).json()
                runs = status_parameter(status, "delivery-attempt")
                return (
                    sum({p["name"]: p for p in r["part"]}["outcome"]["valueCode"] == "dead" for r in runs)
                    == 2
                )

            await eventually(dead_again, what="the resent job to run (and die) again")
            assert await status_of(api, sub) == "error"


def test_workflow_names_are_checked():
    registry = WorkflowRegistry()
    with pytest.raises(ValueError):
        registry.register("no spaces allowed", lambda job: asyncio.sleep(0))


async def test_install_needs_a_key_tag(sub_app):
    subscription = trigger_subscription("test-record", "k", "Patient?gender=female", "r")
    del subscription["meta"]
    with pytest.raises(ValueError):
        await install_subscriptions(sub_app.state.service, [subscription], RequestContext.system())


async def test_a_job_that_runs_too_long_is_stopped_and_retried(sub_settings):
    app = create_app(sub_settings.model_copy(update={"job_timeout": 0.3, "retry_initial": 0.2}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fhir.test"
        ) as api:
            sub = await subscribe(api, workflow_subscription("test-sleepy", "Patient?gender=unknown"))
            await api.post("/Patient", json={"resourceType": "Patient", "gender": "unknown"})

            async def timed_out_twice() -> bool:
                status = (await api.get(f"/Subscription/{sub}/$status")).json()
                runs = [
                    {p["name"]: p for p in a["part"]} for a in status_parameter(status, "delivery-attempt")
                ]
                return (
                    sum(
                        r["outcome"]["valueCode"] == "failed" and r["detail"]["valueString"] == "timed out"
                        for r in runs
                    )
                    >= 2
                )

            await eventually(timed_out_twice, what="two timed-out runs")
