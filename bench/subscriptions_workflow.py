"""The benchmark's workflow (loaded with NPHIES_FACADE_WORKFLOW_MODULES=subscriptions_workflow and
PYTHONPATH=bench): each job tells the receiver when its trigger was committed, so the benchmark can
measure commit-to-job-start latency through the job queue."""

import os

import httpx

from nphies_facade.subscriptions.workflow import JobContext, workflows

_client: httpx.AsyncClient | None = None


@workflows.workflow("bench-ping")
async def ping(job: JobContext) -> None:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=10)
    headers = {"X-Bench-At": job.trigger.at, "X-Bench-Job": job.trigger.job_id}
    await _client.post(os.environ["BENCH_RECEIVER_URL"] + "/job", headers=headers)
