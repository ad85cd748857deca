"""What a step gets: its instance Task, the store to read, the clock, and a way to emit workflow events."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..resources.clock import Clock
from ..resources.context import RequestContext
from ..resources.service import FhirService, resource_json
from .dsl import Workflow


@dataclass(slots=True)
class StepContext:
    workflow: Workflow
    step: str
    attempt: int
    task: dict
    service: FhirService
    ctx: RequestContext
    clock: Clock
    settings: Any = None
    operations: Any = None
    events: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return ((self.task.get("focus") or {}).get("reference")) or ""

    def now(self) -> datetime:
        return self.clock()

    def input(self, name: str, default: Any = None) -> Any:
        return _value(self.task.get("input"), name, default)

    def output(self, name: str, default: Any = None) -> Any:
        return _value(self.task.get("output"), name, default)

    async def read(self, reference: str) -> dict | None:
        """The current version of `Type/id`, or None when it is missing or deleted."""
        resource_type, _, resource_id = reference.partition("/")
        stored = await self.service.store.read(resource_type, resource_id)
        return None if stored is None or stored.deleted else resource_json(stored)

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> list[dict]:
        """The first page (up to `_count`, default 50) of a search, as the workflow's system actor."""
        result = await self.service.search((resource_type,), params, ctx=self.ctx)
        return [resource_json(version) for version in result.matches]

    def emit(self, event: str, data: dict | None = None, *, focus: str | None = None) -> None:
        """Queue a workflow event; the engine emits it in the same transaction that advances the Task.
        The event is about `focus` (`Claim/1`; also accepted as data["focus"]), by default the subject."""
        payload = dict(data or {})
        if focus:
            payload["focus"] = focus
        self.events.append((event, payload))


def _value(entries: list | None, name: str, default: Any) -> Any:
    for entry in entries or []:
        if (entry.get("type") or {}).get("text") == name:
            for key, value in entry.items():
                if key.startswith("value"):
                    return value
    return default
