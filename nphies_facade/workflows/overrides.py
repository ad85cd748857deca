"""Manual override of a failed instance: `$retry` runs the failed step again, `$skip` moves past it.

Both write the instance Task with If-Match on the version read, record who did it and why in Task.note,
and hand the instance back to the engine. The instance counts as started again
(`nphies_workflow_started`), as its failure counted as an end, so started minus ended stays the number
of instances at work; a `$skip` past the last step ends it at once, counted as a completed end.
"""

from ..nphies.fhirjson import copy_json
from ..operations.parameters import read_parameters, single
from ..resources.context import RequestContext
from ..resources.errors import bad_request, conflict
from ..resources.service import resource_json
from ..resources.store import StoredVersion
from . import metrics
from .dsl import Workflow
from .engine import Change, Engine
from .human import read_reason
from .instances import add_note, enter, finish, is_instance, log_step, reopen, schedule, state_of


async def _failed_instance(engine: Engine, ctx: RequestContext, task_id: str, operation: str):
    stored = await engine.service.read("Task", task_id, ctx=ctx)
    task = resource_json(stored)
    if not is_instance(task):
        raise conflict(f"{operation} works on workflow instance Tasks; Task/{task_id} is not one")
    if task.get("status") != "failed":
        raise conflict(f"{operation} works on a failed instance; Task/{task_id} is {task.get('status')}")
    state = state_of(task)
    workflow = engine.registry.get(state.workflow)
    if workflow is None:
        raise conflict(f"Task/{task_id} is an instance of {state.workflow}, which this server does not run")
    return stored, task, state, workflow


async def _write(engine: Engine, ctx: RequestContext, stored: StoredVersion, change: Change) -> StoredVersion:
    written = await engine.commit(stored, change, ctx)
    if written is None:
        raise conflict(f"Task/{stored.id} changed meanwhile; read it and try again")
    return written


async def retry(engine: Engine, ctx: RequestContext, task_id: str, body: object | None) -> StoredVersion:
    reason = read_reason(body, "$retry")
    stored, task, state, workflow = await _failed_instance(engine, ctx, task_id, "$retry")
    now = engine.now()
    new = schedule(reopen(copy_json(task), now), now, now, 0)
    new["businessStatus"]["text"] = state.step
    add_note(new, f"$retry of step {state.step}" + (f": {reason}" if reason else ""), ctx.actor, now)
    started = metrics.WORKFLOW_STARTED.labels(workflow.name).inc
    return await _write(engine, ctx, stored, Change(new, [], [], counted=[started]))


async def skip(engine: Engine, ctx: RequestContext, task_id: str, body: object | None) -> StoredVersion:
    reason = read_reason(body, "$skip", required=True, names={"reason", "step"})
    target = single(read_parameters(body), "step")
    stored, task, state, workflow = await _failed_instance(engine, ctx, task_id, "$skip")
    if target is not None and (not isinstance(target, str) or not _has_step(workflow, target)):
        steps = ", ".join(s.name for s in workflow.steps)
        raise bad_request(
            f"step is one of the steps of {workflow.name} ({steps}), not {target!r}",
            "Parameters.parameter[step]",
        )
    now = engine.now()
    new = reopen(copy_json(task), now)
    log_step(new, state, now, "skipped", state.attempt)
    add_note(
        new,
        f"$skip of step {state.step}" + (f" to {target}" if target else "") + f": {reason}",
        ctx.actor,
        now,
    )
    events, via = [], ()
    counted = [metrics.WORKFLOW_STARTED.labels(workflow.name).inc]
    if target:
        step = workflow.step(target)
        enter(new, target, now, now, now + step.sla if step.sla is not None else None)
    else:
        finish(new, "completed", now)
        via = ("in-progress",)
        counted.append(metrics.WORKFLOW_ENDED.labels(workflow.name, "completed").inc)
        events.append(
            (
                "workflow.completed",
                f"Task/{task_id}",
                {"workflow": workflow.name, "step": state.step, "outcome": "completed", "reason": "skipped"},
            )
        )
    return await _write(engine, ctx, stored, Change(new, [], events, via, counted))


def _has_step(workflow: Workflow, name: str) -> bool:
    return any(step.name == name for step in workflow.steps)
