"""`nphies-facade simulate`: runs N synthetic journeys against the NPHIES simulator, on a virtual clock,
and prints the KPIs, so a change to a workflow can be judged before it ships.

The server (journeys installed, embedded SQLite store, sandbox simulator) runs in this process. Each
journey is what an EMR would post (a registration; for claims, a registration and a Claim). A mix of
cases (`--mix not-eligible=0.1,...`) and simulator faults (`--faults 5xx=0.05,...`) shape the run. Manual
reviews are answered by simulated reviewers: a share (`--on-time`) within the review SLA; then the virtual
clock jumps past the SLA, the sweep escalates the rest, and the late reviewers answer them.
"""

import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from . import metrics
from .dsl import WORKFLOW_SYSTEM
from .instances import ESCALATED, STEP_STATUS_SYSTEM, fetch_instances, timeline
from .journeys import synthetic
from .journeys.harness import Harness, running, step_of
from .journeys.settings import from_environment

FAULT_KINDS = {"5xx", "timeout", "latency", "malformed"}
MIX_KINDS = {"not-eligible", "no-consent", "partial", "queued"}
# The cases each journey has: partial and queued are answers to claims.
JOURNEY_KINDS = {"eligibility": {"not-eligible", "no-consent"}, "claims": MIX_KINDS}
DEFAULT_MIX = {"not-eligible": 0.1, "no-consent": 0.02, "partial": 0.1, "queued": 0.1}
SETTLED = frozenset({"completed", "failed", "cancelled", "on-hold"})
PROGRESS_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    journey: str
    n: int
    concurrency: int = 50
    faults: dict[str, float] = field(default_factory=dict)
    mix: dict[str, float] = field(default_factory=dict)
    on_time: float = 0.8
    seed: int = 7


def shares(text: str, allowed: set[str], what: str) -> dict[str, float]:
    """`a=0.1,b=0.2` as {a: 0.1, b: 0.2}; names outside `allowed` or shares outside [0, 1] are refused."""
    found: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in allowed:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(allowed))}")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"{what} {name} needs a share like {name}=0.1") from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the share of {what} {name} is between 0 and 1")
        found[name] = share
    return found


def fault_rules(faults: dict[str, float]) -> list[dict]:
    """Simulator fault rules for the shares: HTTP 503s, answers held past the gateway timeout, 300 ms of
    latency, truncated bodies."""
    shapes = {
        "5xx": {"kind": "error", "status": 503},
        "timeout": {"kind": "timeout", "delay": 1.5},
        "latency": {"kind": "latency", "delay": 0.3},
        "malformed": {"kind": "malformed"},
    }
    return [{**shapes[name], "probability": share} for name, share in faults.items() if share > 0]


@dataclass
class Journey:
    """One synthetic journey: what was posted, when, and the case it was drawn as."""

    case: str
    registration: synthetic.Registration
    subject: str
    posted: float = 0.0


def draw(plan: Plan, harness: Harness, rng: random.Random) -> list[Journey]:
    journeys = []
    for _ in range(plan.n):
        case = _case(plan.mix, rng)
        registration = harness.registration(
            member_id=synthetic.NOT_ACTIVE if case == "not-eligible" else None,
            consent=case != "no-consent",
            rng=rng,
        )
        subject = registration.patient
        journeys.append(Journey(case, registration, subject))
    return journeys


def _case(mix: dict[str, float], rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for name, share in mix.items():
        total += share
        if roll < total:
            return name
    return "normal"


def _resources(plan: Plan, journey: Journey) -> list[dict]:
    resources = journey.registration.resources()
    if plan.journey == "claims":
        items = [synthetic.Item("30571-00-00", 200.0)]
        if journey.case == "partial":
            items.append(synthetic.Item(synthetic.REJECTED_DRUG, 50.0, synthetic.MEDICATIONS))
        claim = journey.registration.claim(items, deferred=journey.case == "queued")
        journey.subject = f"Claim/{claim['id']}"
        resources.append(claim)
    return resources


def default_mix(journey: str) -> dict[str, float]:
    """The default cases of the journey (the claims-only ones left out for eligibility)."""
    return {k: v for k, v in DEFAULT_MIX.items() if k in JOURNEY_KINDS[journey]}


async def _post_all(plan: Plan, harness: Harness, journeys: list[Journey], posted: list[int]) -> None:
    gate = asyncio.Semaphore(plan.concurrency)

    async def post(journey: Journey) -> None:
        async with gate:
            resources = _resources(plan, journey)
            journey.posted = time.perf_counter()
            await harness.post(resources)
            posted[0] += 1

    await asyncio.gather(*(post(j) for j in journeys))


async def _count(harness: Harness, workflow: str, statuses: str) -> int:
    params = {"code": f"{WORKFLOW_SYSTEM}|{workflow}", "status": statuses, "_summary": "count"}
    found = await harness.client.get("/Task", params=params)
    return int(found.json().get("total", 0)) if found.status_code == 200 else 0


async def report_progress(
    harness: Harness, plan: Plan, posted: list[int], started: float, tell: Callable[[str], None]
) -> None:
    """Every PROGRESS_SECONDS until cancelled: journeys posted and settled of the total, the rate so
    far, and how many failed."""
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        settled = await _count(harness, plan.journey, ",".join(sorted(SETTLED)))
        failed = await _count(harness, plan.journey, "failed")
        seconds = time.perf_counter() - started
        tell(
            f"  ... {settled}/{plan.n} settled ({posted[0]} posted), {settled / seconds:.1f} journeys/s, "
            f"{failed} failed, {seconds:.0f} s"
        )


async def _settle(harness: Harness, workflow: str, n: int, seconds: float) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        tasks = await fetch_instances(harness.client, workflow)
        if len(tasks) >= n and all(t["status"] in SETTLED for t in tasks):
            return tasks
        if time.monotonic() > deadline:
            return tasks
        await asyncio.sleep(0.2)


async def _review(harness: Harness, plan: Plan, instances: list[dict], rng: random.Random) -> tuple[int, int]:
    """Reviewers answer the open reviews: some within the SLA, the rest after the clock jumps past it
    (and the sweep escalated them). Returns (reviews, answered within the SLA)."""
    waiting = [t for t in instances if t["status"] == "on-hold"]
    on_time = [t for t in waiting if rng.random() < plan.on_time]
    late = [t for t in waiting if t not in on_time]
    await asyncio.gather(*(_approve(harness, t) for t in on_time))
    if late:
        harness.clock.advance(from_environment().review_sla + timedelta(minutes=1))
        await harness.engine.sweeper.sweep()
        await asyncio.gather(*(_approve(harness, t) for t in late))
    return len(waiting), len(on_time)


async def _approve(harness: Harness, instance: dict) -> None:
    found = await harness.client.get(
        "/Task", params={"part-of": f"Task/{instance['id']}", "status": "requested"}
    )
    for entry in found.json().get("entry", []):
        task = entry.get("resource", {})
        if task.get("resourceType") == "Task" and task["code"]["coding"][0]["code"] == "decision":
            await harness.client.post(f"/Task/{task['id']}/$approve", json={"resourceType": "Parameters"})


def _escalated(task: dict) -> bool:
    """Escalated now, or a step of it left after its SLA passed."""
    marked = {"system": STEP_STATUS_SYSTEM, "code": ESCALATED} in task["businessStatus"]["coding"]
    return marked or any(record.sla == "breached" for record in timeline(task))


def _counter_total(counter) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


@dataclass
class Report:
    plan: Plan
    seconds: float
    outcomes: Counter
    turnaround: list[float]
    submissions: Counter
    step_retries: float
    exchange_retries: float
    reviews: int
    reviewed_on_time: int
    escalated: int

    def lines(self) -> list[str]:
        n = self.plan.n
        out = [
            f"simulate --journey {self.plan.journey} --n {n} (concurrency {self.plan.concurrency}, "
            f"faults {_shown(self.plan.faults)}, mix {_shown(self.plan.mix)})",
            f"  journeys/s                 {n / self.seconds:8.1f}   ({n} journeys settled in {self.seconds:.1f} s)",
        ]
        if self.turnaround:
            p50, p95 = _percentile(self.turnaround, 50), _percentile(self.turnaround, 95)
            label = (
                "eligibility turnaround" if self.plan.journey == "eligibility" else "claim to adjudication"
            )
            out.append(f"  {label:<26} p50 {p50 * 1000:6.0f} ms   p95 {p95 * 1000:6.0f} ms")
        if self.plan.journey == "claims":
            sent = sum(self.submissions.values())
            rate = self.submissions["success"] / sent if sent else 0.0
            out.append(
                f"  claim submission success   {rate:8.1%}   ({self.submissions['success']:.0f} of {sent:.0f})"
            )
        out += [
            f"  step retries               {self.step_retries:8.0f}   NPHIES resends {self.exchange_retries:.0f}",
            f"  escalation rate            {self.escalated / n:8.1%}   ({self.escalated} escalated)",
            f"  review SLA compliance      {self.reviewed_on_time / self.reviews if self.reviews else 1.0:8.1%}"
            f"   ({self.reviewed_on_time} of {self.reviews} reviews within the SLA)",
            "  outcomes                   " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
        ]
        return out


def _shown(shares_: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in shares_.items()) or "none"


def _percentile(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def _answered_after(
    task: dict, step: str, posted: float, started_wall: float, started_iso: datetime
) -> float | None:
    """Seconds from the post to the moment the instance left `step` (from its step log)."""
    for record in timeline(task):
        if record.step == step:
            left = datetime.fromisoformat(record.left)
            return (left - started_iso).total_seconds() - (posted - started_wall)
    return None


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def simulate(
    plan: Plan, data_dir: Path, say: Callable[[str], None] = print, tell: Callable[[str], None] = _to_stderr
) -> Report:
    """Runs the plan; `say` gets the report, `tell` the progress lines while it runs."""
    rng = random.Random(plan.seed)
    overrides = {"nphies_timeout": 1.0, "nphies_retries": 1, "workflow_concurrency": 16}
    async with running(data_dir, http=False, **overrides) as harness:
        rules = fault_rules(plan.faults)
        if rules:
            (await harness.simulator("faults", "PUT", rules)).raise_for_status()
        journeys = draw(plan, harness, rng)
        retries_before = _counter_total(metrics.STEP_RETRIES), _counter_total(metrics.NPHIES_RETRIES)
        submissions_before = {
            r: metrics.CLAIM_SUBMISSIONS.labels(result=r)._value.get() for r in ("success", "failure")
        }
        started_wall, started_iso = time.perf_counter(), harness.clock()
        tell(f"simulate: {plan.n} {plan.journey} journeys, {plan.concurrency} at once ...")
        posted = [0]
        progress = asyncio.create_task(report_progress(harness, plan, posted, started_wall, tell))
        try:
            await _post_all(plan, harness, journeys, posted)
            instances = await _settle(harness, plan.journey, plan.n, seconds=120 + plan.n)
        finally:
            progress.cancel()
        seconds = time.perf_counter() - started_wall
        by_subject = {t["focus"]["reference"]: t for t in instances}
        step = "eligibility" if plan.journey == "eligibility" else "submitted"
        turnaround = [
            s
            for j in journeys
            if j.subject in by_subject
            and (s := _answered_after(by_subject[j.subject], step, j.posted, started_wall, started_iso))
            is not None
        ]
        reviews, on_time = await _review(harness, plan, instances, rng)
        final = await _settle(harness, plan.journey, plan.n, seconds=60)
        outcomes = Counter(f"{t['status']}:{step_of(t)}" for t in final)
        escalated = sum(1 for t in final if _escalated(t))
        submissions = Counter(
            {
                r: metrics.CLAIM_SUBMISSIONS.labels(result=r)._value.get() - submissions_before[r]
                for r in submissions_before
            }
        )
        report = Report(
            plan,
            seconds,
            outcomes,
            turnaround,
            submissions,
            _counter_total(metrics.STEP_RETRIES) - retries_before[0],
            _counter_total(metrics.NPHIES_RETRIES) - retries_before[1],
            reviews,
            on_time,
            escalated,
        )
    for line in report.lines():
        say(line)
    return report


def run(plan: Plan, data_dir: Path | None = None) -> int:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(simulate(plan, data_dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="nphies-simulate-") as folder:
        asyncio.run(simulate(plan, Path(folder) / "data"))
    return 0
