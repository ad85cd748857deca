"""$submit in process: answers at once, queued answers polled, the same version once, errors and faults."""

import httpx

from nphies_facade.nphies import canonical

from .helpers import (
    contained_errors,
    error_codes,
    exchanges,
    outputs,
    read,
    set_faults,
    step,
    task_path,
    wait_for_task,
)
from .material import (
    INSTITUTIONAL_PA,
    ORAL_CLAIM,
    PHARMACY_PA,
    REJECTED_DRUG,
    UNKNOWN,
    VISION_CLAIM,
    VISION_PA,
    material,
    store,
)


def adjudication(response: dict) -> str:
    extension = next(e for e in response["extension"] if e["url"] == canonical.ADJUDICATION_OUTCOME_EXT)
    return extension["valueCodeableConcept"]["coding"][0]["code"]


async def submit(client: httpx.AsyncClient, sample: str, **changes) -> tuple[dict, httpx.Response]:
    found = material(sample, **changes)
    await store(client, found)
    response = await client.post(f"/{found.claim}/$submit")
    assert response.status_code == 202, response.text
    return found.focus, response


async def submitted(client: httpx.AsyncClient, sample: str, **changes) -> tuple[dict, dict]:
    claim, response = await submit(client, sample, **changes)
    return claim, await wait_for_task(client, task_path(response))


async def final_response(client: httpx.AsyncClient, task: dict) -> dict:
    [reference] = outputs(task, "claim-response")
    return await read(client, reference["reference"])


async def test_submit_answers_202_with_the_task(client) -> None:
    claim, response = await submit(client, VISION_PA)
    task = response.json()
    assert response.headers["content-location"] == f"http://fhir.test/Task/{task['id']}"
    assert (task["resourceType"], task["status"], step(task)) == ("Task", "requested", "queued")
    assert task["focus"]["reference"] == f"Claim/{claim['id']}" and task["for"] == claim["patient"]
    assert task["code"]["coding"][0]["code"] == "submit"


async def test_prior_auth_approved_at_once(client) -> None:
    claim, task = await submitted(client, VISION_PA)
    assert (task["status"], step(task)) == ("completed", "answered")
    response = await final_response(client, task)
    assert (response["outcome"], adjudication(response)) == ("complete", "approved")
    assert response["request"]["reference"] == f"Claim/{claim['id']}"
    assert response["patient"] == claim["patient"] and response["insurer"] == claim["insurer"]
    assert response["preAuthRef"]
    assert await exchanges(client, task) == [("priorauth-request", "answered")]


async def test_prior_auth_partial_and_rejected_complete_the_task(client) -> None:
    _, partial = await submitted(client, PHARMACY_PA, item_codes=("06285097000056", REJECTED_DRUG))
    _, rejected = await submitted(client, PHARMACY_PA, item_codes=(REJECTED_DRUG,))
    assert partial["status"] == rejected["status"] == "completed"
    assert adjudication(await final_response(client, partial)) == "partial"
    assert adjudication(await final_response(client, rejected)) == "rejected"
    assert rejected["businessStatus"]["text"].endswith("rejected")


async def test_queued_prior_auth_is_polled_to_completion(client) -> None:
    _, task = await submitted(client, INSTITUTIONAL_PA, priority="deferred")
    assert task["status"] == "completed"
    [interim] = outputs(task, "interim-response")
    assert (await read(client, interim["reference"]))["outcome"] == "queued"
    assert adjudication(await final_response(client, task)) == "approved"
    events = await exchanges(client, task)
    assert events[0] == ("priorauth-request", "answered") and events[-1] == ("poll-request", "answered")


async def test_claim_completes_with_the_claim_response_in_the_output(client) -> None:
    claim, task = await submitted(client, ORAL_CLAIM)
    response = await final_response(client, task)
    assert (task["status"], response["use"], adjudication(response)) == ("completed", "claim", "approved")
    assert response["total"]


async def test_same_claim_version_twice_is_the_same_task_and_a_new_version_a_new_one(client) -> None:
    found = material(VISION_CLAIM)
    await store(client, found)
    first = await client.post(f"/{found.claim}/$submit")
    again = await client.post(f"/{found.claim}/$submit")
    assert first.json()["id"] == again.json()["id"]
    assert (again.status_code, again.headers["content-location"]) == (202, first.headers["content-location"])
    await wait_for_task(client, task_path(first))
    changed = dict(found.focus, identifier=[{"system": "http://provider.test/claims", "value": "second"}])
    assert (await client.put(f"/{found.claim}", json=changed)).status_code == 200
    second = await client.post(f"/{found.claim}/$submit")
    assert second.status_code == 202 and second.json()["id"] != first.json()["id"]
    search = (await client.get("/Task", params={"focus": found.claim})).json()
    assert len(search["entry"]) == 2


async def test_unknown_member_fails_the_task_with_nphies_error(client) -> None:
    _, task = await submitted(client, VISION_CLAIM, member=UNKNOWN)
    assert (task["status"], step(task)) == ("failed", "error")
    assert "1658" in task["statusReason"]["text"]
    assert error_codes(contained_errors(task)) == ["1658"]
    assert outputs(task, "errors") == [{"reference": "#errors"}]
    assert error_codes(await final_response(client, task)) == ["1658"]


async def test_claim_breaking_the_profiles_is_422_and_no_task(client) -> None:
    found = material(VISION_CLAIM)
    del found.focus["subType"]
    await store(client, found)
    response = await client.post(f"/{found.claim}/$submit")
    assert response.status_code == 422 and response.json()["resourceType"] == "OperationOutcome"
    assert not (await client.get("/Task", params={"focus": found.claim})).json().get("entry")


async def test_5xx_before_processing_is_checked_then_sent_again(client, faults) -> None:
    await faults({"kind": "error", "status": 503, "events": ["claim-request"], "limit": 1})
    _, task = await submitted(client, VISION_CLAIM)
    assert task["status"] == "completed", task
    assert await exchanges(client, task) == [
        ("claim-request", "unknown"),
        ("status-check", "answered"),
        ("claim-request", "answered"),
    ]


async def test_nphies_down_fails_the_task_after_the_attempts(client, faults) -> None:
    await faults({"kind": "error", "status": 503})
    _, task = await submitted(client, VISION_CLAIM)
    assert (task["status"], step(task)) == ("failed", "failed")
    assert "gave up" in task["statusReason"]["text"]


async def test_answer_lost_after_processing_is_asked_again_not_resent(impatient_client) -> None:
    client = impatient_client
    await set_faults(
        client,
        {
            "kind": "timeout",
            "delay": 5,
            "events": ["priorauth-request"],
            "after_processing": True,
            "limit": 1,
        },
    )
    _, task = await submitted(client, VISION_PA)
    assert task["status"] == "completed", task
    assert await exchanges(client, task) == [
        ("priorauth-request", "unknown"),
        ("status-check", "answered"),
        ("priorauth-request", "answered"),
    ]
    assert adjudication(await final_response(client, task)) == "approved"
