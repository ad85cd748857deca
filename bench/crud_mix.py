"""The CRUD-mix benchmark: Patients created/read/updated 40/40/20 against `nphies-facade serve`, with wrk.

Each repetition runs, in this order:
  1. the baseline: bench/baseline_app.py (one bare ASGI route answering a fixed Patient with orjson,
     uvicorn with the same workers and flags) sent the same wrk mix script;
  2. the server: `nphies-facade serve --workers N` on a fresh temporary data dir, as deployed (auth on:
     a client is registered and given a bearer token for system/Patient.cruds; `--auth off` to skip),
     with the per-client rate limit off (NPHIES_FACADE_RATE_LIMIT=0: one client sends everything), seeded
     with --seed Patients over HTTP, warmed up with --warmup seconds of the mix, then measured.
While wrk runs, the RSS (and PSS) of the server's process tree (the uvicorn master and its workers) is
sampled from /proc every 0.2 s; the CPU time of the server tree, of wrk and of every other process on
the machine is taken before and after. The report gives per run req/s, p50/p95/p99 latency, non-2xx
count, peak RSS, CPU per request, and, over the repetitions, medians, the ratio mix/baseline and the
issue's goal (>= 1,500 req/s, p99 < 50 ms). Any non-2xx or socket error in the mix is reported loudly and
makes the exit status 2.

On a shared machine: each run waits (--quiet-wait) until other processes use less than --quiet-limit
cores, the servers and wrk run at --nice (default -10 as root, applied to their session's autogroup, which
is what counts with the kernel's autogroup scheduling), and a run during which other processes took CPU
while the machine was full is run again (--retry-busy) and reported as disturbed if it still is.

  .venv/bin/python bench/crud_mix.py [--duration 15] [--connections 32] [--threads 2] [--workers 2]
                                     [--repeat 3] [--seed 1000] [--json results.json]
  .venv/bin/python bench/crud_mix.py --skip-baseline --profile /tmp/prof --profile-gil   # + py-spy summary
  .venv/bin/python bench/crud_mix.py --skip-baseline --mix 0,1,0    # reads only (diagnosis)
"""

import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = HERE / "crud_mix.lua"
BASELINE_APP = HERE / "baseline_app.py"
BIN = Path(sys.executable).parent
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_MIX = "2,2,1"
GOAL_RPS = 1500.0
GOAL_P99_MS = 50.0


# ----- processes -----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ppids() -> dict[int, int]:
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        out[int(entry.name)] = int(fields[1])
    return out


def process_tree(root: int) -> list[int]:
    """root and all its descendants that are alive now."""
    parents = _ppids()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(frontier)
    return [pid for pid in tree if pid in parents]


def _status_kb(pid: int, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def machine_busy_seconds() -> float:
    """CPU seconds spent busy in processes by the whole machine since boot (all cores), from /proc/stat;
    interrupt time (irq, softirq: loopback TCP mostly) is left out, as no process is charged for it."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = fields[:8]
    return (user + nice + system + steal) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def wait_until_quiet(limit: float, patience: float) -> float:
    """Waits (up to `patience` s) until other processes use less than `limit` cores over 1 s; returns the
    last figure seen."""
    deadline = time.monotonic() + patience
    while True:
        busy, own, start = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
        time.sleep(1.0)
        load = (machine_busy_seconds() - busy - (own_cpu_seconds() - own)) / (time.monotonic() - start)
        if load < limit or time.monotonic() >= deadline:
            return load
        print(f"  waiting for a quiet machine: other processes use {load:.2f} cores", flush=True)


class MemorySampler(threading.Thread):
    """Samples the summed RSS and PSS of a process tree every `interval` seconds until stopped."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_rss_kb = self.peak_pss_kb = self.samples = 0
        self.peak_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = process_tree(self.root)
            rss = sum(_status_kb(pid, b"VmRSS:") for pid in pids)
            pss = sum(_pss_kb(pid) for pid in pids)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.peak_processes = max(self.peak_processes, len(pids))
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _niced(nice: int):
    """A preexec_fn giving the child (and so its children) scheduling priority `nice` (0: unchanged).

    The child runs in a session of its own (start_new_session), and with the kernel's autogroup scheduling
    (/proc/sys/kernel/sched_autogroup_enabled) CPU is shared between sessions first, so the session's
    autogroup gets the nice value too: that is what gives it priority over other people's processes."""
    if not nice:
        return None

    def apply() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
        except OSError:
            pass

    return apply


class Server:
    """A server started in its own process group, stopped by SIGINT to its master (SIGKILL to the group
    if it does not stop)."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path, ready_path: str, cwd: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.port, self.log_path, self.ready_path = name, argv, port, log, ready_path
        self.cwd, self.env = cwd, env
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, nice: int = 0) -> None:
        self._log = open(self.log_path, "wb")
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                     env=env, start_new_session=True, preexec_fn=_niced(nice))
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def workers(self) -> list[int]:
        return [pid for pid in process_tree(self.proc.pid) if pid != self.proc.pid]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# ----- wrk -----


@dataclass
class WrkResult:
    command: str
    rps: float = 0.0
    requests: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    non2xx: int = 0
    socket_errors: int = 0
    statuses: dict = field(default_factory=dict)
    sent: dict = field(default_factory=dict)
    first_error: str = ""
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    process_cpu_s: list = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    processes: int = 0
    raw: str = ""

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def run_wrk(args: argparse.Namespace, url: str, ids_file: Path, run_tag: int, duration: float,
            server: Server | None = None, authorization: str | None = None) -> WrkResult:
    argv = [args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--latency",
            "--timeout", "10s", "-s", str(LUA), url, "--", str(ids_file), str(run_tag)]
    if args.mix != DEFAULT_MIX:
        argv.append(args.mix)
    result = WrkResult(" ".join(argv))
    sampler = None
    tree_before: dict[int, float] = {}
    if server is not None:
        tree_before = cpu_seconds(process_tree(server.proc.pid))
        sampler = MemorySampler(server.proc.pid)
        sampler.start()
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    started = time.monotonic()
    env = {**os.environ, "CRUD_MIX_AUTHORIZATION": authorization or ""}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env, preexec_fn=_niced(args.nice))
    try:
        out = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        if sampler is not None:
            sampler.stop()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    result.wall_s = time.monotonic() - started
    result.client_cpu_s = usage.ru_utime + usage.ru_stime
    if server is not None:
        sampler.stop()
        after = cpu_seconds(process_tree(server.proc.pid))
        per_process = {pid: after[pid] - tree_before.get(pid, 0.0) for pid in after}
        result.server_cpu_s = sum(per_process.values())
        result.process_cpu_s = sorted(per_process.values(), reverse=True)
        result.peak_rss_mb = sampler.peak_rss_kb / 1024
        result.peak_pss_mb = sampler.peak_pss_kb / 1024
        result.processes = sampler.peak_processes
    result.other_cpu_s = (machine_busy_seconds() - busy_before - result.client_cpu_s - result.server_cpu_s
                          - (own_cpu_seconds() - own_before))
    result.raw = out
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{out}")
    match = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    result.rps = float(match.group(1)) if match else 0.0
    match = re.search(r"^CRUD_MIX_RESULT (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no CRUD_MIX_RESULT line:\n{out}")
    data = json.loads(match.group(1))
    result.requests = data["requests"]
    result.p50_ms, result.p95_ms, result.p99_ms, result.max_ms = (
        data[key] / 1000 for key in ("p50_us", "p95_us", "p99_us", "max_us"))
    result.non2xx = data["non2xx"]
    result.socket_errors = sum(data["socket_errors"].values())
    result.statuses, result.sent, result.first_error = data["statuses"], data["sent"], data["first_error"]
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if match:
        result.non2xx = max(result.non2xx, int(match.group(1)))
    return result


# ----- seeding -----


def seed_patient(n: int) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": "http://nphies.sa/identifier/nationalid",
                        "value": f"9{n:09d}"}],
        "active": True,
        "name": [{"use": "official", "family": "Seed", "given": [f"Patient{n}"]}],
        "gender": "female" if n % 2 else "male",
        "birthDate": f"{1950 + n % 60:04d}-{1 + n % 12:02d}-{1 + n % 28:02d}",
        "address": [{"use": "home", "line": [f"{n} Olaya Street"], "city": "Riyadh", "country": "SA"}],
    }


def seed(url: str, count: int, ids_file: Path, parallel: int = 4, authorization: str | None = None) -> None:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if authorization:
        headers["Authorization"] = authorization

    def create(chunk: range) -> list[str]:
        ids = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for n in chunk:
                response = client.post("/Patient", content=json.dumps(seed_patient(n)))
                if response.status_code != 201:
                    raise RuntimeError(f"seeding: POST /Patient answered {response.status_code}: "
                                       f"{response.text[:500]}")
                ids.append(response.json()["id"])
        return ids

    chunks = [range(i, count, parallel) for i in range(parallel)]
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        ids = [i for part in pool.map(create, chunks) for i in part]
    ids_file.write_text("\n".join(ids) + "\n")


# ----- runs -----


def baseline_run(args: argparse.Namespace, work: Path, rep: int) -> tuple[WrkResult, list[str]]:
    port = free_port()
    argv = [sys.executable, str(BASELINE_APP), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.workers), "--kind", args.baseline]
    server = Server("baseline", argv, port, work / f"baseline-{rep}.log", "/healthz", work)
    ids_file = work / "baseline-ids.txt"
    ids_file.write_text("\n".join(str(uuid.uuid4()) for _ in range(args.seed)) + "\n")
    server.start(nice=args.nice)
    try:
        if args.warmup > 0:
            run_wrk(args, server.url, ids_file, 90 + rep, args.warmup)
        result = run_wrk(args, server.url, ids_file, rep, args.duration, server)
    finally:
        server.stop()
    return result, [" ".join(argv)]


def mix_run(args: argparse.Namespace, work: Path, rep: int) -> tuple[WrkResult, list[str]]:
    port = free_port()
    data_dir = work / f"data-{rep}"
    argv = [str(BIN / "nphies-facade"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--workers", str(args.workers)]
    env = dict(item.split("=", 1) for item in args.server_env)
    if args.auth == "off":
        env["NPHIES_FACADE_AUTH"] = "off"
    else:
        env["NPHIES_FACADE_AUTH"] = "on"
        env["NPHIES_FACADE_BASE_URL"] = f"http://127.0.0.1:{port}"
    server = Server("nphies-facade", argv, port, work / f"server-{rep}.log", "/readyz", work, env)
    ids_file = work / f"ids-{rep}.txt"
    server.start(nice=args.nice)
    profiles = []
    try:
        authorization = bearer_token(data_dir, env) if args.auth == "token" else None
        started = time.monotonic()
        seed(server.url, args.seed, ids_file, authorization=authorization)
        seeded_in = time.monotonic() - started
        print(f"  seeded {args.seed} Patients in {seeded_in:.1f} s", flush=True)
        if args.warmup > 0:
            warm = run_wrk(args, server.url, ids_file, 90 + rep, args.warmup, authorization=authorization)
            if warm.errors:
                loud(f"WARM-UP HAD {warm.errors} ERRORS (statuses {warm.statuses}); "
                     f"first: {warm.first_error}")
        if args.profile:
            for stale in Path(args.profile).glob(f"worker-{rep}-*.txt"):
                stale.unlink()
            profiles = start_profilers(args, server, work, rep)
        result = run_wrk(args, server.url, ids_file, rep, args.duration, server, authorization)
        for proc in profiles:
            proc.wait(timeout=args.duration + 30)
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    troubles = [ln for ln in log.splitlines() if re.search(r"died|Traceback|ERROR|CRITICAL", ln)]
    if troubles:
        loud(f"THE SERVER LOG HAS {len(troubles)} LINE(S) OF TROUBLE ({server.log_path}), e.g.: "
             + " | ".join(troubles[:3]))
    return result, [" ".join(["env", *(f"{k}={v}" for k, v in env.items()), *argv])]


BENCH_CLIENT = "crud-mix-bench"
BENCH_SCOPE = "system/Patient.cruds"


def bearer_token(data_dir: Path, env: dict[str, str]) -> str:
    """Registers a benchmark client with the built-in authorization server of the store at data_dir and
    mints it a token for Patient CRUD (nphies-facade clients add / token, docs/security.md)."""
    cli = str(BIN / "nphies-facade")
    full_env = {**os.environ, **env}
    subprocess.run([cli, "clients", "add", "--id", BENCH_CLIENT, "--jwks-url", "http://127.0.0.1:9/jwks.json",
                    "--scope", BENCH_SCOPE, "--data-dir", str(data_dir)],
                   env=full_env, check=True, capture_output=True, text=True)
    minted = subprocess.run([cli, "token", "--client", BENCH_CLIENT, "--scope", BENCH_SCOPE, "--lifetime", "3600",
                             "--data-dir", str(data_dir)], env=full_env, check=True, capture_output=True, text=True)
    token = minted.stdout.strip().splitlines()[-1].strip() if minted.stdout.strip() else ""
    if not token:
        raise RuntimeError(f"nphies-facade token printed no token: {minted.stderr[-500:]}")
    return f"Bearer {token}"


def start_profilers(args: argparse.Namespace, server: Server, work: Path, rep: int) -> list[subprocess.Popen]:
    """py-spy record (raw folded stacks) on each worker for the measured run; figures of such a run are
    slowed by the sampling and are for the profile only."""
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in server.workers():
        out = out_dir / f"worker-{rep}-{pid}.txt"
        argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", f"{int(args.duration)}",
                "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out)]
        if args.profile_gil:
            argv.append("--gil")
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        print(f"  profiling worker {pid} into {out}", flush=True)
    time.sleep(0.5)
    return procs


# ----- profiles -----

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")


def _frame(text: str) -> tuple[str, str]:
    """A py-spy frame 'func (path/file.py:12)' as (function, module)."""
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), text.strip()
    path = match["file"]
    module = path[:-3] if path.endswith(".py") else path
    module = module.replace("/", ".").lstrip(".")
    return f"{match['func']} ({module})", module


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "nphies_facade":
        return ".".join(parts[:3]) if parts[1:2] != ["server"] else ".".join(parts[:2])
    if parts[0] in ("fhir", "fhir_core"):
        return "fhir.resources/fhir_core"
    return parts[0]


# (name, test on the whole stack of frames) in order; the first that holds names the sample's part
_PARTS_BY_STACK = (
    ("validation (fhir.resources models, pydantic)", lambda fns, mods: any(
        f.startswith("validate_resource ") for f in fns)),
    ("search-index extraction", lambda fns, mods: any(f.startswith("Extractor.extract ") for f in fns)),
    ("SQLite store (aiosqlite threads, queries, index rows)", lambda fns, mods: any(
        m.startswith(("aiosqlite", "sqlite3", "nphies_facade.resources.sqlite")) for m in mods)),
)
# otherwise by the leaf frame's package
_PARTS_BY_LEAF = (
    ("nphies_facade, other (rest, service, responses, middleware)", ("nphies_facade",)),
    ("FastAPI/Starlette/anyio (routing, middleware, request/response)", ("fastapi", "starlette", "anyio")),
    ("uvicorn + httptools (HTTP protocol)", ("uvicorn", "httptools")),
    ("asyncio/uvloop event loop", ("asyncio", "uvloop")),
)
_ENDPOINTS = ("create", "read", "update", "vread", "patch", "delete")


def summarise_profile(paths: list[Path], top: int = 25) -> str:
    """Self and total time per function, and total per package, from py-spy raw (folded) files."""
    self_time: dict[str, int] = {}
    total_fn: dict[str, int] = {}
    total_pkg: dict[str, int] = {}
    self_pkg: dict[str, int] = {}
    parts: dict[str, int] = {}
    endpoints: dict[str, int] = {}
    samples = 0
    for path in paths:
        for raw in path.read_text(errors="replace").splitlines():
            stack, _, count = raw.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            samples += n
            frames = [_frame(f) for f in stack.split(";") if not f.startswith(("thread (", "process "))]
            if not frames:
                continue
            leaf_fn, leaf_mod = frames[-1]
            self_time[leaf_fn] = self_time.get(leaf_fn, 0) + n
            self_pkg[_package(leaf_mod)] = self_pkg.get(_package(leaf_mod), 0) + n
            for fn in {fn for fn, _ in frames}:
                total_fn[fn] = total_fn.get(fn, 0) + n
            for pkg in {_package(mod) for _, mod in frames}:
                total_pkg[pkg] = total_pkg.get(pkg, 0) + n
            fns, mods = [fn for fn, _ in frames], [mod for _, mod in frames]
            part = next((name for name, test in _PARTS_BY_STACK if test(fns, mods)), None)
            if part is None:
                part = next((name for name, prefixes in _PARTS_BY_LEAF if leaf_mod.startswith(prefixes)),
                            "other")
            parts[part] = parts.get(part, 0) + n
            endpoint = next((fn.split(" ")[0] for fn in fns if fn.endswith("(nphies_facade.server.rest)")
                             and fn.split(" ")[0] in _ENDPOINTS), "outside an endpoint (server, framework, "
                            "aiosqlite threads)")
            endpoints[endpoint] = endpoints.get(endpoint, 0) + n
    if not samples:
        return "  (no samples)"

    def table(title: str, counts: dict[str, int], rows: int) -> list[str]:
        out = [f"  {title}"]
        for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:rows]:
            out.append(f"    {100 * n / samples:5.1f}%  {name}")
        return out

    lines = [f"  {samples} samples from {len(paths)} file(s)"]
    lines += table("by part of the server (first matching: stack has validate_resource, Extractor.extract, "
                   "the store; else the leaf's package):", parts, 10)
    lines += table("by endpoint (the stack passes through nphies_facade.server.rest.X):", endpoints, 8)
    lines += table("self time by package (the leaf frame's package; C calls count to their caller):",
                   self_pkg, 15)
    lines += table("total time by package (any frame of the stack in it):", total_pkg, 15)
    lines += table("self time by function:", self_time, top)
    lines += table("total time by function:", total_fn, top)
    return "\n".join(lines)


# ----- report -----


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!!! {message}\n{bar}\n", file=sys.stderr, flush=True)


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "-"


def machine() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": os.sysconf("SC_PHYS_PAGES") * PAGE_KB // 1024,
        "python": platform.python_version(),
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "fastapi": _version("fastapi"),
        "orjson": _version("orjson"),
        "wrk": ((wrk.stdout or wrk.stderr or "?").splitlines() or ["?"])[0].split(" Copyright")[0],
    }


def line(label: str, r: WrkResult) -> str:
    wall = r.wall_s or 1.0
    return (f"  {label:<10} {r.rps:>9.1f} req/s  p50 {r.p50_ms:6.2f} ms  p95 {r.p95_ms:6.2f} ms  "
            f"p99 {r.p99_ms:6.2f} ms  max {r.max_ms:7.2f} ms  non-2xx {r.non2xx}  "
            f"socket errors {r.socket_errors}  peak RSS {r.peak_rss_mb:6.1f} MB "
            f"(PSS {r.peak_pss_mb:.1f} MB, {r.processes} procs)  cpu: server {r.server_cpu_s / wall:.0%} "
            f"[{' + '.join(f'{c / wall:.0%}' for c in r.process_cpu_s)}] "
            f"= {1000 * r.server_cpu_s / max(r.requests, 1):.2f} ms/request, "
            f"wrk {r.client_cpu_s / wall:.0%} other {r.other_cpu_s / wall:.0%}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(kind: str, runs: list[WrkResult]) -> dict:
    return {
        "rps": median([r.rps for r in runs]),
        "p50_ms": median([r.p50_ms for r in runs]),
        "p95_ms": median([r.p95_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "non2xx": sum(r.non2xx for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "peak_rss_mb": median([r.peak_rss_mb for r in runs]),
        "max_peak_rss_mb": max((r.peak_rss_mb for r in runs), default=0.0),
        "peak_pss_mb": median([r.peak_pss_mb for r in runs]),
        "server_cpu_pct": median([100 * r.server_cpu_s / r.wall_s for r in runs if r.wall_s]),
        "client_cpu_pct": median([100 * r.client_cpu_s / r.wall_s for r in runs if r.wall_s]),
        "other_cpu_pct": median([100 * r.other_cpu_s / r.wall_s for r in runs if r.wall_s]),
        "server_cpu_ms_per_request": median([1000 * r.server_cpu_s / r.requests for r in runs if r.requests]),
    }


def disturbed(result: WrkResult, limit: float) -> bool:
    """Other processes took more than `limit` cores while the machine was (nearly) full: had they not
    run, the server or wrk could have had that CPU. (With idle CPU left over, as when the server waits
    on locks, their use took nothing from the run.)"""
    if not result.wall_s:
        return False
    other = result.other_cpu_s / result.wall_s
    total = (result.other_cpu_s + result.server_cpu_s + result.client_cpu_s) / result.wall_s
    return other > limit and total > 0.85 * (os.cpu_count() or 1)


def measured(run, label: str, args: argparse.Namespace, work: Path, rep: int) -> tuple[WrkResult, list[str]]:
    """One run after waiting for a quiet machine; run again (--retry-busy times at most) when other
    processes took more than --quiet-limit cores during it."""
    for attempt in range(args.retry_busy + 1):
        wait_until_quiet(args.quiet_limit, args.quiet_wait)
        result, cmds = run(args, work, rep)
        busy = result.other_cpu_s / result.wall_s if result.wall_s else 0.0
        if not disturbed(result, args.quiet_limit) or attempt == args.retry_busy:
            return result, cmds
        print(line(label, result), flush=True)
        print(f"  (other processes used {busy:.2f} cores during that {label} run: running it again)", flush=True)
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15, help="seconds of each measured wrk run (15)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of both servers (2)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; medians are reported (1)")
    parser.add_argument("--seed", type=int, default=1000, help="Patients created before the mix (1000)")
    parser.add_argument("--warmup", type=float, default=3,
                        help="seconds of unmeasured mix first (3; 0 for none)")
    parser.add_argument("--quiet-limit", type=float, default=0.25,
                        help="before each run, wait until other processes use fewer cores than this (0.25)")
    parser.add_argument("--quiet-wait", type=float, default=120,
                        help="seconds to wait at most for that quiet (120)")
    parser.add_argument("--auth", choices=("token", "off"), default="token",
                        help="token (default): the server as deployed, NPHIES_FACADE_AUTH=on, with a bearer token "
                             f"of a client registered for {BENCH_SCOPE}; off: NPHIES_FACADE_AUTH=off")
    parser.add_argument("--server-env", action="append", metavar="NAME=VALUE",
                        help="environment of the server (repeatable); default NPHIES_FACADE_RATE_LIMIT=0, since "
                             "the per-client rate limit (50/s) would throttle the one benchmark client, and "
                             "NPHIES_FACADE_WORKFLOW_MODULES= (the journeys off: workflow_journeys.py measures them)")
    parser.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                        help="scheduling priority of the servers and wrk, so that other work on a shared "
                             "machine disturbs less (default -10 as root, else 0 = unchanged)")
    parser.add_argument("--retry-busy", type=int, default=2,
                        help="run again a run during which other processes used more than --quiet-limit "
                             "cores, at most this many times (2)")
    parser.add_argument("--baseline", choices=("raw", "fastapi", "fastapi-middleware"), default="raw",
                        help="baseline app: raw ASGI (default), a FastAPI catch-all route, or that route "
                             "behind one @app.middleware('http') (see bench/baseline_app.py)")
    parser.add_argument("--skip-baseline", action="store_true", help="measure the server only")
    parser.add_argument("--skip-server", action="store_true", help="measure the baseline only")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy record each worker during the mix (raw folded stacks into DIR); "
                             "the figures of such a run are slowed by the sampling")
    parser.add_argument("--mix", default=DEFAULT_MIX,
                        help='POST,GET,PUT weights (default "2,2,1" = 40/40/20; e.g. "0,1,0" for reads only, '
                             "for diagnosis: the goal is about the default)")
    parser.add_argument("--profile-gil", action="store_true",
                        help="with --profile: sample only the thread holding the GIL (py-spy --gil)")
    parser.add_argument("--summarise", nargs="+", metavar="FILE",
                        help="only print the summary of py-spy raw files (e.g. from --profile) and exit")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data, ids)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    args = parser.parse_args(argv)
    if args.server_env is None:
        args.server_env = ["NPHIES_FACADE_RATE_LIMIT=0", "NPHIES_FACADE_WORKFLOW_MODULES="]
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")

    if args.summarise:
        print(summarise_profile([Path(p) for p in args.summarise]))
        return 0
    if not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk}; install it (apt-get install wrk)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers on a kill as on ^C
    work = Path(tempfile.mkdtemp(prefix="crud-mix-"))
    info = machine()
    weights = ([int(w) for w in args.mix.split(",")] + [0, 0, 0])[:3]
    shares = " / ".join(f"{op} {100 * w / max(sum(weights), 1):.0f}%"
                        for op, w in zip(("POST", "GET", "PUT"), weights, strict=True))
    print(f"CRUD mix benchmark: {shares} of Patients")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"settings: duration {args.duration:g}s, {args.connections} connections, {args.threads} wrk "
          f"threads, {args.workers} workers, {args.seed} seeded Patients, warm-up {args.warmup:g}s, "
          f"repeat {args.repeat}, baseline {args.baseline}, nice {args.nice}, auth {args.auth}")
    baselines: list[WrkResult] = []
    mixes: list[WrkResult] = []
    commands: dict[str, list[str]] = {}
    try:
        for rep in range(1, args.repeat + 1):
            print(f"\nrun {rep}/{args.repeat}", flush=True)
            if not args.skip_baseline:
                result, cmds = measured(baseline_run, "baseline", args, work, rep)
                commands.setdefault("baseline server", cmds)
                commands.setdefault("baseline wrk", [result.command])
                baselines.append(result)
                print(line("baseline", result), flush=True)
            if args.skip_server:
                continue
            result, cmds = measured(mix_run, "mix", args, work, rep)
            commands.setdefault("server", cmds)
            commands.setdefault("mix wrk", [result.command])
            mixes.append(result)
            print(line("mix", result), flush=True)
            if result.errors:
                loud(f"THE MIX HAD {result.non2xx} NON-2XX RESPONSES AND {result.socket_errors} SOCKET "
                     f"ERRORS (statuses {result.statuses}); first: {result.first_error}")
    except Exception as exc:
        loud(f"BENCHMARK FAILED: {exc}")
        print(f"(logs in {work})", file=sys.stderr)
        return 1

    print("\ncommands:")
    for name, cmds in commands.items():
        for cmd in cmds:
            print(f"  {name}: {cmd}")
    mix = summarise("mix", mixes) if mixes else None
    base = summarise("baseline", baselines) if baselines else None
    label = "median of" if args.repeat > 1 else "of"
    print(f"\nresult ({label} {args.repeat} run{'s' if args.repeat > 1 else ''}):")
    for name, figures in (("baseline", base), ("mix", mix)):
        if figures:
            print(f"  {name:<10} {figures['rps']:9.1f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
                  f"p95 {figures['p95_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  "
                  f"non-2xx {figures['non2xx']}  socket errors {figures['socket_errors']}  "
                  f"peak RSS {figures['peak_rss_mb']:.1f} MB")
    errors = 0
    if mix:
        print(f"  peak RSS of the server (master + workers): {mix['peak_rss_mb']:.1f} MB median, "
              f"{mix['max_peak_rss_mb']:.1f} MB max (PSS {mix['peak_pss_mb']:.1f} MB)")
        print(f"  CPU during the mix: server {mix['server_cpu_pct']:.0f}%, wrk {mix['client_cpu_pct']:.0f}%, "
              f"other processes {mix['other_cpu_pct']:.0f}% (100% = one core; {info['cpu_count']} cores); "
              f"server CPU per request {mix['server_cpu_ms_per_request']:.2f} ms"
              + (f" (baseline {base['server_cpu_ms_per_request']:.3f} ms)" if base else ""))
        if base and base["rps"] and mix["rps"]:
            print(f"  ratio mix/baseline: {mix['rps'] / base['rps']:.3f} "
                  f"(the baseline is {base['rps'] / mix['rps']:.1f}x faster)")
        rps_ok, p99_ok = mix["rps"] >= GOAL_RPS, mix["p99_ms"] < GOAL_P99_MS
        print(f"  goal >= {GOAL_RPS:,.0f} req/s: {'PASS' if rps_ok else 'FAIL'}; p99 < {GOAL_P99_MS:.0f} ms: "
              f"{'PASS' if p99_ok else 'FAIL'}" + ("" if args.mix == DEFAULT_MIX else " (not the issue's mix)"))
        errors = mix["non2xx"] + mix["socket_errors"]
    hit = [r for r in [*baselines, *mixes] if disturbed(r, args.quiet_limit)]
    if hit:
        busiest = max(r.other_cpu_s / r.wall_s for r in hit)
        loud(f"OTHER PROCESSES USED UP TO {busiest:.0%} OF A CORE WHILE THE MACHINE WAS FULL, IN {len(hit)} "
             "RUN(S): those figures are disturbed")
    if errors:
        loud(f"THE MIX HAD ERRORS: {mix['non2xx']} non-2xx, {mix['socket_errors']} socket errors; "
             "the figures above are not valid")
    if args.profile:
        print(f"\nprofile of the workers during the mix (py-spy, {args.profile}):")
        print(summarise_profile(sorted(Path(args.profile).glob("worker-*.txt"))))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "settings": vars(args), "commands": commands,
            "baseline": {"median": base, "runs": [asdict(r) | {"raw": None} for r in baselines]},
            "mix": {"median": mix, "runs": [asdict(r) | {"raw": None} for r in mixes]},
        }, indent=2))
    if args.keep:
        print(f"\n(temporary files kept in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
