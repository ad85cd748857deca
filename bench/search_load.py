"""Search benchmark: load Patients with their Coverage, Encounter, Claim and Task into a fresh embedded
store, then measure indexed searches over HTTP against `nphies-facade serve --workers N` with wrk.

Load: through `POST /` transaction Bundles (BATCH patients, 5 resources each, per Bundle) sent by LOADERS
concurrent clients to the same server the searches run on; the rate is resources stored per second of
wall time. Searches: for each kind, wrk (bench/search_load.lua, a random identifier / name prefix / week /
patient / owner per request) for --duration seconds after --warmup seconds; the baseline in the same run
is a read of a random Patient by id through the same stack. The index size is what SQLite's dbstat says
the `idx` table and its indexes (the search index) take on disk, per 1,000 stored resources.

  .venv/bin/python bench/search_load.py [--patients 20000] [--workers 2] [--duration 10] [--warmup 3]
                                        [--connections 16] [--threads 2] [--json results.json]
"""

import argparse
import concurrent.futures
import json
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
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = HERE / "search_load.lua"
BIN = Path(sys.executable).parent
NID = "http://nphies.sa/identifier/nationalid"
OWNERS = 50
KINDS = {
    "identifier": "Patient by identifier",
    "name": "Patient by name prefix",
    "birthdate": "Patient by birthdate range (a week)",
    "claim": "Claim by patient and status",
    "portal": "Task portal: owner+status, -_lastUpdated, _include=Task:focus",
    "chain": "Claim?patient.identifier= (chained)",
    "read": "baseline: Patient read by id",
}
GOAL_LOAD = 1500.0
GOAL_P95_MS = 30.0
GOAL_PORTAL_RPS = 1000.0
SYLLABLES = ["al", "ba", "da", "fa", "ha", "ja", "ka", "ma", "na", "qa", "ra", "sa", "ta", "za", "mo", "nu"]
GIVEN = ["Ahmed", "Sara", "Omar", "Noura", "Khalid", "Reem", "Faisal", "Huda", "Yousef", "Lama"]


# ----- data -----


def family(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient_entries(rng: random.Random, i: int) -> list[dict]:
    """The five resources of one patient, as transaction entries referring to each other by urn:uuid."""
    p, cov, enc, claim = _urn(), _urn(), _urn(), _urn()
    owner = f"Organization/prov{i % OWNERS}"
    born = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    resources = [
        (
            p,
            {
                "resourceType": "Patient",
                "identifier": [{"system": NID, "value": f"{1_000_000_000 + i}"}],
                "name": [{"family": family(rng), "given": [rng.choice(GIVEN)]}],
                "gender": rng.choice(["male", "female"]),
                "birthDate": born,
            },
        ),
        (
            cov,
            {
                "resourceType": "Coverage",
                "status": "active",
                "identifier": [{"system": "http://payer.sa/member", "value": f"M{i}"}],
                "beneficiary": {"reference": p},
                "payor": [{"reference": "Organization/payer"}],
            },
        ),
        (
            enc,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": p},
                "period": {"start": day, "end": day},
            },
        ),
        (
            claim,
            {
                "resourceType": "Claim",
                "status": "active" if rng.random() < 0.9 else "cancelled",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}
                    ]
                },
                "use": "claim",
                "patient": {"reference": p},
                "created": day,
                "insurer": {"reference": "Organization/payer"},
                "provider": {"reference": owner},
                "priority": {"coding": [{"code": "normal"}]},
                "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": cov}}],
                "item": [
                    {
                        "sequence": 1,
                        "productOrService": {"coding": [{"code": "99213"}]},
                        "encounter": [{"reference": enc}],
                    }
                ],
            },
        ),
        (
            _urn(),
            {
                "resourceType": "Task",
                "status": rng.choice(["requested", "in-progress", "completed", "cancelled"]),
                "intent": "order",
                "code": {"coding": [{"system": "http://nphies-facade/workflow", "code": "claim"}]},
                "businessStatus": {"coding": [{"code": "waiting"}]},
                "owner": {"reference": owner},
                "focus": {"reference": claim},
                "for": {"reference": p},
                "authoredOn": f"{day}T10:00:00+03:00",
            },
        ),
    ]
    return [
        {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
        for url, r in resources
    ]


def bundles(patients: int, batch: int, seed: int) -> list[tuple[int, dict]]:
    rng = random.Random(seed)
    out = []
    for start in range(0, patients, batch):
        entries = [e for i in range(start, min(start + batch, patients)) for e in patient_entries(rng, i)]
        out.append((start, {"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    return out


# ----- server -----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], url: str, log: Path) -> None:
        self.argv, self.env, self.url, self.log_path = argv, env, url, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not get ready")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


# ----- load -----


def _post_bundle(url: str, bundle: dict) -> list[str]:
    response = httpx.post(
        url + "/",
        content=json.dumps(bundle),
        headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
        timeout=300,
    )
    if response.status_code != 200:
        raise RuntimeError(f"transaction failed: {response.status_code} {response.text[:500]}")
    return [e["response"]["location"] for e in response.json()["entry"]]


def _id_of(location: str, resource_type: str) -> str:
    """The id in a location such as [base/]Patient/123/_history/1."""
    parts = location.split("/")
    return parts[parts.index(resource_type) + 1]


def load(url: str, patients: int, batch: int, loaders: int, seed: int) -> tuple[float, list[str]]:
    """Seconds it took, and the Patient ids in creation order."""
    for org in ["payer", *(f"prov{k}" for k in range(OWNERS))]:
        httpx.put(
            f"{url}/Organization/{org}",
            json={"resourceType": "Organization", "id": org, "name": org},
            headers={"Content-Type": "application/fhir+json"},
            timeout=30,
        ).raise_for_status()
    work = bundles(patients, batch, seed)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(loaders) as pool:
        locations = list(pool.map(lambda item: _post_bundle(url, item[1]), work))
    elapsed = time.monotonic() - started
    ids = [_id_of(loc, "Patient") for locs in locations for loc in locs if "Patient/" in loc]
    return elapsed, ids


# ----- wrk -----


@dataclass
class Figures:
    kind: str
    what: str
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    command: str


def write_data(path: Path, patient_ids: list[str], patients: int, seed: int) -> None:
    rng = random.Random(seed + 1)
    lines = [f"nid\t{1_000_000_000 + i}" for i in range(patients)]
    lines += [f"pid\t{pid}" for pid in patient_ids]
    lines += [f"prefix\t{family(rng)[:4].lower()}" for _ in range(500)]
    lines += [f"month\t{y}-{m:02d}" for y in range(1940, 2006) for m in range(1, 13)]
    lines += [f"owner\tprov{k}" for k in range(OWNERS)]
    path.write_text("\n".join(lines) + "\n")


def wrk(args: argparse.Namespace, url: str, kind: str, data: Path, duration: float) -> Figures:
    argv = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        kind,
        str(data),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    figures = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    del figures["requests"]
    return Figures(kind, KINDS[kind], **figures, command=" ".join(argv))


# ----- the same searches in-process, straight on the store (the search path without HTTP) -----


def store_query(kind: str, rng: random.Random, values: dict[str, list[str]]) -> tuple[str, str] | None:
    """(resource type, query) as search_load.lua builds them; None for the read baseline."""

    def pick(key: str) -> str:
        return rng.choice(values[key])

    nid = f"{NID}|{pick('nid')}"
    queries = {
        "identifier": ("Patient", f"identifier={nid}"),
        "name": ("Patient", f"name={pick('prefix')}&_count=20"),
        "birthdate": ("Patient", "birthdate=ge{0}-01&birthdate=lt{0}-08&_count=20".format(pick("month"))),
        "claim": ("Claim", f"patient=Patient/{pick('pid')}&status=active"),
        "portal": (
            "Task",
            f"owner=Organization/{pick('owner')}&status=requested,in-progress&_sort=-_lastUpdated"
            "&_include=Task:focus&_count=20",
        ),
        "chain": ("Claim", f"patient.identifier={nid}"),
    }
    return queries.get(kind)


def store_level(db_path: Path, data: Path, kinds: list[str], n: int = 300) -> dict[str, tuple[float, float]]:
    """p50 and p95 ms of parse + plan + SQL + includes (run_search on one connection) per search kind."""
    from urllib.parse import parse_qsl

    from nphies_facade.resources.search.definitions import SearchRegistry
    from nphies_facade.resources.search.plan import Planner
    from nphies_facade.resources.search.query import QueryParser
    from nphies_facade.resources.sqlite.schema import PRAGMAS
    from nphies_facade.resources.sqlite.search_exec import resolve_pids, run_search
    from nphies_facade.resources.sqlite.search_sql import SQL_FUNCTIONS

    values: dict[str, list[str]] = {}
    for line in data.read_text().splitlines():
        key, _, value = line.partition("\t")
        values.setdefault(key, []).append(value)
    db = sqlite3.connect(db_path, isolation_level=None)
    for pragma in PRAGMAS:
        db.execute(pragma)
    for name, arity, function in SQL_FUNCTIONS:
        db.create_function(name, arity, function, deterministic=True)
    registry, cache = SearchRegistry(), {}

    class Pids:
        def resolve_sync(self, conn: sqlite3.Connection, keys: object) -> list[int]:
            return resolve_pids(cache, conn, keys)

    out = {}
    rng = random.Random(7)
    for kind in kinds:
        if store_query(kind, rng, values) is None:
            continue
        timings = []
        for i in range(n + 30):
            resource_type, query = store_query(kind, rng, values)
            started = time.perf_counter()
            parsed = QueryParser(registry).parse((resource_type,), parse_qsl(query), strict=True)
            run_search(db, Pids(), Planner(registry, time.time() * 1000).plan(parsed))
            if i >= 30:
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        out[kind] = (timings[len(timings) // 2], timings[int(len(timings) * 0.95)])
    db.close()
    return out


# ----- sizes and machine -----


def index_sizes(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        count = db.execute("SELECT count(*) FROM resources WHERE deleted = 0").fetchone()[0]
        idx_rows = db.execute("SELECT count(*) FROM idx").fetchone()[0]
    sizes = dict(rows)
    search = sum(v for k, v in sizes.items() if k == "idx" or k.startswith("idx_"))
    return {
        "resources": count,
        "idx_rows": idx_rows,
        "search_index_bytes": search,
        "database_bytes": sum(sizes.values()),
    }


def machine() -> str:
    model = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"
    )
    return f"{platform.node()} {platform.platform()}, {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


# ----- report -----


def report(
    args: argparse.Namespace,
    load_s: float | None,
    stored: int,
    sizes: dict,
    results: list[Figures],
    store: dict[str, tuple[float, float]],
) -> None:
    print(f"\ncommand: {' '.join(sys.argv)}")
    print(f"machine: {machine()}")
    print(
        f"server:  nphies-facade serve --workers {args.workers} (auth off, rate limit off), wrk -t{args.threads} -c{args.connections}"
    )
    if load_s is None:
        print(f"\nload: none; {stored} resources stored by an earlier run (--reuse)")
    else:
        rate = stored / load_s
        print(
            f"\nload: {stored} resources ({args.patients} patients x 5) in {load_s:.1f} s through POST / transaction "
            f"Bundles of {args.batch * 5} entries from {args.loaders} clients = {rate:.0f} resources/s "
            f"(goal >= {GOAL_LOAD:.0f}: {'met' if rate >= GOAL_LOAD else 'NOT met'})"
        )
    per_k = 1000 / sizes["resources"]
    print(
        f"index: {sizes['idx_rows']} idx rows; search index {sizes['search_index_bytes'] * per_k / 1024:.0f} KiB "
        f"per 1,000 resources; whole database {sizes['database_bytes'] * per_k / 1024:.0f} KiB per 1,000 resources"
    )
    header = f"{'search (HTTP, wrk)':62} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(f"\n{header}  store p50/p95 ms")
    for r in results:
        inproc = store.get(r.kind)
        shown = f"{inproc[0]:.2f}/{inproc[1]:.2f}" if inproc else ""
        errors = r.non2xx + r.socket_errors
        print(
            f"{r.what:62} {r.rps:8.0f} {r.p50_ms:8.2f} {r.p95_ms:8.2f} {r.p99_ms:8.2f} {errors:7d}  {shown}"
        )
    print(
        "(store: the same searches in this process straight on the database file: parse, plan, SQL, includes)"
    )
    searches = [r for r in results if r.kind != "read"]
    slow = [r.kind for r in searches if r.p95_ms >= GOAL_P95_MS]
    portal = next((r for r in results if r.kind == "portal"), None)
    portal_goal = "not measured"
    if portal is not None:
        portal_goal = f"{'met' if portal.rps >= GOAL_PORTAL_RPS else 'NOT met'} ({portal.rps:.0f})"
    print(
        f"\ngoals: p95 < {GOAL_P95_MS:.0f} ms on every indexed search: {'met' if not slow else 'NOT met (' + ', '.join(slow) + ')'}; "
        f"portal >= {GOAL_PORTAL_RPS:.0f} searches/s: {portal_goal}"
    )
    print(f"load average now: {load_average()}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="patients per transaction Bundle")
    parser.add_argument("--loaders", type=int, default=2, help="concurrent clients posting Bundles")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS)
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="search the data an earlier --keep run left in DIR (no loading; the directory is kept)",
    )
    args = parser.parse_args()

    work = args.reuse or Path(tempfile.mkdtemp(prefix="search-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "NPHIES_FACADE_AUTH": "off",
        "NPHIES_FACADE_RATE_LIMIT": "0",
        "NPHIES_FACADE_BASE_URL": url,
        "NPHIES_FACADE_LOG_LEVEL": "warning",
        "NPHIES_FACADE_WORKFLOW_MODULES": "",  # the journeys would start on every loaded Patient
    }
    argv = [
        str(BIN / "nphies-facade"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(work / "data"),
        "--workers",
        str(args.workers),
    ]
    print(f"load average at start: {load_average()}; data in {work}", flush=True)
    server = Server(argv, env, url, work / "server.log")
    server.start()
    try:
        data = work / "values.tsv"
        if args.reuse:
            load_s, stored = None, index_sizes(work / "data" / "nphies-facade.sqlite3")["resources"]
        else:
            load_s, patient_ids = load(url, args.patients, args.batch, args.loaders, args.seed)
            stored = args.patients * 5
            print(f"loaded {stored} resources in {load_s:.1f} s", flush=True)
            write_data(data, patient_ids, args.patients, args.seed)
        results = []
        for kind in args.kinds.split(","):
            if args.warmup > 0:
                wrk(args, url, kind, data, args.warmup)
            results.append(wrk(args, url, kind, data, args.duration))
            print(f"  {kind}: {results[-1].rps:.0f} req/s, p95 {results[-1].p95_ms:.1f} ms", flush=True)
    finally:
        server.stop()
    sizes = index_sizes(work / "data" / "nphies-facade.sqlite3")
    store = store_level(work / "data" / "nphies-facade.sqlite3", data, [r.kind for r in results])
    report(args, load_s, stored, sizes, results, store)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "load_seconds": load_s,
                    "resources": stored,
                    "sizes": sizes,
                    "store_ms": store,
                    "results": [asdict(r) for r in results],
                    "machine": machine(),
                },
                indent=2,
            )
        )
    if not args.keep and not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
