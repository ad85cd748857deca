"""`nphies-facade demo`: the embedded server with the journeys, a patient registered with coverage and
consent, eligibility verified, a claim taken through to paid, and each Task's timeline printed."""

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..timeline_report import print_instance, step_of
from .harness import running


async def demo(data_dir: Path, say: Callable[[str], None] = print) -> int:
    async with running(data_dir, http=True) as harness:
        say(
            f"nphies-facade demo: server on {harness.client.base_url}, store {data_dir}, NPHIES sandbox simulator"
        )
        registration = harness.registration()
        await harness.post(registration.resources())
        say(f"\n1. The EMR posts {registration.patient} with a Consent and {registration.coverage}")
        eligibility = await harness.settled("eligibility", registration.patient)
        await print_instance(harness.client, eligibility, say)

        claim = registration.claim()
        await harness.post([claim])
        say(f"\n2. The EMR posts Claim/{claim['id']} (status active, total 250.00 SAR)")
        claims = await harness.settled("claims", f"Claim/{claim['id']}")
        await print_instance(harness.client, claims, say)
        ok = step_of(eligibility) == "verified" and step_of(claims) == "paid"
        say(
            "\nThe patient is verified eligible and the claim is paid."
            if ok
            else "\nThe demo did not end as expected."
        )
        return 0 if ok else 1


def run(data_dir: Path | None = None) -> int:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(demo(data_dir))
    with tempfile.TemporaryDirectory(prefix="nphies-demo-") as folder:
        return asyncio.run(demo(Path(folder) / "data"))
