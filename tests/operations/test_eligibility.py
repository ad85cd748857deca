"""$eligibility in process: the answers of the simulated payer, the cache, refusals and failures."""

import httpx
import orjson

from nphies_facade.nphies import canonical

from .conftest import fast_settings, serving
from .helpers import attachment, error_codes, handled, read, set_faults
from .material import ELIGIBILITY, NOT_ACTIVE, OUT_OF_NETWORK, UNKNOWN, material, parameters, store


def site_eligibility(response: dict) -> str:
    extension = next(e for e in response["extension"] if e["url"] == canonical.SITE_ELIGIBILITY_EXT)
    return extension["valueCodeableConcept"]["coding"][0]["code"]


async def ask(
    client: httpx.AsyncClient, coverage: str, body: dict | None = None, **headers
) -> httpx.Response:
    return await client.post(f"/{coverage}/$eligibility", json=body, headers=headers)


async def test_eligible_member_gets_the_stored_response(client) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    response = await ask(client, found.coverage)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["resourceType"], answer["outcome"], site_eligibility(answer)) == (
        "CoverageEligibilityResponse",
        "complete",
        "eligible",
    )
    assert answer["insurance"][0]["inforce"] is True
    assert answer["insurance"][0]["coverage"]["reference"] == found.coverage
    assert answer["patient"] == found.resources[found.coverage]["beneficiary"]
    assert response.headers["x-cache"] == "MISS"
    assert response.headers["content-location"].endswith(
        f"/CoverageEligibilityResponse/{answer['id']}/_history/1"
    )
    request = await read(client, answer["request"]["reference"])
    assert (request["purpose"], request["insurance"][0]["coverage"]["reference"]) == (
        ["validation"],
        found.coverage,
    )
    provider = await read(client, request["provider"]["reference"])
    assert provider["identifier"][0]["value"] == "PR-FHIR"


async def test_exchange_is_recorded_with_request_and_answer(client) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    answer = (await ask(client, found.coverage)).json()
    records = await client.get(
        "/DocumentReference",
        params={
            "type": f"{canonical.MESSAGE_EVENTS}|eligibility-request",
            "related": answer["request"]["reference"],
        },
    )
    [entry] = records.json()["entry"]
    record = entry["resource"]
    assert (record["docStatus"], record["category"][0]["coding"][0]["code"]) == ("final", "answered")
    assert record["subject"] == answer["patient"]
    request, reply = (orjson.loads(attachment(record, title)) for title in ("request", "response"))
    assert request["type"] == reply["type"] == "message"
    assert reply["entry"][0]["resource"]["response"]["identifier"] == request["entry"][0]["resource"]["id"]
    summary = orjson.loads(attachment(record, "summary"))
    assert (summary["outcome"], summary["statusCode"], len(summary["attempts"])) == ("answered", 200, 1)
    assert summary["durationMs"] >= 0 and summary["sent"][found.coverage].startswith("urn:uuid:")


async def test_not_active_member_is_not_in_force(client) -> None:
    found = material(ELIGIBILITY, member=NOT_ACTIVE)
    await store(client, found)
    answer = (await ask(client, found.coverage)).json()
    assert (answer["outcome"], site_eligibility(answer), answer["insurance"][0]["inforce"]) == (
        "complete",
        "not-active",
        False,
    )


async def test_out_of_network_member(client) -> None:
    found = material(ELIGIBILITY, member=OUT_OF_NETWORK)
    await store(client, found)
    assert site_eligibility((await ask(client, found.coverage)).json()) == "out-network"


async def test_unknown_member_is_answered_with_error_1658_and_not_cached(client) -> None:
    found = material(ELIGIBILITY, member=UNKNOWN)
    await store(client, found)
    first = await ask(client, found.coverage)
    assert first.status_code == 200
    assert (first.json()["outcome"], error_codes(first.json())) == ("error", ["1658"])
    again = await ask(client, found.coverage)
    assert again.headers["x-cache"] == "MISS" and again.json()["id"] != first.json()["id"]


async def test_cache_hit_bypass_and_new_coverage_version(client) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    first = await ask(client, found.coverage)
    hit = await ask(client, found.coverage)
    assert (hit.headers["x-cache"], hit.json()["id"]) == ("HIT", first.json()["id"])
    bypass = await ask(client, found.coverage, **{"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "MISS" and bypass.json()["id"] != first.json()["id"]
    other_date = await ask(client, found.coverage, parameters(servicedDate="2025-03-01"))
    assert other_date.headers["x-cache"] == "MISS" and other_date.json()["servicedDate"] == "2025-03-01"
    coverage = found.resources[found.coverage]
    coverage["network"] = "Silver"
    assert (await client.put(f"/{found.coverage}", json=coverage)).status_code == 200
    assert (await ask(client, found.coverage)).headers["x-cache"] == "MISS"


async def test_benefits_purpose_returns_the_benefit_table(client) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    answer = (await ask(client, found.coverage, parameters(purpose="benefits"))).json()
    assert answer["purpose"] == ["benefits"] and answer["insurance"][0]["item"]


async def test_bad_parameters_are_400(client) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    assert (await ask(client, found.coverage, parameters(purpose="auth"))).status_code == 400
    assert (await ask(client, found.coverage, parameters(servicedDate="2025-02-30"))).status_code == 400
    assert (await ask(client, found.coverage, parameters(colour="blue"))).status_code == 400
    assert (await ask(client, "Coverage/unknown")).status_code == 404


async def test_message_breaking_the_profiles_is_refused_with_422_and_not_sent(client) -> None:
    found = material(ELIGIBILITY)
    patient_key = found.resources[found.coverage]["beneficiary"]["reference"]
    del found.resources[patient_key]["extension"]  # occupation, mandatory since profiles v5.2
    await store(client, found)
    before = await handled(client)
    response = await ask(client, found.coverage)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any("occupation" in " ".join(i.get("expression", [])) + i["diagnostics"] for i in outcome["issue"])
    assert await handled(client) == before


async def test_nphies_5xx_is_retried_then_502(client, faults) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    await faults({"kind": "error", "status": 503, "events": ["eligibility-request"], "limit": 1})
    assert (await ask(client, found.coverage)).status_code == 200  # the gateway resent it
    await faults({"kind": "error", "status": 503, "events": ["eligibility-request"]})
    failed = await ask(client, found.coverage, **{"Cache-Control": "no-cache"})
    assert failed.status_code == 502 and failed.json()["resourceType"] == "OperationOutcome"
    assert "HTTP 503" in failed.json()["issue"][0]["diagnostics"]


async def test_nphies_timeout_is_504(impatient_client) -> None:
    client = impatient_client
    found = material(ELIGIBILITY)
    await store(client, found)
    await set_faults(client, {"kind": "timeout", "delay": 5, "events": ["eligibility-request"]})
    response = await ask(client, found.coverage)
    assert response.status_code == 504, response.text
    assert response.json()["issue"][0]["code"] == "timeout"


async def test_cached_answer_survives_a_restart(client, settings) -> None:
    found = material(ELIGIBILITY)
    await store(client, found)
    first = await ask(client, found.coverage)
    async with serving(settings) as restarted:
        again = await ask(restarted, found.coverage)
    assert (again.headers["x-cache"], again.json()["id"]) == ("HIT", first.json()["id"])


async def test_operations_and_the_simulator_need_a_token_when_authentication_is_on(tmp_path) -> None:
    async with serving(fast_settings(tmp_path / "secured", auth="on")) as secured:
        control = await secured.get("/_simulator/nphies/__simulator/state")
        response = await secured.post("/Coverage/any/$eligibility")
    assert response.status_code == 401 and control.status_code == 401
