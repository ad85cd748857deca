"""10,000 writes across 50 rest-hook Subscriptions: every expected notification arrives exactly once
(deduplicated by event number), in event-number order per Subscription, and nothing unexpected arrives.

The receiver runs in its own process so the test measures the server, not a shared interpreter lock.
"""

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from nphies_facade.resources.context import RequestContext

from .conftest import rest_hook, subscribe, wait_status
from .processes import ROOT
from .receiver import free_port

pytestmark = pytest.mark.slow

WRITES = 10_000
SUBSCRIPTIONS = 50
CONCURRENCY = 16
SYSTEM = "urn:test:volume"


def observation(i: int) -> tuple[dict, set[int]]:
    """The i-th write and the Subscriptions (by index) it must notify: one, two, or none."""
    if i % 7 == 0:
        codes = []
    elif i % 5 == 0:
        codes = [i % SUBSCRIPTIONS, (i + 1) % SUBSCRIPTIONS]
    else:
        codes = [i % SUBSCRIPTIONS]
    coding = [{"system": SYSTEM, "code": f"c{c}"} for c in codes] or [{"system": SYSTEM, "code": "none"}]
    return {"resourceType": "Observation", "status": "final", "code": {"coding": coding}}, set(codes)


@pytest.fixture
def sub_settings(sub_settings):
    """Reconciling less often than the other tests: at this volume each tick re-reads every backlog."""
    return sub_settings.model_copy(update={"reconcile_interval": 2.0})


def start_receiver(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.subscriptions.receiver_app", str(port)], cwd=ROOT)


@pytest.fixture
async def remote_receiver() -> AsyncIterator[str]:
    port = free_port()
    process = start_receiver(port)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(url + "/_received")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)


async def test_ten_thousand_writes_across_fifty_subscriptions(sub_app, api, remote_receiver):
    criteria = [f"Observation?code={SYSTEM}|c{c}" for c in range(SUBSCRIPTIONS)]
    subs = [
        await subscribe(api, rest_hook(remote_receiver + "/fhir", c, payload=True), active=False)
        for c in criteria
    ]
    for sub in subs:
        await wait_status(api, sub, "active")

    service = sub_app.state.service
    ctx = RequestContext.system("volume-test")
    expected: dict[str, set[str]] = {sub: set() for sub in subs}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def write(i: int) -> None:
        resource, targets = observation(i)
        async with limit:
            written = await service.create(ctx, resource)
        for c in targets:
            expected[subs[c]].add(written.version.id)

    started = time.monotonic()
    await asyncio.gather(*(write(i) for i in range(WRITES)))
    wrote = time.monotonic() - started
    total = sum(len(ids) for ids in expected.values())

    received: list[list] = []
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 180
        while len({(s, n) for s, n, _ in received}) < total and time.monotonic() < deadline:
            received += (await client.get(f"{remote_receiver}/_received?since={len(received)}")).json()
            await asyncio.sleep(0.2)
    elapsed = time.monotonic() - started

    first_arrivals: dict[str, dict[int, str]] = {sub: {} for sub in subs}
    unexpected = []
    for sub, number, path in received:
        if sub not in first_arrivals:
            unexpected.append((sub, number))
            continue
        first_arrivals[sub].setdefault(number, path.rsplit("/", 1)[1])
    assert not unexpected
    for sub in subs:
        arrivals = first_arrivals[sub]
        assert list(arrivals) == list(range(1, len(expected[sub]) + 1)), (
            f"{sub}: numbers out of order or missing"
        )
        assert set(arrivals.values()) == expected[sub], f"{sub}: wrong resources"
    duplicates = len(received) - total
    print(
        f"\n{WRITES} writes in {wrote:.1f} s; {total} notifications in {elapsed:.1f} s; {duplicates} duplicates"
    )
