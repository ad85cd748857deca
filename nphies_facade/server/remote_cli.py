"""Commands on a running server, over its FHIR API: `nphies-facade tasks show ID` and `tasks list
[--workflow W] [--status S]` print workflow instances as `demo` prints them
(workflows/timeline_report.py); `nphies-facade reindex [--type T]` starts a `$reindex` job and prints its
progress until it ends.

The server is `--base-url` (or --host/--port, or NPHIES_FACADE_BASE_URL, as for `serve`); the token is
`--token`, or minted for `--client` with the server key of `--data-dir`, or none (a server with
authentication off)."""

import argparse
import asyncio
import sys
import time

import httpx

from ..resources.sqlite.store import SqliteStore
from ..workflows.dsl import WORKFLOW_SYSTEM
from ..workflows.instances import is_instance
from ..workflows.timeline_report import print_instance
from .auth.cli import TokenRefused, mint_token
from .cli_target import NoStore, add_data_dir, add_server_options, existing_store, say, settings_from
from .settings import Settings

READ_SCOPE = "system/Task.rs system/Basic.rs"
ADMIN_SCOPE = "system/*.*"
PROGRESS_SECONDS = 2.0


class Failed(Exception):
    """The command cannot do what was asked; the message says why."""


def add_commands(commands: argparse._SubParsersAction) -> None:
    tasks = commands.add_parser("tasks", help="workflow instances of a running server and their timelines")
    actions = tasks.add_subparsers(dest="tasks_command", required=True)
    show = actions.add_parser("show", help="print one instance's timeline")
    show.add_argument("id", help="the instance's Task id (or Task/ID)")
    _server_and_token(show)
    show.set_defaults(run=_show)
    listing = actions.add_parser("list", help="print the timelines of the instances that match")
    listing.add_argument("--workflow", help="only instances of this workflow (eligibility, claims ...)")
    listing.add_argument("--status", help="only Tasks with this status (in-progress, failed, on-hold ...)")
    listing.add_argument("--count", type=int, default=20, help="at most this many, newest first (default 20)")
    _server_and_token(listing)
    listing.set_defaults(run=_list)
    reindex = commands.add_parser(
        "reindex", help="reindex a running server's resources ($reindex) and print the progress"
    )
    reindex.add_argument("--type", action="append", help="only this resource type (repeatable; default all)")
    _server_and_token(reindex, ADMIN_SCOPE)
    reindex.set_defaults(run=_reindex)


def _server_and_token(parser: argparse.ArgumentParser, scope: str = READ_SCOPE) -> None:
    add_server_options(parser)
    parser.add_argument("--token", help="a bearer token for the server")
    parser.add_argument("--client", help="mint a token for this registered client with the server's key")
    parser.add_argument("--scope", default=scope, help=f"scopes of a minted token (default {scope!r})")
    add_data_dir(parser)


def _show(args: argparse.Namespace) -> int:
    task_id = args.id.removeprefix("Task/")
    return _run(args, lambda client: _show_one(client, task_id))


def _list(args: argparse.Namespace) -> int:
    params = {"_sort": "-_lastUpdated", "_count": str(max(1, args.count))}
    params["code"] = f"{WORKFLOW_SYSTEM}|{args.workflow}" if args.workflow else f"{WORKFLOW_SYSTEM}|"
    if args.status:
        params["status"] = args.status
    return _run(args, lambda client: _show_matches(client, params))


def _reindex(args: argparse.Namespace) -> int:
    return _run(args, lambda client: _follow_reindex(client, args.type or []))


def _run(args: argparse.Namespace, work) -> int:
    settings = settings_from(args)
    base = settings.public_base_url
    try:
        headers = {"Accept": "application/fhir+json"}
        token = args.token or (_minted(settings, args.client, args.scope) if args.client else None)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        say(f"server {base}")

        async def session() -> int:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
                return await work(client)

        return asyncio.run(session())
    except (Failed, NoStore, TokenRefused) as exc:
        print(f"nphies-facade tasks: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"nphies-facade tasks: cannot reach the server at {base}: {exc}", file=sys.stderr)
        return 1


def _minted(settings: Settings, client_id: str, scope: str) -> str:
    path = existing_store(settings)

    async def mint() -> str:
        store = SqliteStore(path)
        await store.open()
        try:
            return await mint_token(store, settings, client_id, scope)
        finally:
            await store.close()

    return asyncio.run(mint())


async def _get(client: httpx.AsyncClient, path: str, params: dict | None = None) -> dict:
    answer = await client.get(path, params=params)
    if answer.status_code != 200:
        raise Failed(f"GET {path} answered {answer.status_code}: {_diagnostics(answer)}")
    return answer.json()


def _diagnostics(answer: httpx.Response) -> str:
    try:
        issues = answer.json().get("issue") or []
    except ValueError:
        return answer.text[:200]
    return "; ".join(i.get("diagnostics", i.get("code", "")) for i in issues) or answer.reason_phrase


async def _show_one(client: httpx.AsyncClient, task_id: str) -> int:
    task = await _get(client, f"/Task/{task_id}")
    if not is_instance(task):
        raise Failed(f"Task/{task_id} is not a workflow instance")
    await print_instance(client, task, print)
    return 0


async def _show_matches(client: httpx.AsyncClient, params: dict) -> int:
    page = await _get(client, "/Task", params)
    tasks = [
        e["resource"]
        for e in page.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match" and is_instance(e["resource"])
    ]
    say(f"{len(tasks)} instance(s)")
    for task in tasks:
        await print_instance(client, task, print)
    return 0


def _job(parameters: dict) -> dict:
    """The parts of the first job of a $reindex answer, by name (types as a list)."""
    parts = (parameters.get("parameter") or [{}])[0].get("part") or []
    job: dict = {"type": []}
    for part in parts:
        value = next((v for k, v in part.items() if k.startswith("value")), None)
        if part["name"] == "type":
            job["type"].append(value)
        else:
            job[part["name"]] = value
    return job


async def _follow_reindex(client: httpx.AsyncClient, types: list[str]) -> int:
    answer = await client.post("/$reindex", params=[("type", t) for t in types])
    if answer.status_code != 200:
        raise Failed(f"POST /$reindex answered {answer.status_code}: {_diagnostics(answer)}")
    job = _job(answer.json())
    started = time.monotonic()
    print(f"reindex job {job['id']} of {len(job['type'])} type(s) started")
    while job["status"] in ("queued", "running"):
        await asyncio.sleep(PROGRESS_SECONDS)
        jobs = (await _get(client, "/$reindex")).get("parameter") or []
        found = [_job({"parameter": [j]}) for j in jobs]
        job = next((j for j in found if j.get("id") == job["id"]), job | {"status": "unknown"})
        seconds = time.monotonic() - started
        rate = job.get("processed", 0) / seconds if seconds else 0.0
        print(
            f"  ... {job['status']}: {job.get('processed', 0)} resources, {rate:.0f}/s, "
            f"now {job.get('currentType') or '-'}, {seconds:.0f} s",
            flush=True,
        )
    print(f"reindex job {job['id']} {job['status']}: {job.get('processed', 0)} resources reindexed")
    if job.get("error"):
        print(f"  error: {job['error']}")
    return 0 if job["status"] == "completed" else 1
