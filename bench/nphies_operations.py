"""NPHIES operations through a real `nphies-facade serve` process on loopback, with its sandbox simulator.

Measures, in one run:
  1. baseline: `GET Coverage/{id}` round trips (the server's floor for one read over HTTP);
  2. `$eligibility` on a cache miss (`Cache-Control: no-cache`: build, profile check, exchange with the
     in-process simulator, store request, answer and exchange record) and on a cache hit; goals p95
     < 150 ms (miss) and < 10 ms (hit);
  3. `$submit` of claims adjudicated at once, sent at a fixed rate (default 50 claims/s) for a while:
     latency from sending $submit to the Task's `executionPeriod.end` (completed); goal p95 < 1 s at
     50 claims/s sustained.

The stored resources come from the official NPHIES samples (../shared/nphies, through the test material
in tests/operations/material.py), so run it from the repository root:

  .venv/bin/python bench/nphies_operations.py [--coverages 100] [--misses 300] [--hits 1000]
      [--rate 50] [--seconds 20] [--concurrency 1]
"""

import argparse
import asyncio
import contextlib
import copy
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from processes import free_port, group_cpu_seconds, start_simulator, stop, wait_ready  # noqa: E402

from tests.operations.material import ELIGIBILITY, VISION_CLAIM, material  # noqa: E402

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | {platform.platform()} | Python {platform.python_version()}"


def server_env(nphies_url: str | None, redis_url: str | None) -> dict[str, str]:
    """Auth, rate limit and the journeys off: the claims journey would submit every active Claim the bench
    stores, before the bench does (its own $submit then only finds that Task)."""
    env = {
        **os.environ,
        "NPHIES_FACADE_AUTH": "off",
        "NPHIES_FACADE_RATE_LIMIT": "0",
        "NPHIES_FACADE_LOG_LEVEL": "warning",
        "NPHIES_FACADE_WORKFLOW_MODULES": "",
    }
    if nphies_url:
        env["NPHIES_FACADE_NPHIES_URL"] = nphies_url
    if redis_url:
        env["NPHIES_FACADE_REDIS_URL"] = redis_url
    return env


def start_server(data_dir: Path, workers: int, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/readyz", process)
    return process, url


def start_redis() -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    stop(process)
    raise RuntimeError("redis-server did not start")


def start_workers(count: int, data_dir: Path, env: dict[str, str]) -> list[subprocess.Popen]:
    """`nphies-facade worker` processes: they run the $submit steps the API server enqueues on Redis."""
    command = [sys.executable, "-m", "nphies_facade.server.cli", "worker", "--data-dir", str(data_dir)]
    return [subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True) for _ in range(count)]


def figures(label: str, seconds: list[float], goal: float | None = None) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p = statistics.quantiles(ms, n=100, method="inclusive")
    line = f"{label:<34} n={len(ms):<5} p50={p[49]:7.1f} ms  p95={p[94]:7.1f} ms  p99={p[98]:7.1f} ms  max={ms[-1]:7.1f} ms"
    if goal is not None:
        line += f"  (goal p95 < {goal:g} ms: {'met' if p[94] < goal else 'NOT met'})"
    return line


async def put_all(client: httpx.AsyncClient, resources: dict[str, dict], concurrency: int = 16) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def put(key: str, resource: dict) -> None:
        async with gate:
            response = await client.put(f"/{key}", json=resource)
            response.raise_for_status()

    await asyncio.gather(*(put(k, r) for k, r in resources.items()))


async def timed(call, header: str | None = None):
    """Seconds the call took; with `header`, (seconds, that response header)."""
    started = time.perf_counter()
    response = await call()
    elapsed = time.perf_counter() - started
    if response.status_code >= 300:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    return (elapsed, response.headers.get(header)) if header else elapsed


async def run_batches(calls: list, concurrency: int, header: str | None = None) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(call):
        async with gate:
            return await timed(call, header)

    return await asyncio.gather(*(one(call) for call in calls))


async def eligibility(client: httpx.AsyncClient, args: argparse.Namespace) -> list[str]:
    coverages = []
    for _ in range(args.coverages):
        found = material(ELIGIBILITY)
        await put_all(client, found.resources)
        coverages.append(found.coverage)
    no_cache = {"Cache-Control": "no-cache"}
    warm = [lambda c=c: client.post(f"/{c}/$eligibility", headers=no_cache) for c in coverages[:20]]
    await run_batches(warm, 1)
    reads = [lambda i=i: client.get(f"/{coverages[i % len(coverages)]}") for i in range(args.hits)]
    misses = [
        lambda i=i: client.post(f"/{coverages[i % len(coverages)]}/$eligibility", headers=no_cache)
        for i in range(args.misses)
    ]
    hits = [
        lambda i=i: client.post(f"/{coverages[i % len(coverages)]}/$eligibility") for i in range(args.hits)
    ]
    baseline = figures(
        f"baseline GET Coverage (c={args.concurrency})", await run_batches(reads, args.concurrency)
    )
    miss = figures(
        f"$eligibility cache miss (c={args.concurrency})", await run_batches(misses, args.concurrency), 150
    )
    await run_batches([lambda c=c: client.post(f"/{c}/$eligibility") for c in coverages], 1)  # all cached
    served = await run_batches(hits, args.concurrency, header="x-cache")
    not_hits = sum(1 for _, cache in served if cache != "HIT")
    assert not not_hits, f"{not_hits} of the hit phase's answers were not cache hits"
    return [
        baseline,
        miss,
        figures(f"$eligibility cache hit (c={args.concurrency})", [elapsed for elapsed, _ in served], 10),
    ]


async def claims(client: httpx.AsyncClient, count: int) -> list[str]:
    """`count` Claims sharing one patient, coverage and organizations, each with its own identifier."""
    found = material(VISION_CLAIM)
    template = found.resources.pop(found.claim)
    await put_all(client, found.resources)
    made = {}
    for _ in range(count):
        claim = copy.deepcopy(template)
        claim["id"] = f"bench-{uuid.uuid4().hex[:16]}"
        claim["identifier"] = [{"system": "http://bench.test/claims", "value": claim["id"]}]
        made[f"Claim/{claim['id']}"] = claim
    await put_all(client, made)
    return list(made)


async def submit_at_rate(client: httpx.AsyncClient, args: argparse.Namespace, server: list[int]) -> list[str]:
    total = int(args.rate * args.seconds)
    ids = await claims(client, total + 20)
    for warm in ids[total:]:
        await client.post(f"/{warm}/$submit")
    await asyncio.sleep(1.0)
    cpu_before = group_cpu_seconds(*server)
    sent: dict[str, float] = {}
    failures: list[str] = []

    async def submit(claim: str) -> None:
        sent_at = time.time()
        try:
            response = await client.post(f"/{claim}/$submit")
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)
            return
        if response.status_code != 202:
            failures.append(f"HTTP {response.status_code}")
            return
        sent[response.json()["id"]] = sent_at

    started = time.perf_counter()
    launched = []
    for n, claim in enumerate(ids[:total]):
        delay = started + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        launched.append(asyncio.create_task(submit(claim)))
    await asyncio.gather(*launched)
    achieved = total / (time.perf_counter() - started)
    latencies = await completions(client, sent, failures)
    cpu = (group_cpu_seconds(*server) - cpu_before) / max(1, len(latencies))
    created, taken, answered = (statistics.median(p[i] for p in PHASES) * 1000 for i in range(3))
    lines = [
        figures(f"$submit -> completed at {args.rate:g}/s", latencies, 1000),
        f"{'':<34} {total} claims in {args.seconds:g} s, sent at {achieved:.1f}/s, "
        f"{len(latencies)} completed, {len(failures)} not ({', '.join(sorted(set(failures))) or '-'})",
        f"{'':<34} median: Task created {created:.0f} ms after $submit was sent, step taken {taken:.0f} ms "
        f"later, answer stored {answered:.0f} ms after that",
        f"{'':<34} server CPU per claim {cpu * 1000:.1f} ms (one core's worth: {1 / cpu:.0f} claims/s; "
        "includes the watcher's searches and any workers)",
    ]
    return lines


PHASES: list[tuple[float, float, float]] = []


def phases(task: dict, sent_at: float) -> tuple[float, float, float]:
    """Seconds from $submit sent to the Task created, to its step taken, to its end."""
    authored = datetime.fromisoformat(task["authoredOn"]).timestamp()
    started = datetime.fromisoformat(task["executionPeriod"]["start"]).timestamp()
    ended = datetime.fromisoformat(task["executionPeriod"]["end"]).timestamp()
    return authored - sent_at, started - authored, ended - started


async def completions(client: httpx.AsyncClient, sent: dict[str, float], failures: list[str]) -> list[float]:
    """Waits for every Task to end, with one search every 250 ms for the Tasks that ended since the last
    one (less 2 s, for commits that overlap), so watching adds little load; the latency is the Task's
    executionPeriod.end minus the time its $submit was sent."""
    latencies: list[float] = []
    waiting = dict(sent)
    since = min(sent.values()) - 1
    deadline = time.monotonic() + 180
    while waiting and time.monotonic() < deadline:
        params = {
            "code": "urn:nphies-facade:operation|submit",
            "status": "completed,failed,cancelled",
            "_lastUpdated": f"ge{datetime.fromtimestamp(since - 2, UTC).isoformat()}",
            "_count": "1000",
        }
        url: str | None = "/Task"
        query: dict | None = params
        while url:
            page = (await client.get(url, params=query)).json()
            for entry in page.get("entry") or []:
                task = entry["resource"]
                since = max(since, datetime.fromisoformat(task["meta"]["lastUpdated"]).timestamp())
                sent_at = waiting.pop(task["id"], None)
                if sent_at is None:
                    continue
                if task["status"] == "completed":
                    end = datetime.fromisoformat(task["executionPeriod"]["end"]).timestamp()
                    latencies.append(end - sent_at)
                    PHASES.append(phases(task, sent_at))
                else:
                    failures.append(task["status"])
            url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
            query = None
        await asyncio.sleep(0.25)
    failures += ["unfinished"] * len(waiting)
    return latencies


async def run(args: argparse.Namespace, url: str, server: list[int]) -> list[str]:
    # idle connections are dropped before uvicorn's 5 s keep-alive ends, so none is reused as it closes
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60, limits=limits) as client:
        lines = await eligibility(client, args)
        lines += await submit_at_rate(client, args, server)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--coverages", type=int, default=100)
    parser.add_argument("--misses", type=int, default=300)
    parser.add_argument("--hits", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--redis",
        type=int,
        default=0,
        metavar="WORKERS",
        help="run $submit steps on this many `nphies-facade worker` processes over a redis-server started here",
    )
    parser.add_argument(
        "--simulator",
        choices=["sandbox", "process"],
        default="sandbox",
        help="the server's embedded simulator (default), or `nphies-facade simulator` in its own process",
    )
    args = parser.parse_args()
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print("machine:", machine(), "| load average", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    where = "embedded sandbox simulator" if args.simulator == "sandbox" else "simulator in its own process"
    steps = f"{args.redis} worker(s) on Redis" if args.redis else "in the server"
    print(
        f"server: nphies-facade serve --workers {args.workers}, SQLite, auth off, journeys off, {where}; steps {steps}"
    )
    with tempfile.TemporaryDirectory() as folder:
        simulator, nphies_url = start_simulator() if args.simulator == "process" else (None, None)
        redis, redis_url = start_redis() if args.redis else (None, None)
        env = server_env(nphies_url, redis_url)
        process, url = start_server(Path(folder) / "data", args.workers, env)
        workers = start_workers(args.redis, Path(folder) / "data", env)
        try:
            lines = asyncio.run(run(args, url, [p.pid for p in (process, *workers)]))
        finally:
            for running in (*workers, process, simulator, redis):
                if running is not None:
                    stop(running)
    for line in lines:
        print(line)
    print("load average after:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))


if __name__ == "__main__":
    main()
