"""The workflow engine's own cost: N instances of a 3-step workflow started at once (a Basic write each
triggers one), in process on the embedded SQLite store, through trigger Subscription, relay, jobs and the
If-Match advances; reported as instances/s and trigger-to-completed p50/p95. The baseline in the same run
does the same Task writes without the engine (create + 3 If-Match updates per instance through
FhirService, same concurrency), so the ratio is what the engine adds (jobs, relay, events, step log).

    .venv/bin/python bench/workflow_engine.py [--instances 500] [--concurrency 8]
"""

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.service import resource_json
from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings
from nphies_facade.workflows.dsl import WORKFLOW_SYSTEM, End, Next, Step, Trigger, Workflow
from nphies_facade.workflows.registry import definitions, register

SYSTEM = "urn:bench:workflow"
LONE = 10  # instances run one at a time before the burst, for the latency of an idle engine


async def first(step) -> Next:
    return Next("second", output={"seen": True})


async def second(step) -> Next:
    return Next("third")


async def third(step) -> End:
    return End(output={"done": True})


BENCH = Workflow(
    "bench-three",
    "Bench: three steps",
    "first",
    (Step("first", first), Step("second", second), Step("third", third)),
    (Trigger(f"Basic?code={SYSTEM}|go"),),
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def settings(data_dir: Path, concurrency: int) -> Settings:
    return Settings(
        data_dir=data_dir,
        auth="off",
        workflow_concurrency=concurrency,
        job_concurrency=concurrency,
        log_level="warning",
    )


async def completed(service, ctx) -> int:
    params = [("code", f"{WORKFLOW_SYSTEM}|bench-three"), ("status", "completed"), ("_summary", "count")]
    return (await service.search(("Task",), params, ctx=ctx)).total


async def engine_run(data_dir: Path, count: int, concurrency: int) -> tuple[float, list[float], list[float]]:
    """(instances/s of the burst, each burst instance's latency, latencies of lone instances before it)."""
    register(BENCH)
    app = create_app(settings(data_dir, concurrency))
    try:
        async with app.router.lifespan_context(app):
            service = app.state.service
            ctx = RequestContext.system("bench")
            basic = {"resourceType": "Basic", "code": {"coding": [{"system": SYSTEM, "code": "go"}]}}
            for done in range(1, LONE + 1):
                await service.create(ctx, dict(basic))
                while True:
                    if await completed(service, ctx) >= done:
                        break
                    await asyncio.sleep(0.005)
            lone = await _latencies(service, ctx)
            started = time.perf_counter()
            limit = asyncio.Semaphore(concurrency)

            async def trigger() -> None:
                async with limit:
                    await service.create(ctx, dict(basic))

            await asyncio.gather(*(trigger() for _ in range(count)))
            while True:
                if await completed(service, ctx) >= count + LONE:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            burst = sorted(await _latencies(service, ctx))
            for latency in lone:
                burst.remove(latency)
            return count / elapsed, burst, lone
    finally:
        definitions.unregister(BENCH.name)


async def _latencies(service, ctx) -> list[float]:
    """Seconds from the trigger's write to the instance's end, per instance."""
    latencies, cursor = [], None
    while True:
        params = [("code", f"{WORKFLOW_SYSTEM}|bench-three"), ("_count", "500")]
        result = await service.search(("Task",), params + ([("_cursor", cursor)] if cursor else []), ctx=ctx)
        for stored in result.matches:
            task = resource_json(stored)
            trigger = task["input"][0]["valueReference"]["reference"].split("/")
            written = resource_json(await service.store.vread(trigger[0], trigger[1], int(trigger[3])))
            end = datetime.fromisoformat(task["executionPeriod"]["end"])
            latencies.append((end - datetime.fromisoformat(written["meta"]["lastUpdated"])).total_seconds())
        cursor = result.next_cursor
        if not cursor:
            return latencies


async def baseline_run(data_dir: Path, count: int, concurrency: int) -> float:
    app = create_app(settings(data_dir, concurrency))
    async with app.router.lifespan_context(app):
        service = app.state.service
        ctx = RequestContext.system("bench")
        limit = asyncio.Semaphore(concurrency)

        async def instance() -> None:
            async with limit:
                task = {"resourceType": "Task", "status": "in-progress", "intent": "order"}
                stored = (await service.create(ctx, dict(task))).version
                for step in ("second", "third", "done"):
                    body = {**resource_json(stored), "businessStatus": {"text": step}}
                    if step == "done":
                        body["status"] = "completed"
                    stored = (
                        await service.update(ctx, "Task", stored.id, body, if_match=f'W/"{stored.version}"')
                    ).version

        started = time.perf_counter()
        await asyncio.gather(*(instance() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = await baseline_run(Path(tmp) / "baseline", args.instances, args.concurrency)
        rate, latencies, lone = await engine_run(Path(tmp) / "engine", args.instances, args.concurrency)
    print(f"machine: {platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}")
    print(f"command: bench/workflow_engine.py --instances {args.instances} --concurrency {args.concurrency}")
    print(f"engine:   {rate:8.1f} instances/s (3 steps each)")
    print(
        f"          {args.instances} at once: trigger write -> completed p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms"
    )
    print(
        f"          one instance at a time: trigger write -> completed p50 {statistics.median(lone) * 1000:.0f} ms"
    )
    print(f"baseline: {baseline:8.1f} instances/s (create + 3 If-Match updates, no engine)")
    print(f"ratio:    {rate / baseline:.2f} of the baseline")


if __name__ == "__main__":
    asyncio.run(main())
