"""Keyset paging stays exact while data changes: walking the next links while other requests insert
matching resources sees every resource that matched before the walk exactly once."""

import asyncio
import random

import pytest

from .search_support import SYSTEM, close_service, open_service

BASE = "http://fhir.test"


def _task(owner: str, authored: str, status: str = "requested") -> dict:
    return {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "owner": {"reference": owner},
        "authoredOn": authored,
    }


def _day(rng: random.Random) -> str:
    return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


@pytest.fixture
async def service(tmp_path):
    service = await open_service(tmp_path)
    yield service
    await close_service(service)


@pytest.mark.parametrize(
    "sort", ["", "-_lastUpdated", "authored-on", "-authored-on,_id", "status,-authored-on"]
)
async def test_walking_pages_while_inserting_sees_every_earlier_match_once(service, sort):
    rng = random.Random(sort)
    async with service.transaction() as tx:
        before = [
            (
                await service.create(
                    SYSTEM, _task("Organization/a", _day(rng), rng.choice(["requested", "ready"])), tx=tx
                )
            ).version.id
            for _ in range(40)
        ]
    params = [("owner", "Organization/a"), ("_count", "6")] + ([("_sort", sort)] if sort else [])
    seen: list[str] = []
    cursor = None
    while True:
        page_params = params + ([("_cursor", cursor)] if cursor else [])
        result, _ = await asyncio.gather(
            service.search(("Task",), page_params, ctx=SYSTEM),
            asyncio.gather(*(service.create(SYSTEM, _task("Organization/a", _day(rng))) for _ in range(3))),
        )
        seen += [v.id for v in result.matches]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)


async def test_http_next_links_stay_valid_while_data_changes(client):
    owner = await client.put(
        "/Organization/b", json={"resourceType": "Organization", "id": "b", "name": "Owner"}
    )
    assert owner.status_code == 201, owner.text  # the Tasks' owner must exist
    before = []
    for i in range(12):
        response = await client.post("/Task", json=_task("Organization/b", f"2024-01-{i + 1:02d}"))
        before.append(response.json()["id"])
    page = (await client.get("/Task?owner=Organization/b&_sort=-_lastUpdated&_count=5")).json()
    seen = [e["resource"]["id"] for e in page["entry"]]
    while nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        await client.post("/Task", json=_task("Organization/b", "2024-02-01"))
        page = (await client.get(nxt.removeprefix(BASE))).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert seen == list(reversed(before))
