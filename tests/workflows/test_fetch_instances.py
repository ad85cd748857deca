"""fetch_instances (used by `nphies-facade simulate` and the journeys bench) follows every `next` link once:
httpx drops a link's own query when given empty params, which once turned paging into an endless loop."""

import asyncio

from nphies_facade.workflows.instances import fetch_instances


def instance(workflow: str) -> dict:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "urn:nphies-facade:workflow", "code": workflow}]},
    }


async def test_every_page_of_instances_is_read_once(client) -> None:
    entries = [
        {"resource": instance("paged"), "request": {"method": "POST", "url": "Task"}} for _ in range(25)
    ]
    entries += [
        {"resource": instance("other"), "request": {"method": "POST", "url": "Task"}} for _ in range(5)
    ]
    response = await client.post("/", json={"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert response.status_code == 200

    async with asyncio.timeout(20):  # an endless paging loop fails here instead of eating the memory
        found = await fetch_instances(client, "paged", page_size=10)

    assert len(found) == 25 and len({task["id"] for task in found}) == 25
