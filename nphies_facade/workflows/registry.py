"""The registry of DSL workflows, and what registering one sets up.

`register(workflow)` records the definition and, through the subscriptions' workflow channel, a trigger
Subscription per Trigger (installed idempotently at start-up) whose job starts an instance. The first
registration also sets up the job that resumes an instance when a person completes the Task it opened.
The jobs find the engine of their process by the FhirService they run with (`bind`).
"""

import weakref
from typing import TYPE_CHECKING

from ..subscriptions.workflow import JobContext, trigger_subscription
from ..subscriptions.workflow import workflows as jobs
from .dsl import Workflow
from .instances import APPROVED, DECISION, HUMAN_SYSTEM, REJECTED

if TYPE_CHECKING:
    from ..resources.service import FhirService
    from .engine import Engine

HUMAN_JOB = "workflow.person-task"
UPDATE_SUFFIX = ".update"


class Definitions:
    def __init__(self) -> None:
        self._workflows: dict[str, Workflow] = {}
        self._engines: weakref.WeakKeyDictionary[FhirService, Engine] = weakref.WeakKeyDictionary()

    def register(self, workflow: Workflow) -> Workflow:
        """Registers (or replaces) a workflow; returns it, so a module can write `X = register(Workflow(...))`."""
        names = {step.name for step in workflow.steps}
        if workflow.start not in names:
            raise ValueError(
                f"workflow {workflow.name}: start step {workflow.start!r} is not one of its steps"
            )
        if len(names) != len(workflow.steps):
            raise ValueError(f"workflow {workflow.name}: step names must be unique")
        self._workflows[workflow.name] = workflow
        created = [t for t in workflow.triggers if not t.on_update]
        updated = [t for t in workflow.triggers if t.on_update]
        jobs.register(
            workflow.name, self._starter(workflow, on_update=False), _subscriptions(workflow, created)
        )
        if updated:
            name = workflow.name + UPDATE_SUFFIX
            jobs.register(
                name, self._starter(workflow, on_update=True), _subscriptions(workflow, updated, name)
            )
        if jobs.get(HUMAN_JOB) is None:
            jobs.register(HUMAN_JOB, self._person_task_done, [_person_task_subscription()])
        return workflow

    def unregister(self, name: str) -> None:
        """Forgets a workflow (its trigger Subscriptions stay stored, but start nothing here)."""
        self._workflows.pop(name, None)
        jobs.unregister(name)
        jobs.unregister(name + UPDATE_SUFFIX)
        if not self._workflows:
            jobs.unregister(HUMAN_JOB)

    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def all(self) -> list[Workflow]:
        return list(self._workflows.values())

    def bind(self, service: "FhirService", engine: "Engine | None") -> None:
        if engine is None:
            self._engines.pop(service, None)
        else:
            self._engines[service] = engine

    def engine_for(self, service: "FhirService") -> "Engine | None":
        return self._engines.get(service)

    def _starter(self, workflow: Workflow, on_update: bool):
        async def start(job: JobContext) -> None:
            if job.trigger.action == "delete" or (job.trigger.action != "create" and not on_update):
                return
            engine = self.engine_for(job.service)
            if engine is None:
                raise RuntimeError("no workflow engine runs in this process")
            await engine.start_instance(workflow, job.trigger.focus, job.trigger.trace_id)

        return start

    async def _person_task_done(self, job: JobContext) -> None:
        engine = self.engine_for(job.service)
        if engine is None:
            raise RuntimeError("no workflow engine runs in this process")
        await engine.person_task_done(job.trigger.resource_id)


def _subscriptions(workflow: Workflow, triggers: list, name: str | None = None) -> list[dict]:
    name = name or workflow.name
    return [
        trigger_subscription(name, f"workflow:{name}:{index}", trigger.criteria, f"Starts {workflow.title}")
        for index, trigger in enumerate(triggers)
    ]


def _person_task_subscription() -> dict:
    statuses = ",".join([APPROVED, *sorted(REJECTED)])
    return trigger_subscription(
        HUMAN_JOB,
        f"workflow:{HUMAN_JOB}",
        f"Task?code={HUMAN_SYSTEM}|{DECISION}&status={statuses}",
        "Resumes a workflow instance when the person Task it waits for is done",
    )


definitions = Definitions()
"""The process-wide registry; workflow modules register into it when imported."""


def register(workflow: Workflow) -> Workflow:
    return definitions.register(workflow)
