"""Toy DSL workflows for the engine tests. `install()` registers them (and `uninstall()` takes them out,
so apps of other tests in the same process do not get their trigger Subscriptions); a server process
registers them by importing `toy_registered` (NPHIES_FACADE_WORKFLOW_MODULES).

Each is started by a Basic resource with the code `urn:test:toy|{workflow name}`; its subject is that
Basic. Side effects are conditional creates keyed on the instance, so a step run twice records once.
`FIXED` lets a test repair what makes toy-fail fail; TOY_SLOW_SECONDS makes toy-slow's first step slow.
"""

import asyncio
import os
from datetime import timedelta

from nphies_facade.workflows.context import StepContext
from nphies_facade.workflows.dsl import AskPerson, End, Next, Retry, Step, StepFailed, Trigger, Wait, Workflow
from nphies_facade.workflows.registry import definitions, register

TOY_SYSTEM = "urn:test:toy"
EFFECT_SYSTEM = "urn:test:toy-effect"
FIXED: set[str] = set()
REVIEWER = "Practitioner/reviewer"
SUPERVISOR = "PractitionerRole/supervisor"


def trigger(name: str) -> tuple[Trigger, ...]:
    return (Trigger(f"Basic?code={TOY_SYSTEM}|{name}"),)


async def effect(step: StepContext, what: str) -> None:
    """A side effect recorded once per instance and `what`, however often the step runs."""
    key = f"{step.task['id']}:{what}"
    basic = {
        "resourceType": "Basic",
        "identifier": [{"system": EFFECT_SYSTEM, "value": key}],
        "code": {"text": what},
        "subject": {"reference": step.subject},
    }
    await step.service.create(step.ctx, basic, if_none_exist=f"identifier={EFFECT_SYSTEM}|{key}")


async def receive(step: StepContext) -> Next:
    return Next("check", output={"received": True})


async def check(step: StepContext) -> Next:
    subject = await step.read(step.subject)
    step.emit("claim.submitted", {"note": "toy"})
    return Next("finish", output={"checked": (subject or {}).get("id", "")})


async def finish(step: StepContext) -> End:
    await effect(step, "finished")
    return End(output={"done": True})


HAPPY = Workflow(
    "toy-happy",
    "Toy happy path",
    "receive",
    (Step("receive", receive), Step("check", check), Step("finish", finish)),
    trigger("toy-happy"),
)


async def flaky(step: StepContext) -> Next:
    if step.attempt < 3:
        raise RuntimeError("not yet")
    return Next("finish", output={"attempts": step.attempt})


RETRYING = Workflow(
    "toy-retry",
    "Toy retry",
    "receive",
    (
        Step("receive", lambda step: _next("flaky")),
        Step("flaky", flaky, retry=Retry(attempts=3, initial=0.05, maximum=0.1)),
        Step("finish", finish),
    ),
    trigger("toy-retry"),
)


async def _next(step: str) -> Next:
    return Next(step)


async def validate(step: StepContext) -> Next:
    if step.subject not in FIXED:
        raise StepFailed("bad-input", "the toy input is not fixed yet")
    return Next("finish")


FAILING = Workflow(
    "toy-fail",
    "Toy failure",
    "receive",
    (Step("receive", lambda step: _next("validate")), Step("validate", validate), Step("finish", finish)),
    trigger("toy-fail"),
)


async def ask(step: StepContext) -> AskPerson:
    return AskPerson(
        owner=REVIEWER,
        description="Toy review: approve or reject",
        on_approve="approved",
        on_reject="rejected",
        sla=timedelta(hours=1),
        input={"subject": {"reference": step.subject}},
    )


async def approved(step: StepContext) -> End:
    await effect(step, "approved")
    return End(output={"verdict": "approved"})


async def rejected(step: StepContext) -> End:
    return End("failed", reason="rejected-by-reviewer")


HUMAN = Workflow(
    "toy-human",
    "Toy review",
    "ask",
    (
        Step("ask", ask, sla=timedelta(hours=2), escalate_to=SUPERVISOR),
        Step("approved", approved),
        Step("rejected", rejected),
    ),
    trigger("toy-human"),
)


async def nap(step: StepContext) -> Wait:
    return Wait("wake", until=step.now() + timedelta(hours=1), reason="toy nap")


async def wake(step: StepContext) -> End:
    await effect(step, "woke")
    return End(output={"woke-at": step.now().isoformat()})


WAITING = Workflow(
    "toy-wait",
    "Toy wait",
    "nap",
    (Step("nap", nap), Step("wake", wake)),
    trigger("toy-wait"),
)


async def slow(step: StepContext) -> Next:
    await effect(step, f"slow-started-{step.attempt}")
    await asyncio.sleep(float(os.environ.get("TOY_SLOW_SECONDS", "0")))
    return Next("record")


async def record(step: StepContext) -> End:
    await effect(step, "recorded")
    return End()


SLOW = Workflow(
    "toy-slow",
    "Toy slow step",
    "slow",
    (Step("slow", slow, timeout=60), Step("record", record)),
    trigger("toy-slow"),
)


async def stuck(step: StepContext) -> Next:
    await asyncio.sleep(30)
    return Next("record")


STUCK = Workflow(
    "toy-timeout",
    "Toy step that overruns its timeout",
    "stuck",
    (Step("stuck", stuck, retry=Retry(attempts=2, initial=0.05), timeout=0.2), Step("record", record)),
    trigger("toy-timeout"),
)

TOYS = (HAPPY, RETRYING, FAILING, HUMAN, WAITING, SLOW, STUCK)


def install() -> None:
    for toy in TOYS:
        register(toy)


def uninstall() -> None:
    for toy in TOYS:
        definitions.unregister(toy.name)
