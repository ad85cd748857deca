"""Benchmark: the eligibility and claims journeys under load, through a real `nphies-facade serve`.

1,000 eligibility journeys started at once (EMR transaction Bundles: Patient, Consent, Coverage; `--clients`
posts in flight) and 1,000 claim journeys (the same plus an active Claim), against `nphies-facade simulator`
in its own process (NPHIES is another system; `--simulator sandbox`: the server's embedded one), which
adjudicates at once. Reports journeys/s, the time from the Patient POST to the journey's
eligibility.verified (goal p95 < 500 ms) and to claim.paid, the outcomes, the server's CPU time per
journey and its peak memory, after the same latency for `--sequential` journeys posted one at a time;
beside a baseline measured in the same run on a server without journeys: the bare `$eligibility` round
trip (cache miss) for the same registrations, at the same concurrency.

    .venv/bin/python bench/workflow_journeys.py [--journeys 1000] [--clients 100] [--modes embedded,redis]

Mode `redis`: the server enqueues workflow steps on arq (a redis-server started here) and `--workers`
`nphies-facade worker` processes run them.
"""

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from processes import free_port, group_cpu_seconds, start_simulator, stop, wait_ready  # noqa: E402

from nphies_facade.workflows.instances import fetch_instances, timeline  # noqa: E402
from nphies_facade.workflows.journeys import synthetic  # noqa: E402

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
JOURNEYS_MODULE = "nphies_facade.workflows.journeys.registered"
SETTLED = {"completed", "failed", "cancelled", "on-hold"}


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | Python {platform.python_version()}"


def peak_rss_mb(pids: list[int]) -> float:
    """Peak resident memory (VmHWM) summed over the processes, in MB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    return total / 1024


class Server:
    """`nphies-facade serve` (and, with Redis, a redis-server and `nphies-facade worker`)."""

    def __init__(self, journeys: bool, redis: bool, workers: int = 1, simulator: str = "process") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench-journeys-"))
        self.processes: list[subprocess.Popen] = []
        self.measured: list[subprocess.Popen] = []  # the server's own processes (not NPHIES, not Redis)
        self.env = {
            **os.environ,
            "NPHIES_FACADE_AUTH": "off",
            "NPHIES_FACADE_RATE_LIMIT": "0",
            "NPHIES_FACADE_LOG_LEVEL": "warning",
            "NPHIES_FACADE_DATA_DIR": str(self.folder / "data"),
            "NPHIES_FACADE_WORKFLOW_MODULES": JOURNEYS_MODULE if journeys else "",
            "NPHIES_FACADE_WORKFLOW_CONCURRENCY": "16",
        }
        if simulator == "process":
            process, nphies_url = start_simulator()
            self.processes.append(process)
            self.env["NPHIES_FACADE_NPHIES_URL"] = nphies_url
        if redis:
            port = free_port()
            self.processes.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            self.env["NPHIES_FACADE_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            time.sleep(0.5)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env["NPHIES_FACADE_BASE_URL"] = self.url
        serve = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(port)]
        self.start(serve)
        wait_ready(f"{self.url}/readyz", self.processes[-1])
        if redis:
            worker = [sys.executable, "-m", "nphies_facade.server.cli", "worker"]
            for _ in range(workers):
                self.start(worker)
        if journeys:
            self.wait_for_triggers()

    def start(self, command: list[str]) -> None:
        process = subprocess.Popen(command, env=self.env, cwd=ROOT, start_new_session=True)
        self.processes.append(process)
        self.measured.append(process)

    def wait_for_triggers(self, seconds: float = 60.0) -> None:
        """Until the journeys' trigger Subscriptions are active (the relay, in the worker with Redis,
        activates them): a change written before would start nothing."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = httpx.get(
                f"{self.url}/Subscription", params={"status": "active", "_count": "100"}, timeout=5
            )
            active = [
                e["resource"].get("criteria", "") for e in found.json().get("entry", []) if "resource" in e
            ]
            if {"Coverage?status=active", "Claim?status=active"} <= set(active):
                return
            time.sleep(0.2)
        raise RuntimeError("the journeys' trigger Subscriptions did not become active")

    def cpu(self) -> float:
        return group_cpu_seconds(*(p.pid for p in self.measured))  # each started in its own session

    def peak_mb(self) -> float:
        return peak_rss_mb([p.pid for p in self.measured])

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        shutil.rmtree(self.folder, ignore_errors=True)


def figures(label: str, seconds: list[float], goal_ms: float | None = None) -> str:
    if len(seconds) < 2:
        return f"{label:<44} n={len(seconds)} (too few to rank)"
    ms = sorted(s * 1000 for s in seconds)
    p = statistics.quantiles(ms, n=100, method="inclusive")
    line = f"{label:<44} n={len(ms):<5} p50={p[49]:7.1f} ms  p95={p[94]:7.1f} ms  max={ms[-1]:7.1f} ms"
    if goal_ms is not None:
        line += f"  (goal p95 < {goal_ms:g} ms: {'met' if p[94] < goal_ms else 'NOT met'})"
    return line


async def post_all(client: httpx.AsyncClient, bundles: list[dict], clients: int) -> list[float]:
    """Posts the transaction Bundles, `clients` in flight; returns when each post started (epoch s)."""
    gate = asyncio.Semaphore(clients)
    started = [0.0] * len(bundles)

    async def post(index: int) -> None:
        async with gate:
            started[index] = time.time()
            response = await client.post("/", json=bundles[index])
            if response.status_code != 200:
                raise RuntimeError(f"transaction refused: {response.status_code} {response.text[:300]}")

    await asyncio.gather(*(post(i) for i in range(len(bundles))))
    return started


async def settle(
    client: httpx.AsyncClient, workflow: str, n: int, seconds: float
) -> tuple[list[dict], float]:
    """The instances once all n have settled (or `seconds` passed), and when that was seen (epoch s)."""
    deadline = time.monotonic() + seconds
    while True:
        tasks = await fetch_instances(client, workflow, page_size=1000)
        if (len(tasks) >= n and all(t["status"] in SETTLED for t in tasks)) or time.monotonic() > deadline:
            return tasks, time.time()
        await asyncio.sleep(0.5)


def ended_at(task: dict, step: str) -> float | None:
    """When the instance left `step` (epoch seconds), from its step log."""
    for record in timeline(task):
        if record.step == step:
            return datetime.fromisoformat(record.left).timestamp()
    return None


def registrations(parties: synthetic.Parties, n: int) -> list[synthetic.Registration]:
    today = datetime.now(UTC).date()
    return [synthetic.Registration(parties, today) for _ in range(n)]


async def baseline(args: argparse.Namespace) -> list[str]:
    """The bare $eligibility round trip (cache miss) for the same kind of registrations, no journeys."""
    server = Server(journeys=False, redis=False, simulator=args.simulator)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=120) as client:
            parties = synthetic.Parties()
            await post_all(client, [synthetic.transaction(parties.resources())], 1)
            people = registrations(parties, args.journeys)
            await post_all(client, [synthetic.transaction(r.resources()) for r in people], args.clients)
            gate = asyncio.Semaphore(args.clients)
            took: list[float] = []

            async def ask(registration: synthetic.Registration) -> None:
                async with gate:
                    started = time.perf_counter()
                    response = await client.post(
                        f"/{registration.coverage}/$eligibility", headers={"Cache-Control": "no-cache"}
                    )
                    response.raise_for_status()
                    took.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(ask(r) for r in people))
            seconds = time.perf_counter() - started
        return [
            f"baseline: bare $eligibility (no journeys), {args.journeys} coverages, {args.clients} in flight",
            f"  {len(took) / seconds:.1f} round trips/s",
            "  " + figures("$eligibility round trip (cache miss)", took),
            f"  server peak memory {server.peak_mb():.0f} MB",
        ]
    finally:
        server.close()


async def journeys(args: argparse.Namespace, mode: str) -> list[str]:
    server = Server(journeys=True, redis=mode == "redis", workers=args.workers, simulator=args.simulator)
    lines = [
        f"{mode}: {args.journeys} eligibility journeys, then {args.journeys} claim journeys, {args.clients} posts in flight"
    ]
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=120) as client:
            parties = synthetic.Parties()
            await post_all(client, [synthetic.transaction(parties.resources())], 1)
            if args.sequential:
                lines += await one_at_a_time(client, parties, args.sequential)
            if args.run in ("both", "eligibility"):
                lines += await measured(server, args.journeys, eligibility_run(client, parties, args))
            if args.run in ("both", "claims"):
                lines += await measured(server, args.journeys, claims_run(client, parties, args))
        lines.append(f"  server peak memory {server.peak_mb():.0f} MB (all its processes)")
        return lines
    finally:
        server.close()


async def measured(server: Server, n: int, run: Awaitable[list[str]]) -> list[str]:
    """The run's lines, and the CPU time the server's processes spent per journey during it."""
    before = server.cpu()
    lines = await run
    return [*lines, f"  server CPU {(server.cpu() - before) / n * 1000:.1f} ms per journey"]


async def one_at_a_time(client: httpx.AsyncClient, parties: synthetic.Parties, n: int) -> list[str]:
    """Journeys posted one after the other, each once the previous was verified: the latency unloaded."""
    latencies = []
    for registration in registrations(parties, n):
        posted = time.time()
        await post_all(client, [synthetic.transaction(registration.resources())], 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = await client.get(
                "/Task",
                params={"code": "urn:nphies-facade:workflow|eligibility", "focus": registration.patient},
            )
            task = next((e["resource"] for e in found.json().get("entry", []) if "resource" in e), None)
            end = ended_at(task, "verified") if task else None
            if end is not None:
                latencies.append(end - posted)
                break
            await asyncio.sleep(0.02)
    return ["  " + figures("one at a time: POST -> eligibility.verified", latencies, 500)]


async def eligibility_run(
    client: httpx.AsyncClient, parties: synthetic.Parties, args: argparse.Namespace
) -> list[str]:
    people = registrations(parties, args.journeys)
    first = time.time()
    started = await post_all(client, [synthetic.transaction(r.resources()) for r in people], args.clients)
    tasks, seen = await settle(client, "eligibility", args.journeys, args.timeout)
    by_patient = {t["focus"]["reference"]: t for t in tasks}
    latencies = []
    for registration, posted in zip(people, started, strict=True):
        task = by_patient.get(registration.patient)
        end = ended_at(task, "verified") if task else None
        if end is not None:
            latencies.append(end - posted)
    last = max((ended_at(t, "verified") or 0.0) for t in tasks) if tasks else seen
    outcomes = _outcomes(tasks)
    return [
        f"  eligibility: {len(latencies) / max(last - first, 1e-9):.1f} journeys/s ({len(latencies)} verified in {last - first:.1f} s); {outcomes}",
        "  " + figures("Patient POST -> eligibility.verified", latencies, 500),
    ]


async def claims_run(
    client: httpx.AsyncClient, parties: synthetic.Parties, args: argparse.Namespace
) -> list[str]:
    people = registrations(parties, args.journeys)
    claims = [r.claim() for r in people]
    bundles = [synthetic.transaction([*r.resources(), c]) for r, c in zip(people, claims, strict=True)]
    first = time.time()
    started = await post_all(client, bundles, args.clients)
    tasks, seen = await settle(client, "claims", args.journeys, args.timeout)
    by_claim = {t["focus"]["reference"]: t for t in tasks}
    latencies = []
    for claim, posted in zip(claims, started, strict=True):
        task = by_claim.get(f"Claim/{claim['id']}")
        end = ended_at(task, "paid") if task else None
        if end is not None:
            latencies.append(end - posted)
    last = max((ended_at(t, "paid") or 0.0) for t in tasks) if tasks else seen
    return [
        f"  claims: {len(latencies) / max(last - first, 1e-9):.1f} journeys/s ({len(latencies)} paid in {last - first:.1f} s); {_outcomes(tasks)}",
        "  " + figures("Claim POST -> claim.paid", latencies),
    ]


def _outcomes(tasks: list[dict]) -> str:
    counts: dict[str, int] = {}
    for task in tasks:
        step = (task.get("businessStatus") or {}).get("coding", [{}])[0].get("code", "?")
        key = f"{task['status']}:{step}"
        counts[key] = counts.get(key, 0) + 1
    return "outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=100, help="EMR posts in flight")
    parser.add_argument("--modes", default="embedded", help="embedded and/or redis, comma-separated")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the journeys to settle"
    )
    parser.add_argument("--workers", type=int, default=1, help="`nphies-facade worker` processes (redis)")
    parser.add_argument(
        "--simulator",
        choices=("process", "sandbox"),
        default="process",
        help="`nphies-facade simulator` in its own process, as NPHIES is another system (default), "
        "or the server's embedded sandbox simulator",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--run", choices=("both", "eligibility", "claims"), default="both")
    parser.add_argument("--sequential", type=int, default=20, help="journeys first posted one at a time")
    args = parser.parse_args()
    print(
        f"bench/workflow_journeys.py --journeys {args.journeys} --clients {args.clients} --modes {args.modes}"
    )
    print(machine())
    if not args.skip_baseline:
        for line in await baseline(args):
            print(line, flush=True)
    for mode in filter(None, (m.strip() for m in args.modes.split(","))):
        for line in await journeys(args, mode):
            print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
