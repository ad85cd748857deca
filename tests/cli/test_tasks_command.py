"""`nphies-facade tasks show|list` against a real `serve` process running the journeys: an instance's
timeline over HTTP, printed by the same printer as `demo`, with a token minted from the data dir or
given; filters by workflow and status; a missing Task is named with the server's answer."""

import asyncio
import time
from datetime import date

import httpx
import pytest

from nphies_facade.workflows.journeys import synthetic
from nphies_facade.workflows.timeline_report import print_instance

from .server_process import run_cli, serve

JOURNEYS = "nphies_facade.workflows.journeys.registered"


def _instance(server, token: str, subject: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        found = httpx.get(
            f"{server.url}/Task",
            params={"focus": subject},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        tasks = [e["resource"] for e in found.get("entry", []) if e["resource"]["resourceType"] == "Task"]
        if tasks and tasks[0]["status"] in ("completed", "failed"):
            return tasks[0]
        assert time.monotonic() < deadline, f"the journey of {subject} did not end"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def journeys(tmp_path_factory):
    env = {"NPHIES_FACADE_AUTH": "on", "NPHIES_FACADE_WORKFLOW_MODULES": JOURNEYS}
    with serve(tmp_path_factory.mktemp("tasks-server"), **env) as live:
        added = run_cli(
            "clients", "add", "--id", "ops", "--jwks-url", f"{live.url}/auth/jwks",
            "--scope", "system/*.*", "--data-dir", str(live.data_dir),
        )  # fmt: skip
        assert added.code == 0, added.err
        minted = run_cli(
            "token", "--client", "ops", "--scope", "system/*.cruds",
            "--port", str(live.port), "--data-dir", str(live.data_dir),
        )  # fmt: skip
        token = minted.out.strip()
        parties = synthetic.Parties()
        verified = synthetic.Registration(parties, date.today())
        refused = synthetic.Registration(parties, date.today(), consent=False)
        bundle = synthetic.transaction(parties.resources() + verified.resources() + refused.resources())
        posted = httpx.post(
            f"{live.url}/", json=bundle, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert posted.status_code == 200, posted.text
        yield live, token, _instance(live, token, verified.patient), _instance(live, token, refused.patient)


async def _as_demo_prints(server, token: str, task: dict) -> str:
    lines: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        await print_instance(client, task, lines.append)
    return "".join(f"{line}\n" for line in lines)


def test_show_prints_the_timeline_as_demo_does_with_a_token_minted_from_the_data_dir(journeys):
    server, token, verified, _ = journeys
    shown = run_cli(
        "tasks", "show", verified["id"], "--port", str(server.port),
        "--client", "ops", "--data-dir", str(server.data_dir),
    )  # fmt: skip
    assert shown.code == 0, shown.err
    assert f"server http://127.0.0.1:{server.port}" in shown.err
    assert shown.out.startswith(
        f"   Task/{verified['id']} Patient registration and eligibility: completed, businessStatus verified\n"
    )
    assert " eligibility  next (1 attempt)" in shown.out
    assert "events: patient.registered, eligibility.verified, workflow.completed" in shown.out
    assert shown.out == asyncio.run(_as_demo_prints(server, token, verified))


def test_list_filters_by_workflow_and_status(journeys):
    server, token, verified, refused = journeys
    listed = run_cli(
        "tasks", "list", "--workflow", "eligibility", "--status", "failed",
        "--base-url", server.url, "--token", token,
    )  # fmt: skip
    assert listed.code == 0, listed.err
    assert f"Task/{refused['id']} " in listed.out and "status reason: consent-missing" in listed.out
    assert verified["id"] not in listed.out
    everything = run_cli(
        "tasks", "list", "--workflow", "eligibility", "--base-url", server.url, "--token", token
    )
    assert verified["id"] in everything.out and refused["id"] in everything.out
    assert "2 instance(s)" in everything.err


def test_a_missing_task_or_a_refused_token_is_named(journeys):
    server, token, _, _ = journeys
    missing = run_cli("tasks", "show", "no-such-task", "--base-url", server.url, "--token", token)
    assert missing.code == 1 and "GET /Task/no-such-task answered 404" in missing.err
    unauthorised = run_cli("tasks", "show", "no-such-task", "--base-url", server.url)
    assert unauthorised.code == 1 and "answered 401" in unauthorised.err


def test_reindex_starts_a_job_and_prints_its_progress_until_it_ends(journeys, monkeypatch):
    from nphies_facade.server import remote_cli

    monkeypatch.setattr(remote_cli, "PROGRESS_SECONDS", 0.1)
    server = journeys[0]
    added = run_cli(
        "clients", "add", "--id", "admin", "--jwks-url", f"{server.url}/auth/jwks", "--scope", "system/*.*",
        "--role", "admin", "--data-dir", str(server.data_dir),
    )  # fmt: skip
    assert added.code == 0, added.err
    ran = run_cli(
        "reindex", "--type", "Patient", "--type", "Coverage", "--port", str(server.port),
        "--client", "admin", "--data-dir", str(server.data_dir),
    )  # fmt: skip
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0].startswith("reindex job ") and lines[0].endswith(" of 2 type(s) started")
    assert any(line.startswith("  ... ") and " resources, " in line for line in lines)
    assert lines[-1].endswith("completed: 4 resources reindexed")  # two patients, two coverages
    refused = run_cli("reindex", "--port", str(server.port), "--token", journeys[1])  # no admin role
    assert refused.code == 1 and "POST /$reindex answered 403" in refused.err
