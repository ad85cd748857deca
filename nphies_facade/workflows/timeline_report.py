"""An instance's timeline as text, read over the FHIR API of a running server: its status and step,
each step it left (when, outcome, attempts, SLA), its outputs, the events about it, and the own
timeline of the $submit Task it handed a claim to. `nphies-facade demo` and `nphies-facade tasks`
print it this way."""

from collections.abc import Callable
from typing import Any

import httpx

from ..subscriptions.topics import EVENT_SYSTEM
from .dsl import STEP_SYSTEM
from .instances import timeline

Say = Callable[[str], None]


def step_of(task: dict) -> str:
    return next((c["code"] for c in task["businessStatus"]["coding"] if c["system"] == STEP_SYSTEM), "")


def output(task: dict, name: str) -> Any:
    for entry in task.get("output") or []:
        if (entry.get("type") or {}).get("text") == name:
            return next((v for k, v in entry.items() if k.startswith("value")), None)
    return None


def event_name(record: dict) -> str:
    return next((c["code"] for c in record["code"]["coding"] if c["system"] == EVENT_SYSTEM), "")


async def events_about(client: httpx.AsyncClient, subject: str) -> list[dict]:
    """The workflow event records (Basic) about `subject`."""
    found = await client.get("/Basic", params={"subject": subject, "_count": "100"})
    found.raise_for_status()
    return [
        e["resource"]
        for e in found.json().get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    ]


async def print_instance(client: httpx.AsyncClient, task: dict, say: Say) -> None:
    workflow = task["code"]["coding"][0].get("display") or task["code"]["coding"][0].get("code")
    say(f"   Task/{task['id']} {workflow}: {task['status']}, businessStatus {step_of(task)}")
    reason = (task.get("statusReason") or {}).get("text")
    if reason:
        say(f"     status reason: {reason}")
    for record in timeline(task):
        sla = f", SLA {record.sla}" if record.sla else ""
        say(
            f"     {_time(record.entered)} -> {_time(record.left)}  {record.step:<12} {record.outcome}"
            f" ({record.attempts} attempt{'s' if record.attempts != 1 else ''}{sla})"
        )
    for entry in task.get("output") or []:
        value = next((v for k, v in entry.items() if k.startswith("value")), None)
        shown = value.get("reference") if isinstance(value, dict) else value
        say(f"     output {entry['type']['text']}: {shown}")
    subject = task["focus"]["reference"]
    about_subject = sorted(await events_about(client, subject), key=lambda e: e["meta"]["lastUpdated"])
    names = [event_name(e) for e in about_subject]
    names += [event_name(e) for e in await events_about(client, f"Task/{task['id']}")]
    say(f"     events: {', '.join(names)}")
    submission = output(task, "submission")
    if isinstance(submission, dict) and submission.get("reference"):
        await print_submit_task(client, submission["reference"], say)


async def print_submit_task(client: httpx.AsyncClient, reference: str, say: Say) -> None:
    history = (await client.get(f"/{reference}/_history", params={"_count": "50"})).json()
    versions = sorted(
        (e["resource"] for e in history.get("entry", []) if "resource" in e),
        key=lambda t: int(t["meta"]["versionId"]),
    )
    say(f"   {reference} ($submit, its own timeline):")
    for version in versions:
        status = (version.get("businessStatus") or {}).get("text") or ""
        say(
            f"     v{version['meta']['versionId']} {version['meta']['lastUpdated'][11:23]} {version['status']:<12} {status}"
        )


def _time(moment: str) -> str:
    """Time of day to the millisecond (UTC)."""
    return moment[11:23] if len(moment) >= 23 else moment
