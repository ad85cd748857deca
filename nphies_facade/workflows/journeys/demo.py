"""`nphies-facade demo`: the embedded server with the journeys, a patient registered with coverage and
consent, eligibility verified, a claim taken through to paid, and each Task's timeline printed."""

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..instances import timeline
from .harness import Harness, event_name, output, running, step_of


async def demo(data_dir: Path, say: Callable[[str], None] = print) -> int:
    async with running(data_dir, http=True) as harness:
        say(
            f"nphies-facade demo: server on {harness.client.base_url}, store {data_dir}, NPHIES sandbox simulator"
        )
        registration = harness.registration()
        await harness.post(registration.resources())
        say(f"\n1. The EMR posts {registration.patient} with a Consent and {registration.coverage}")
        eligibility = await harness.settled("eligibility", registration.patient)
        await _print_instance(harness, eligibility, say)

        claim = registration.claim()
        await harness.post([claim])
        say(f"\n2. The EMR posts Claim/{claim['id']} (status active, total 250.00 SAR)")
        claims = await harness.settled("claims", f"Claim/{claim['id']}")
        await _print_instance(harness, claims, say)
        submission = output(claims, "submission")
        if submission:
            await _print_submit_task(harness, submission["reference"], say)
        ok = step_of(eligibility) == "verified" and step_of(claims) == "paid"
        say(
            "\nThe patient is verified eligible and the claim is paid."
            if ok
            else "\nThe demo did not end as expected."
        )
        return 0 if ok else 1


async def _print_instance(harness: Harness, task: dict, say: Callable[[str], None]) -> None:
    workflow = task["code"]["coding"][0]["display"]
    say(f"   Task/{task['id']} {workflow}: {task['status']}, businessStatus {step_of(task)}")
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
    names = [
        f"{event_name(e)}"
        for e in sorted(await harness.events(subject), key=lambda e: e["meta"]["lastUpdated"])
    ]
    names += [event_name(e) for e in await harness.events(f"Task/{task['id']}")]
    say(f"     events: {', '.join(names)}")


async def _print_submit_task(harness: Harness, reference: str, say: Callable[[str], None]) -> None:
    history = (await harness.client.get(f"/{reference}/_history", params={"_count": "50"})).json()
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


def run(data_dir: Path | None = None) -> int:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(demo(data_dir))
    with tempfile.TemporaryDirectory(prefix="nphies-demo-") as folder:
        return asyncio.run(demo(Path(folder) / "data"))
