"""Workflow job handlers for the tests, registered when imported (NPHIES_FACADE_WORKFLOW_MODULES).

Each side effect is a conditional create keyed on the job id, so a re-run after a crash does nothing
twice; `attempt` lets a handler fail a given number of times.
"""

import asyncio
import os

from nphies_facade.subscriptions.workflow import JobContext, workflows

JOB_SYSTEM = "urn:test:job"


async def record(job: JobContext, suffix: str = "") -> None:
    key = f"{job.trigger.job_id}{suffix}"
    basic = {
        "resourceType": "Basic",
        "identifier": [{"system": JOB_SYSTEM, "value": key}],
        "code": {"text": job.trigger.focus},
        "subject": {"reference": f"{job.trigger.resource_type}/{job.trigger.resource_id}"},
    }
    await job.service.create(job.ctx, basic, if_none_exist=f"identifier={JOB_SYSTEM}|{key}")


@workflows.workflow("test-record")
async def record_change(job: JobContext) -> None:
    await record(job)


@workflows.workflow("test-flaky")
async def flaky(job: JobContext) -> None:
    if job.trigger.attempt < 3:
        raise RuntimeError("not yet")
    await record(job)


@workflows.workflow("test-poison")
async def poison(job: JobContext) -> None:
    raise ValueError("always fails")


@workflows.workflow("test-slow")
async def slow(job: JobContext) -> None:
    await record(job, ":started")
    await asyncio.sleep(float(os.environ.get("TEST_SLOW_JOB_SECONDS", "2")))
    await record(job, ":done")


@workflows.workflow("test-slowish")
async def slowish(job: JobContext) -> None:
    await asyncio.sleep(0.4)
    await record(job)


@workflows.workflow("test-sleepy")
async def sleepy(job: JobContext) -> None:
    await asyncio.sleep(30)
