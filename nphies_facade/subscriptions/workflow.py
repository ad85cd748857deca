"""The workflow channel: workflow job handlers registered by name, and their trigger Subscriptions.

A Subscription with `channel.type = message` and endpoint `urn:nphies-facade:workflow:{name}` turns each
matching change into a job for the workflow registered under that name. Workflows install their trigger
Subscriptions at start-up with `install_subscriptions`; each carries a key tag so installing is
idempotent (a conditional create on `_tag`), and the Subscriptions are visible through the API.
"""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .. import exact_json
from ..resources.context import RequestContext
from ..resources.service import FhirService, WriteResult
from .criteria import WORKFLOW_NAME, WORKFLOW_PREFIX
from .status import SYSTEM_ACTOR

KEY_SYSTEM = "urn:nphies-facade:subscription-key"
MANAGED_FIELDS = ("criteria", "channel", "end", "reason")


@dataclass(frozen=True, slots=True)
class Trigger:
    """The change that started a job: the `number`th event of `subscription_id`."""

    job_id: str
    workflow: str
    subscription_id: str
    number: int
    seq: int
    resource_type: str
    resource_id: str
    version: int
    action: str
    at: str
    trace_id: str
    attempt: int

    @property
    def focus(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version}"


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler gets: the trigger, FhirService to read and write with, and a request context
    (a system actor named for the workflow, carrying the trigger's trace id)."""

    trigger: Trigger
    service: FhirService
    ctx: RequestContext


JobHandler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    handler: JobHandler
    subscriptions: tuple[dict, ...] = ()


@dataclass
class WorkflowRegistry:
    """Handlers must be idempotent: a job may run again after a crash (its id stays the same)."""

    _workflows: dict[str, Workflow] = field(default_factory=dict)

    def register(self, name: str, handler: JobHandler, subscriptions: Sequence[dict] = ()) -> None:
        if not WORKFLOW_NAME.fullmatch(name):
            raise ValueError(f"workflow name {name!r} must match {WORKFLOW_NAME.pattern}")
        self._workflows[name] = Workflow(name, handler, tuple(subscriptions))

    def workflow(self, name: str, subscriptions: Sequence[dict] = ()) -> Callable[[JobHandler], JobHandler]:
        """Decorator form of register()."""

        def decorate(handler: JobHandler) -> JobHandler:
            self.register(name, handler, subscriptions)
            return handler

        return decorate

    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def all(self) -> list[Workflow]:
        return list(self._workflows.values())

    def unregister(self, name: str) -> None:
        self._workflows.pop(name, None)


workflows = WorkflowRegistry()
"""The process-wide registry; workflow modules register into it when imported."""


def workflow_endpoint(name: str) -> str:
    return f"{WORKFLOW_PREFIX}{name}"


def trigger_subscription(workflow: str, key: str, criteria: str, reason: str) -> dict:
    """A trigger Subscription for `install_subscriptions`: `key` identifies it across restarts."""
    return {
        "resourceType": "Subscription",
        "meta": {"tag": [{"system": KEY_SYSTEM, "code": key}]},
        "status": "requested",
        "reason": reason,
        "criteria": criteria,
        "channel": {"type": "message", "endpoint": workflow_endpoint(workflow)},
    }


def _key(subscription: dict) -> str:
    for tag in (subscription.get("meta") or {}).get("tag") or []:
        if tag.get("system") == KEY_SYSTEM and tag.get("code"):
            return tag["code"]
    raise ValueError(f"an installed Subscription needs a meta.tag with system {KEY_SYSTEM}")


async def install_subscriptions(
    service: FhirService, subscriptions: Iterable[dict], ctx: RequestContext | None = None
) -> list[WriteResult]:
    """Creates each Subscription unless one with its key tag exists; an existing one whose criteria,
    channel, end or reason differ is updated (and requested again). Safe to call at every start-up."""
    ctx = ctx or RequestContext.system(SYSTEM_ACTOR)
    results = []
    for subscription in subscriptions:
        wanted = dict(subscription)
        criteria = f"_tag={KEY_SYSTEM}|{_key(wanted)}"
        result = await service.create(ctx, dict(wanted), if_none_exist=criteria)
        if not result.created and result.version is not None:
            current = exact_json.loads(result.version.body)
            if any(current.get(name) != wanted.get(name) for name in MANAGED_FIELDS):
                result = await _update(service, ctx, wanted, current)
        results.append(result)
    return results


async def _update(service: FhirService, ctx: RequestContext, wanted: dict, current: dict) -> WriteResult:
    updated = {**current, **{name: wanted[name] for name in MANAGED_FIELDS if name in wanted}}
    for name in MANAGED_FIELDS:
        if name not in wanted:
            updated.pop(name, None)
    updated["status"] = "requested"
    updated.pop("error", None)
    return await service.update(ctx, "Subscription", current["id"], updated)
