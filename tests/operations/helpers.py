"""Small helpers of the operations tests: reading Tasks, their outputs, the simulator's control API."""

import asyncio
import base64
import time

import httpx

from nphies_facade.operations.codes import OUTPUT_TYPES, STEP_CODES

SIMULATOR = "/_simulator/nphies"
TERMINAL = {"completed", "failed", "cancelled"}


def task_path(response: httpx.Response) -> str:
    location = response.headers["content-location"]
    return "/Task/" + location.rstrip("/").split("/Task/")[1].split("/")[0]


async def wait_for_task(client: httpx.AsyncClient, path: str, seconds: float = 15.0) -> dict:
    """The Task once it has ended (completed, failed or cancelled), or as it is after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        task = (await client.get(path)).json()
        if task["status"] in TERMINAL or time.monotonic() > deadline:
            return task
        await asyncio.sleep(0.05)


def outputs(task: dict, kind: str) -> list[dict]:
    return [
        o["valueReference"]
        for o in task.get("output") or []
        if {"system": OUTPUT_TYPES, "code": kind} in o["type"]["coding"]
    ]


def step(task: dict) -> str:
    return next(c["code"] for c in task["businessStatus"]["coding"] if c["system"] == STEP_CODES)


async def read(client: httpx.AsyncClient, reference: str) -> dict:
    response = await client.get(f"/{reference}")
    assert response.status_code == 200, response.text
    return response.json()


async def exchanges(client: httpx.AsyncClient, task: dict) -> list[tuple[str, str]]:
    """(event, outcome) of each exchange recorded for a Task, in order."""
    found = []
    for reference in outputs(task, "exchange"):
        record = await read(client, reference["reference"])
        found.append((record["type"]["coding"][0]["code"], record["category"][0]["coding"][0]["code"]))
    return found


def attachment(record: dict, title: str) -> bytes:
    return base64.b64decode(
        next(c["attachment"]["data"] for c in record["content"] if c["attachment"]["title"] == title)
    )


def error_codes(resource: dict) -> list[str]:
    """NPHIES error codes of an OperationOutcome, ClaimResponse or CoverageEligibilityResponse."""
    if resource["resourceType"] == "OperationOutcome":
        return [c["code"] for i in resource["issue"] for c in (i.get("details") or {}).get("coding", [])]
    return [c["code"] for e in resource.get("error") or [] for c in e["code"]["coding"]]


def contained_errors(task: dict) -> dict:
    return next(r for r in task.get("contained") or [] if r["resourceType"] == "OperationOutcome")


async def set_faults(client: httpx.AsyncClient, *rules: dict) -> None:
    response = await client.put(f"{SIMULATOR}/__simulator/faults", json=list(rules))
    assert response.status_code == 200, response.text


async def handled(client: httpx.AsyncClient) -> dict[str, int]:
    return (await client.get(f"{SIMULATOR}/__simulator/state")).json()["handled"]
