"""The bundle-ingest benchmark: transaction Bundles of Synthea-like patient records posted to `POST /`.

It starts `nphies-facade serve` on a free port with a temporary data dir, warms it up, then has --clients
concurrent clients post --bundles transaction Bundles of --entries entries each (Patients with their
Coverage, Encounters, Claims and Observations, linked by urn:uuid references). It reports resources
committed per second, p50/p95 latency per bundle and the server's CPU time per resource. The baseline, measured in the same run on the same
documents: plain sqlite3 (WAL, synchronous=NORMAL like the store), one INSERT of the JSON per resource,
one transaction per bundle. The goal to report against: >= 2,500 resources/s.

  .venv/bin/python bench/bundle_ingest.py [--bundles 60] [--entries 100] [--clients 4] [--workers 1]
                                          [--prefer minimal|representation] [--profile DIR]
"""

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

BIN = Path(sys.executable).parent
GOAL = 2500.0
PER_PATIENT = {"Encounter": 3, "Claim": 3, "Observation": 12}  # plus one Patient and one Coverage
PROVIDER = "Organization/bench-provider"
PAYER = "Organization/bench-payer"
FAMILIES = ["Alharbi", "Alqahtani", "Alghamdi", "Alzahrani", "Aldossari", "Alshehri", "Almutairi"]
GIVEN = ["Sara", "Mohammed", "Noura", "Abdullah", "Fatimah", "Khalid", "Reem", "Omar"]
VITALS = [
    ("8867-4", "Heart rate", "/min", 60, 100),
    ("8310-5", "Body temperature", "Cel", 36, 38),
    ("29463-7", "Body weight", "kg", 50, 110),
    ("8302-2", "Body height", "cm", 150, 190),
]


# ----- documents -----


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def entry(full_url: str, resource: dict) -> dict:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def patient_record(rng: random.Random, number: int) -> list[dict]:
    """One patient's Synthea-like record: Patient, Coverage, Encounters, Claims and Observations."""
    patient_url, coverage_url = urn(), urn()
    records = [entry(patient_url, _patient(rng, number)), entry(coverage_url, _coverage(number, patient_url))]
    encounter_urls = [urn() for _ in range(PER_PATIENT["Encounter"])]
    for day, encounter_url in enumerate(encounter_urls, start=1):
        records.append(entry(encounter_url, _encounter(day, patient_url)))
    for day, encounter_url in enumerate(encounter_urls[: PER_PATIENT["Claim"]], start=1):
        records.append(entry(urn(), _claim(rng, day, patient_url, coverage_url, encounter_url)))
    for index in range(PER_PATIENT["Observation"]):
        encounter_url = encounter_urls[index % len(encounter_urls)]
        records.append(entry(urn(), _observation(rng, index, patient_url, encounter_url)))
    return records


def _patient(rng: random.Random, number: int) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "http://nphies.sa/identifier/nationalid", "value": f"1{number:09d}"}],
        "name": [{"family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)]}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": f"{rng.randint(1940, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "telecom": [{"system": "phone", "value": f"+9665{rng.randint(10_000_000, 99_999_999)}"}],
        "address": [{"city": "Riyadh", "country": "SA"}],
    }


def _coverage(number: int, patient_url: str) -> dict:
    return {
        "resourceType": "Coverage",
        "identifier": [{"system": "http://payer.example/memberid", "value": f"M{number:08d}"}],
        "status": "active",
        "type": {
            "coding": [{"system": "http://nphies.sa/terminology/CodeSystem/coverage-type", "code": "EHCPOL"}]
        },
        "subscriber": {"reference": patient_url},
        "beneficiary": {"reference": patient_url},
        "relationship": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}
            ]
        },
        "payor": [{"reference": PAYER}],
    }


def _encounter(day: int, patient_url: str) -> dict:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient_url},
        "period": {"start": f"2025-03-{day:02d}T09:00:00+03:00", "end": f"2025-03-{day:02d}T09:30:00+03:00"},
        "serviceProvider": {"reference": PROVIDER},
    }


def _claim(rng: random.Random, day: int, patient_url: str, coverage_url: str, encounter_url: str) -> dict:
    price = rng.randint(50, 900)
    return {
        "resourceType": "Claim",
        "identifier": [{"system": "http://provider.example/claim", "value": str(uuid.uuid4())}],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": patient_url},
        "created": f"2025-03-{day:02d}T10:00:00+03:00",
        "provider": {"reference": PROVIDER},
        "insurer": {"reference": PAYER},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage_url}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [
                        {"system": "http://nphies.sa/terminology/CodeSystem/services", "code": "83600-00-10"}
                    ]
                },
                "encounter": [{"reference": encounter_url}],
                "unitPrice": {"value": price, "currency": "SAR"},
                "net": {"value": price, "currency": "SAR"},
            }
        ],
        "total": {"value": price, "currency": "SAR"},
    }


def _observation(rng: random.Random, index: int, patient_url: str, encounter_url: str) -> dict:
    code, display, unit, low, high = VITALS[index % len(VITALS)]
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": patient_url},
        "encounter": {"reference": encounter_url},
        "effectiveDateTime": "2025-03-01T09:10:00+03:00",
        "valueQuantity": {
            "value": round(rng.uniform(low, high), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def make_bundles(count: int, entries: int, seed: int) -> list[dict]:
    """Bundles of whole patient records (20 entries each); a record cut short keeps its references valid,
    since entries only refer to earlier ones."""
    rng = random.Random(seed)
    bundles, number = [], 0
    for _ in range(count):
        items: list[dict] = []
        while len(items) < entries:
            number += 1
            items.extend(patient_record(rng, number))
        bundles.append({"resourceType": "Bundle", "type": "transaction", "entry": items[:entries]})
    return bundles


# ----- the server -----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROFILE_SUFFIX = {"flamegraph": "svg", "raw": "folded", "speedscope": "speedscope.json"}


def start_server(
    port: int, data_dir: Path, workers: int, profile: Path | None, fmt: str, journeys: bool
) -> subprocess.Popen:
    command = [
        str(BIN / "nphies-facade"),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]
    if profile is not None:
        command = [
            str(BIN / "py-spy"),
            "record",
            "--subprocesses",
            "--format",
            fmt,
            "-o",
            str(profile / f"bundle_ingest.{PROFILE_SUFFIX[fmt]}"),
            "--",
            *command,
        ]
    env = {
        **os.environ,
        "NPHIES_FACADE_LOG_LEVEL": "warning",
        "NPHIES_FACADE_BASE_URL": f"http://127.0.0.1:{port}",
        "NPHIES_FACADE_AUTH": "off",  # the ingest path is measured, not token checks (crud_mix.py has them)
        "NPHIES_FACADE_RATE_LIMIT": "0",  # one client sends everything
    }
    if not journeys:  # they would start on every Patient with a Coverage; workflow_journeys.py measures them
        env["NPHIES_FACADE_WORKFLOW_MODULES"] = ""
    return subprocess.Popen(command, env=env, start_new_session=True)


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, tree = 0.0, {pid}
    for _ in range(4):  # the serve command, its workers, their helpers
        tree |= {child for child, (parent, _) in stats.items() if parent in tree}
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


# ----- the clients -----


async def post_all(
    base: str, bundles: list[dict], clients: int, prefer: str, keep_alive: bool = False
) -> tuple[float, list[float], int]:
    """Posts every bundle with `clients` concurrent clients; returns elapsed s, latencies s, resources created.
    Each bundle goes on a new connection (as EMR interfaces post them), so with several server processes
    the one free to accept takes it; `keep_alive` reuses each client's connection instead, and the
    processes then share the clients' few connections as the kernel handed them out."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for bundle in bundles:
        queue.put_nowait(orjson.dumps(bundle))
    latencies: list[float] = []
    created = 0
    headers = {"Content-Type": "application/fhir+json", "Prefer": f"return={prefer}"}

    async def client() -> None:
        nonlocal created
        limits = httpx.Limits(max_keepalive_connections=None if keep_alive else 0)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120.0, limits=limits) as http:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post("/", content=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"a bundle failed: {response.status_code} {response.text[:500]}")
                created += sum(e["response"]["status"].startswith("201") for e in response.json()["entry"])

    started = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    return time.perf_counter() - started, latencies, created


def seed_organizations(base: str) -> None:
    for reference, name in ((PROVIDER, "Bench provider"), (PAYER, "Bench payer")):
        kind, resource_id = reference.split("/")
        body = {"resourceType": kind, "id": resource_id, "name": name, "active": True}
        response = httpx.put(
            f"{base}/{reference}", json=body, headers={"Content-Type": "application/fhir+json"}, timeout=120.0
        )
        response.raise_for_status()


# ----- the baseline -----


def sqlite_baseline(bundles: list[dict], folder: Path) -> tuple[float, int]:
    """Plain sqlite3: one INSERT of each resource's JSON, one transaction per bundle; returns (elapsed, rows)."""
    conn = sqlite3.connect(folder / "baseline.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE resources (type TEXT NOT NULL, id TEXT NOT NULL, body BLOB, PRIMARY KEY (type, id))"
    )
    rows = 0
    started = time.perf_counter()
    for bundle in bundles:
        batch = [
            (e["resource"]["resourceType"], str(uuid.uuid4()), orjson.dumps(e["resource"]))
            for e in bundle["entry"]
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO resources (type, id, body) VALUES (?, ?, ?)", batch)
        conn.execute("COMMIT")
        rows += len(batch)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, rows


# ----- report -----


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def machine() -> str:
    return (
        f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=60)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--warmup", type=int, default=4, help="bundles posted before measuring")
    parser.add_argument(
        "--prefer", choices=["minimal", "representation", "OperationOutcome"], default="minimal"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--journeys", action="store_true", help="run the server's default journeys on what is ingested"
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="each client reuses one connection (default: one per bundle)",
    )
    parser.add_argument("--profile", type=Path, help="record a py-spy profile of the server into DIR")
    parser.add_argument("--profile-format", choices=sorted(PROFILE_SUFFIX), default="flamegraph")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bundles = make_bundles(args.warmup + args.bundles, args.entries, args.seed)
    warmup, measured = bundles[: args.warmup], bundles[args.warmup :]
    folder = Path(tempfile.mkdtemp(prefix="bundle-ingest-"))
    try:
        baseline_elapsed, baseline_rows = sqlite_baseline(measured, folder)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(
            port, folder / "data", args.workers, args.profile, args.profile_format, args.journeys
        )
        try:
            wait_ready(base, server)
            seed_organizations(base)
            asyncio.run(post_all(base, warmup, args.clients, args.prefer))
            cpu_before = cpu_seconds(server.pid)
            elapsed, latencies, created = asyncio.run(
                post_all(base, measured, args.clients, args.prefer, args.keep_alive)
            )
            server_cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            stop_server(server)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rate = created / elapsed
    baseline_rate = baseline_rows / baseline_elapsed
    print(f"command:  {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine:  {machine()}")
    print(
        f"workload: {len(measured)} transaction bundles x {args.entries} entries, {args.clients} clients, "
        f"{args.workers} server process(es), Prefer: return={args.prefer}, {args.warmup} warm-up bundles, "
        f"{'one connection per client' if args.keep_alive else 'a connection per bundle'}, "
        f"journeys {'on' if args.journeys else 'off'}"
    )
    print(
        f"server:   {created} resources committed in {elapsed:.2f} s = {rate:,.0f} resources/s; per bundle "
        f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms; "
        f"server CPU {server_cpu * 1000 / created:.2f} ms per resource"
    )
    print(
        f"baseline: bare sqlite3 inserts of the same documents: {baseline_rows} rows in {baseline_elapsed:.3f} s "
        f"= {baseline_rate:,.0f} resources/s, {baseline_elapsed * 1000 / baseline_rows:.3f} ms per resource "
        f"(server reaches {rate / baseline_rate:.1%} of it)"
    )
    verdict = "met" if rate >= GOAL else "NOT met"
    print(f"goal:     >= {GOAL:,.0f} resources/s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
