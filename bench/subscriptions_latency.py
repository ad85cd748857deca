"""Subscriptions: write-commit-to-notification latency at a steady write rate, and relay throughput on a
backlog, in the embedded mode (`serve` relays and runs jobs) and with arq on Redis (`serve` + one
`nphies-facade worker`).

Steady phase: --rate Observation creates/s over HTTP for --duration s against --subscriptions rest-hook
Subscriptions with payload (each write matches exactly one), plus one workflow Subscription on 1 write in
20 whose job pings the receiver. Latency is receiver arrival minus the version's meta.lastUpdated (set just
before the commit, so it includes the commit). Baseline of the run: a loopback POST to the same receiver.

Backlog phase: with the server stopped, --backlog matching versions are written straight through the store
(bench shortcut: no validation, index values computed once), then the server (and worker) start and the
relay drains them; relay events/s comes from sampling its cursor in the store, delivery/s from the
receiver. Baseline of the run: reading the same outbox rows and bodies with sqlite3, nothing else.

Run: .venv/bin/python bench/subscriptions_latency.py [--modes embedded,arq] [--backlog 10000]
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from nphies_facade.resources.clock import fhir_instant, system_clock
from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.sqlite.store import SqliteStore
from nphies_facade.resources.store import StoredVersion
from nphies_facade.subscriptions.hook_client import HookClient, HookError

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "urn:bench:code"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


# ----- processes -----


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env})


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def wait_http(url: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url, timeout=1.0)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


class Stack:
    """Receiver, optional Redis, the API server and, with Redis, one worker."""

    def __init__(self, mode: str, data_dir: Path, workers: int = 1) -> None:
        self.mode = mode
        self.data_dir = data_dir
        self.workers = workers
        self.receiver_port, self.port = free_port(), free_port()
        self.redis_port = free_port()
        self.receiver: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    def env(self) -> dict[str, str]:
        env = {
            "NPHIES_FACADE_AUTH": "off",
            "NPHIES_FACADE_RATE_LIMIT": "0",
            "NPHIES_FACADE_LOG_LEVEL": "warning",
            "NPHIES_FACADE_WORKFLOW_MODULES": "subscriptions_workflow",
            "PYTHONPATH": str(ROOT / "bench"),
            "BENCH_RECEIVER_URL": self.receiver_url,
        }
        if self.mode == "arq":
            env["NPHIES_FACADE_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        return env

    async def start_support(self) -> None:
        receiver = [
            sys.executable,
            str(ROOT / "bench" / "subscriptions_receiver.py"),
            str(self.receiver_port),
        ]
        self.receiver = start(receiver, {})
        if self.mode == "arq":
            redis = ["redis-server", "--port", str(self.redis_port), "--save", "", "--appendonly", "no"]
            self.redis = start(redis, {})
        await wait_http(self.receiver_url + "/_stats")

    async def start_fhir(self) -> None:
        cli = [sys.executable, "-m", "nphies_facade.server.cli"]
        self.server = start(
            [
                *cli,
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
            ],
            self.env(),
        )
        await wait_http(self.url + "/readyz")
        if self.mode == "arq":
            self.worker = start([*cli, "worker", "--data-dir", str(self.data_dir)], self.env())

    def stop_fhir(self) -> None:
        stop(self.worker)
        stop(self.server)
        self.worker = self.server = None

    def stop_all(self) -> None:
        self.stop_fhir()
        stop(self.receiver)
        stop(self.redis)


# ----- figures -----


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(values), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({model}), Python {platform.python_version()}, load average {load}"


async def receiver_notes(stack: Stack, since: int = 0) -> list[list]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{stack.receiver_url}/_stats?since={since}", timeout=30)).json()


# ----- steady phase -----


def observation(i: int, subscriptions: int) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": SYSTEM, "code": f"c{i % subscriptions}"}]},
        "identifier": [{"system": "urn:bench:write", "value": str(i)}],
    }


async def subscribe(client: httpx.AsyncClient, stack: Stack, count: int) -> list[str]:
    ids = []
    for c in range(count):
        hook = {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "benchmark",
            "criteria": f"Observation?code={SYSTEM}|c{c}",
            "channel": {
                "type": "rest-hook",
                "endpoint": stack.receiver_url + "/fhir",
                "payload": "application/fhir+json",
            },
        }
        ids.append((await client.post("/Subscription", json=hook, headers=FHIR_JSON)).json()["id"])
    job = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "benchmark workflow",
        "criteria": f"Observation?code={SYSTEM}|c0",
        "channel": {"type": "message", "endpoint": "urn:nphies-facade:workflow:bench-ping"},
    }
    ids.append((await client.post("/Subscription", json=job, headers=FHIR_JSON)).json()["id"])
    deadline = time.monotonic() + 60
    for sub in ids:
        while (await client.get(f"/Subscription/{sub}")).json()["status"] != "active":
            if time.monotonic() > deadline:
                raise RuntimeError(f"Subscription/{sub} did not become active")
            await asyncio.sleep(0.1)
    return ids


class Writers:
    """Keep-alive connections to the server for the load: the server's own small h11 client, so the
    load generator spends little of the machine's CPU (httpx costs several times more per request)."""

    def __init__(self, url: str, connections: int) -> None:
        self._url = url
        self._idle: asyncio.Queue[HookClient] = asyncio.Queue()
        for _ in range(connections):
            self._idle.put_nowait(HookClient(30.0, ssl.create_default_context()))

    async def post(self, path: str, body: bytes) -> int:
        client = await self._idle.get()
        try:
            return await client.request(
                "POST", self._url + path, [("content-type", "application/fhir+json")], body
            )
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().aclose()


async def write_steadily(writers: Writers, rate: float, count: int, subscriptions: int) -> dict:
    """Open loop: write i is sent at start + i/rate whatever the answers' pace."""
    write_ms: list[float] = []
    statuses: dict[str, int] = {}
    in_flight: set[asyncio.Task] = set()

    async def one(i: int) -> None:
        sent = time.perf_counter()
        try:
            status = str(await writers.post("/Observation", orjson.dumps(observation(i, subscriptions))))
        except HookError as exc:
            status = exc.kind
        statuses[status] = statuses.get(status, 0) + 1
        write_ms.append((time.perf_counter() - sent) * 1000)

    started = time.perf_counter()
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    elapsed = time.perf_counter() - started
    return {
        "writes": count,
        "achieved_rate": round(count / elapsed, 1),
        "errors": sum(n for status, n in statuses.items() if status != "201"),
        "statuses": statuses,
        "write_ms": percentiles(write_ms),
    }


async def loopback_baseline(stack: Stack, count: int = 500) -> dict:
    """A POST to the receiver on a kept-alive connection, with the client the server delivers with."""
    client, times = HookClient(10.0, ssl.create_default_context()), []
    try:
        for _ in range(count):
            sent = time.perf_counter()
            await client.request("POST", stack.receiver_url + "/baseline", [], b"")
            times.append((time.perf_counter() - sent) * 1000)
    finally:
        await client.aclose()
    return percentiles(times)


async def steady_phase(stack: Stack, args: argparse.Namespace) -> dict:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        await subscribe(client, stack, args.subscriptions)
    baseline = await loopback_baseline(stack)
    warm = int(args.rate * args.warmup)
    total = warm + int(args.rate * args.duration)
    writers = Writers(stack.url, 64)
    try:
        writes = await write_steadily(writers, args.rate, total, args.subscriptions)
    finally:
        await writers.close()
    expected_hooks = total
    expected_jobs = len([i for i in range(total) if i % args.subscriptions == 0])
    deadline = time.monotonic() + 120
    notes: list[list] = []
    while time.monotonic() < deadline:
        notes += await receiver_notes(stack, len(notes))
        hooks = {(n[1], n[2]) for n in notes if n[0] == "hook"}
        jobs = {n[1] for n in notes if n[0] == "job"}
        if len(hooks) >= expected_hooks and len(jobs) >= expected_jobs:
            break
        await asyncio.sleep(0.2)
    skip_hooks = warm  # notifications are numbered per Subscription; drop each one's warm-up share
    per_sub_skip = skip_hooks // args.subscriptions
    hook_ms = [n[3] for n in notes if n[0] == "hook" and n[2] > per_sub_skip]
    job_ms = [n[3] for n in notes if n[0] == "job"][expected_jobs * warm // max(total, 1) :]
    hooks = {(n[1], n[2]) for n in notes if n[0] == "hook"}
    return {
        **writes,
        "notifications": len(hooks),
        "expected": expected_hooks,
        "duplicates": sum(1 for n in notes if n[0] == "hook") - len(hooks),
        "commit_to_notification_ms": percentiles(hook_ms),
        "commit_to_job_start_ms": percentiles(job_ms),
        "baseline_loopback_post_ms": baseline,
    }


# ----- backlog phase -----


async def fill_backlog(database: Path, count: int, subscriptions: int) -> float:
    """Writes `count` Observation versions through the store (one transaction per 1,000)."""
    store = SqliteStore(database)
    await store.open()
    extractor = Extractor(SearchRegistry())
    started = time.perf_counter()
    try:
        for first in range(0, count, 1000):
            async with store.transaction() as tx:
                for i in range(first, min(first + 1000, count)):
                    resource = observation(i, subscriptions)
                    resource["id"] = uuid.uuid4().hex
                    resource["meta"] = {"versionId": "1", "lastUpdated": fhir_instant(system_clock())}
                    stored = StoredVersion(
                        "Observation",
                        resource["id"],
                        1,
                        resource["meta"]["lastUpdated"],
                        "POST",
                        orjson.dumps(resource),
                    )
                    await tx.write(stored, extractor.extract(resource), "backlog")
    finally:
        await store.close()
    return time.perf_counter() - started


def relay_cursor(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        row = db.execute("SELECT seq FROM relay_cursor WHERE name = 'main'").fetchone()
    return row[0] if row else 0


def last_seq(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return db.execute("SELECT max(seq) FROM outbox").fetchone()[0]


def raw_read_rate(database: Path, after: int) -> float:
    """Baseline: outbox rows and their bodies read in batches of 500, with sqlite3, nothing else."""
    started, seq, read = time.perf_counter(), after, 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        while True:
            rows = db.execute(
                "SELECT o.seq, h.body FROM outbox o JOIN resources r ON r.type = o.type AND r.id = o.id "
                "JOIN history h ON h.rid = r.rid AND h.version = o.version WHERE o.seq > ? ORDER BY o.seq LIMIT 500",
                (seq,),
            ).fetchall()
            if not rows:
                break
            for _, body in rows:
                orjson.loads(body)
            seq, read = rows[-1][0], read + len(rows)
    return read / (time.perf_counter() - started)


async def backlog_phase(stack: Stack, args: argparse.Namespace) -> dict:
    database = stack.data_dir / "nphies-facade.sqlite3"
    notes_before = len(await receiver_notes(stack))
    stack.stop_fhir()
    start_seq = last_seq(database)
    fill_seconds = await fill_backlog(database, args.backlog, args.subscriptions)
    end_seq = last_seq(database)
    baseline = raw_read_rate(database, start_seq)
    await stack.start_fhir()
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        cursor = await asyncio.to_thread(relay_cursor, database)
        samples.append((time.monotonic(), cursor))
        if cursor >= end_seq:
            break
        await asyncio.sleep(0.1)
    moving = [s for s in samples if s[1] > start_seq] or samples
    relay_seconds = max(moving[-1][0] - moving[0][0], 1e-6)
    relayed = moving[-1][1] - moving[0][1]
    drained_at, delivered = None, 0
    started_drain = moving[0][0]
    while time.monotonic() < deadline:
        notes = await receiver_notes(stack, notes_before)
        delivered = len({(n[1], n[2]) for n in notes if n[0] == "hook"})
        if delivered >= args.backlog:
            drained_at = time.monotonic()
            break
        await asyncio.sleep(0.5)
    return {
        "backlog": args.backlog,
        "fill_seconds": round(fill_seconds, 1),
        "relay_events_per_s": round(relayed / relay_seconds),
        "relay_seconds": round(relay_seconds, 1),
        "delivered": delivered,
        "deliveries_per_s": round(delivered / (drained_at - started_drain)) if drained_at else None,
        "baseline_raw_outbox_read_per_s": round(baseline),
    }


# ----- driver -----


async def run_mode(mode: str, args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-subs-{mode}-"))
    stack = Stack(mode, data_dir, args.workers)
    try:
        await stack.start_support()
        await stack.start_fhir()
        steady = await steady_phase(stack, args)
        backlog = await backlog_phase(stack, args) if args.backlog else None
        return {"mode": mode, "steady": steady, "backlog": backlog}
    finally:
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


def report(result: dict, args: argparse.Namespace) -> None:
    steady, backlog = result["steady"], result["backlog"]
    latency = steady["commit_to_notification_ms"]
    print(f"\n== {result['mode']} (serve --workers {args.workers}) ==")
    print(
        f"steady: {steady['writes']} writes at {steady['achieved_rate']}/s (asked {args.rate}/s), "
        f"{steady['errors']} errors {steady['statuses']}; write p50/p95/p99 {steady['write_ms'].get('p50')}/"
        f"{steady['write_ms'].get('p95')}/{steady['write_ms'].get('p99')} ms"
    )
    print(
        f"  commit -> notification: p50 {latency.get('p50')} ms, p95 {latency.get('p95')} ms, p99 "
        f"{latency.get('p99')} ms, max {latency.get('max')} ms over {latency.get('n')} "
        f"(goal p95 < 100 ms: {'met' if latency.get('p95', 1e9) < 100 else 'NOT met'})"
    )
    print(
        f"  notifications {steady['notifications']}/{steady['expected']}, duplicates {steady['duplicates']}; "
        f"commit -> workflow job start p50/p95/p99 {steady['commit_to_job_start_ms'].get('p50')}/"
        f"{steady['commit_to_job_start_ms'].get('p95')}/{steady['commit_to_job_start_ms'].get('p99')} ms"
    )
    base = steady["baseline_loopback_post_ms"]
    print(
        f"  baseline loopback POST to the receiver: p50 {base['p50']} ms, p95 {base['p95']} ms, p99 {base['p99']} ms"
    )
    if backlog:
        goal = "met" if backlog["relay_events_per_s"] >= 3000 else "NOT met"
        print(
            f"backlog: {backlog['backlog']} events relayed at {backlog['relay_events_per_s']}/s in "
            f"{backlog['relay_seconds']} s (goal >= 3,000/s: {goal}); baseline raw outbox+body read "
            f"{backlog['baseline_raw_outbox_read_per_s']}/s"
        )
        print(
            f"  deliveries drained: {backlog['delivered']}/{backlog['backlog']} at "
            f"{backlog['deliveries_per_s']}/s (backlog written in {backlog['fill_seconds']} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="embedded,arq", help="embedded, arq or both (comma-separated)")
    parser.add_argument("--rate", type=float, default=300.0, help="writes per second in the steady phase")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of steady writes measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of steady writes not measured")
    parser.add_argument("--subscriptions", type=int, default=20, help="rest-hook Subscriptions")
    parser.add_argument("--backlog", type=int, default=100_000, help="events in the backlog phase (0: skip)")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="seconds to wait for a drain")
    parser.add_argument("--workers", type=int, default=1, help="API server processes (`serve --workers`)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "arq" in modes and shutil.which("redis-server") is None:
        print("redis-server not found: skipping the arq mode", file=sys.stderr)
        modes.remove("arq")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("machine:", machine())
    results = []
    for mode in modes:
        result = asyncio.run(run_mode(mode, args))
        report(result, args)
        results.append(result)
    print("\nmachine after:", machine())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
