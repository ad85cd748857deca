"""A server killed while the eligibility journey waits for the payer: after a restart on the same store,
the journey completes, once."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from nphies_facade.workflows.journeys import synthetic
from nphies_facade.workflows.journeys.harness import free_port, step_of

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "NPHIES_FACADE_AUTH": "off",
        "NPHIES_FACADE_RATE_LIMIT": "0",
        "NPHIES_FACADE_LOG_LEVEL": "warning",
        "NPHIES_FACADE_WORKFLOW_MODULES": "nphies_facade.workflows.journeys.registered",
        "NPHIES_FACADE_WORKFLOW_SWEEP_INTERVAL": "0.5",
        "NPHIES_FACADE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--data-dir", str(data_dir)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def instance(client: httpx.Client, subject: str) -> dict | None:
    found = client.get(
        "/Task", params={"code": "urn:nphies-facade:workflow|eligibility", "focus": subject}
    ).json()
    tasks = [
        e["resource"] for e in found.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]
    assert len(tasks) <= 1
    return tasks[0] if tasks else None


def wait_for(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_journey_interrupted_mid_step_completes_once_after_a_restart(tmp_path: Path):
    data_dir, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    parties = synthetic.Parties()
    registration = synthetic.Registration(parties, datetime.now(UTC).date())
    process = serve(data_dir, port)
    try:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
            slow = [{"kind": "latency", "delay": 20, "events": ["eligibility-request"]}]
            assert client.put("/_simulator/nphies/__simulator/faults", json=slow).status_code == 200
            posted = client.post(
                "/", json=synthetic.transaction(parties.resources() + registration.resources())
            )
            assert posted.status_code == 200, posted.text
            task = wait_for(
                lambda: (t := instance(client, registration.patient)) and step_of(t) == "eligibility" and t
            )
            time.sleep(0.5)  # the step is waiting for the payer's (delayed) answer
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    except BaseException:
        process.kill()
        raise
    process = serve(data_dir, port)  # a new process: its simulator answers at once
    try:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
            done = wait_for(
                lambda: (t := instance(client, registration.patient)) and t["status"] == "completed" and t
            )
            assert done["id"] == task["id"] and step_of(done) == "verified"
            events = client.get("/Basic", params={"subject": registration.patient}).json()
            names = [c["code"] for e in events.get("entry", []) for c in e["resource"]["code"]["coding"]]
            assert names.count("eligibility.verified") == 1
            completed = client.get("/Basic", params={"subject": f"Task/{task['id']}"}).json()
            ended = [c["code"] for e in completed.get("entry", []) for c in e["resource"]["code"]["coding"]]
            assert ended.count("workflow.completed") == 1
    finally:
        process.terminate()
        process.wait(timeout=15)
