"""Benchmark what observability costs per request: W3C trace context, HTTP metrics and the Task state check.

Run: .venv/bin/python bench/observability_overhead.py [--requests N] [--rounds R]
In-process over ASGI (no network), against one app with authentication off:
- GET /Patient/{id} with the HTTP metrics recorded, beside the same reads with the recording replaced by
  a no-op (the baseline of this run), and with a `traceparent` header;
- PUT /Task/{id} moving a Task in-progress <-> on-hold (the state machine checks each write), beside PUT
  of a Patient of the same size;
- GET /metrics (render time) after those requests.
Prints medians over rounds (microseconds per request) with the command and the machine.
"""

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nphies_facade.server import http_metrics  # noqa: E402
from nphies_facade.server.app import create_app  # noqa: E402
from nphies_facade.server.settings import Settings  # noqa: E402

BASE = "http://bench.test"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def per_request(client: httpx.AsyncClient, requests: int, call) -> float:
    started = time.perf_counter()
    for i in range(requests):
        response = await call(client, i)
        assert response.status_code < 300, response.text
    return (time.perf_counter() - started) / requests * 1e6


async def run(requests: int, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as data:
        app = create_app(
            Settings(data_dir=Path(data), base_url=BASE, auth="off", log_level="warning", rate_limit=0)
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                patient = (
                    await client.post("/Patient", json={"resourceType": "Patient", "gender": "female"})
                ).json()
                task = (
                    await client.post(
                        "/Task", json={"resourceType": "Task", "status": "in-progress", "intent": "order"}
                    )
                ).json()
                statuses = ("on-hold", "in-progress")

                async def read(c, i):
                    return await c.get(f"/Patient/{patient['id']}")

                async def traced_read(c, i):
                    return await c.get(f"/Patient/{patient['id']}", headers={"traceparent": TRACEPARENT})

                async def task_put(c, i):
                    return await c.put(f"/Task/{task['id']}", json={**task, "status": statuses[i % 2]})

                async def patient_put(c, i):
                    return await c.put(
                        f"/Patient/{patient['id']}", json={**patient, "gender": ("male", "female")[i % 2]}
                    )

                async def metrics(c, i):
                    return await c.get("/metrics")

                recording = http_metrics.RequestTimer.done
                await per_request(client, 200, read)  # warm-up
                for _ in range(rounds):
                    http_metrics.RequestTimer.done = lambda self: None  # baseline: nothing recorded
                    results.setdefault("read, metrics off (baseline)", []).append(
                        await per_request(client, requests, read)
                    )
                    http_metrics.RequestTimer.done = recording
                    results.setdefault("read, metrics on", []).append(
                        await per_request(client, requests, read)
                    )
                    results.setdefault("read, metrics on + traceparent", []).append(
                        await per_request(client, requests, traced_read)
                    )
                    results.setdefault("PUT Patient (baseline)", []).append(
                        await per_request(client, requests, patient_put)
                    )
                    results.setdefault("PUT Task, status checked", []).append(
                        await per_request(client, requests, task_put)
                    )
                    results.setdefault("GET /metrics", []).append(await per_request(client, 20, metrics))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(run(args.requests, args.rounds))
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}")
    for name, values in results.items():
        print(f"{name:36s} median {statistics.median(values):8.1f} us/request  (rounds: {len(values)})")


if __name__ == "__main__":
    main()
