"""examples/ holds what an EMR posts: each Bundle passes the journeys' validation and ends where the README
says (registration -> eligibility verified, claim -> paid, prior authorisation -> approved)."""

import asyncio
import json
import time
from pathlib import Path

from nphies_facade.workflows.journeys.harness import running, step_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUBMIT = "urn:nphies-facade:operation|submit"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


async def _task(client, code: str, focus: str, seconds: float = 60.0) -> dict:
    """The Task of `code` for `focus` once it has ended."""
    deadline = time.monotonic() + seconds
    while True:
        found = (await client.get("/Task", params={"code": code, "focus": focus})).json()
        tasks = [e["resource"] for e in found.get("entry", [])]
        if tasks and tasks[0]["status"] in ("completed", "failed", "cancelled"):
            return tasks[0]
        assert time.monotonic() < deadline, f"no ended {code} Task for {focus}: {tasks}"
        await asyncio.sleep(0.1)


async def test_the_examples_pass_the_journeys_and_end_as_documented(tmp_path):
    async with running(tmp_path, http=False) as harness:
        client = harness.client
        for name in ("registration", "claim", "prior-authorization"):
            posted = await client.post("/", json=example(name))
            assert posted.status_code == 200, posted.text
            statuses = [e["response"]["status"] for e in posted.json()["entry"]]
            assert all(s.startswith("20") for s in statuses), (name, statuses)

        eligibility = await harness.settled("eligibility", "Patient/patient-example")
        assert (eligibility["status"], step_of(eligibility)) == ("completed", "verified")
        claims = await harness.settled("claims", "Claim/claim-example")
        assert (claims["status"], step_of(claims)) == ("completed", "paid")

        submitted = await client.post("/Claim/preauth-example/$submit")
        assert submitted.status_code == 202, submitted.text
        task = await _task(client, SUBMIT, "Claim/preauth-example")
        assert task["status"] == "completed" and task["businessStatus"]["text"].endswith("approved")
        assert (await harness.instance("claims", "Claim/preauth-example")) is None
