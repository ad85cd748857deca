"""$submit records claim submissions by result and NPHIES retries in the Prometheus metrics."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .material import VISION_CLAIM, VISION_PA
from .test_submit import submitted


async def values(client: httpx.AsyncClient) -> dict[tuple[str, tuple], float]:
    text = (await client.get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name
        in (
            "nphies_submission_sends_total",
            "nphies_exchange_retries_total",
            "nphies_preauth_approval_seconds_count",
        )
    }


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_an_answered_submission_is_counted_once_without_retries(client) -> None:
    before = await values(client)
    _, task = await submitted(client, VISION_CLAIM)
    after = await values(client)
    assert task["status"] == "completed"
    assert delta(before, after, "nphies_submission_sends_total", result="answered") == 1
    assert delta(before, after, "nphies_submission_sends_total", result="retry") == 0
    assert sum(v for (name, _), v in after.items() if name == "nphies_exchange_retries_total") == sum(
        v for (name, _), v in before.items() if name == "nphies_exchange_retries_total"
    )


async def test_a_5xx_counts_a_retry_and_then_the_answer(client, faults) -> None:
    await faults({"kind": "error", "status": 503, "events": ["claim-request"], "limit": 1})
    before = await values(client)
    _, task = await submitted(client, VISION_CLAIM)
    after = await values(client)
    assert task["status"] == "completed"
    assert delta(before, after, "nphies_submission_sends_total", result="retry") == 1
    assert delta(before, after, "nphies_submission_sends_total", result="answered") == 1
    retried = delta(before, after, "nphies_exchange_retries_total", operation="claim-request")
    retried += delta(before, after, "nphies_exchange_retries_total", operation="status-check")
    assert retried >= 1


async def test_a_prior_auth_answer_records_its_approval_time_and_a_claim_does_not(client) -> None:
    before = await values(client)
    _, task = await submitted(client, VISION_PA)
    _, claim_task = await submitted(client, VISION_CLAIM)
    after = await values(client)
    assert (task["status"], claim_task["status"]) == ("completed", "completed")
    assert delta(before, after, "nphies_preauth_approval_seconds_count") == 1
