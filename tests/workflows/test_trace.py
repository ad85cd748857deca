"""W3C trace context: a valid `traceparent` is continued, an invalid one replaced; the trace id reaches the
outbox event of the write and every log line written while the request runs."""

import io
import logging
import re

import pytest
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from nphies_facade.nphies.gateway import GatewaySettings, NphiesGateway
from nphies_facade.resources.tracing import (
    LOG_FORMAT,
    TraceIdFilter,
    bound,
    parse_traceparent,
)
from tests.subscriptions.receiver import Receiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
HEADER = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


async def test_a_valid_traceparent_is_continued_with_a_span_of_this_server(client):
    response = await client.get("/healthz", headers={"traceparent": PARENT})
    found = HEADER.fullmatch(response.headers["traceparent"])
    assert found is not None
    assert found.group(1) == TRACE_ID
    assert found.group(2) != "00f067aa0ba902b7"
    assert found.group(3) == "01"
    assert response.headers["x-request-id"] == TRACE_ID


@pytest.mark.parametrize(
    "invalid",
    [
        "00-xyz-00f067aa0ba902b7-01",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",
    ],
)
async def test_an_invalid_traceparent_is_ignored_and_a_new_trace_started(client, invalid):
    response = await client.get("/healthz", headers={"traceparent": invalid})
    found = HEADER.fullmatch(response.headers["traceparent"])
    assert found is not None
    assert found.group(1) != TRACE_ID.lower() and found.group(1) != "0" * 32
    assert response.headers["x-request-id"] == found.group(1)


async def test_without_a_traceparent_each_request_gets_its_own_trace(client):
    first = parse_traceparent((await client.get("/healthz")).headers["traceparent"])
    second = parse_traceparent((await client.get("/healthz")).headers["traceparent"])
    assert first is not None and second is not None
    assert first[0] != second[0]


async def test_the_trace_id_is_stored_with_the_outbox_event_of_the_write(client, app):
    response = await client.post(
        "/Patient", json={"resourceType": "Patient", "gender": "female"}, headers={"traceparent": PARENT}
    )
    assert response.status_code == 201
    events = await app.state.service.store.outbox_after(0, 100)
    [event] = [e for e in events if e.resource_type == "Patient" and e.id == response.json()["id"]]
    assert event.trace_id == TRACE_ID


async def test_log_lines_written_during_a_request_carry_its_trace_id(client, app):
    logger = logging.getLogger("nphies_facade.test.trace")
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(TraceIdFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def logs_a_line(request: Request) -> PlainTextResponse:
        logger.info("handled")
        return PlainTextResponse("ok")

    app.router.routes.insert(0, APIRoute("/trace-test", logs_a_line))
    try:
        answered = await client.get("/trace-test", headers={"traceparent": PARENT})
        assert answered.status_code == 200
        logger.info("outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = output.getvalue().splitlines()
    assert f"trace={TRACE_ID} handled" in inside
    assert "trace=- outside any request" in outside


def test_the_filter_uses_the_bound_trace_id_and_leaves_an_explicit_one():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "message", None, None)
    with bound(TRACE_ID):
        TraceIdFilter().filter(record)
    assert record.trace_id == TRACE_ID
    TraceIdFilter().filter(record)
    assert record.trace_id == TRACE_ID


def message_bundle() -> dict:
    header = {
        "resourceType": "MessageHeader",
        "id": "trace-test-header",
        "eventCoding": {
            "system": "http://nphies.sa/terminology/CodeSystem/ksa-message-events",
            "code": "poll-request",
        },
    }
    return {"resourceType": "Bundle", "type": "message", "entry": [{"resource": header}]}


async def test_nphies_messages_carry_the_trace_of_the_work_that_sends_them():
    receiver = Receiver().start()
    try:
        async with NphiesGateway(GatewaySettings(receiver.url, timeout=5, retries=0)) as gateway:
            with bound(TRACE_ID):
                await gateway.send(message_bundle())
            await gateway.send(message_bundle())
        traced, untraced = receiver.requests(kind=None)
    finally:
        receiver.stop()
    parsed = parse_traceparent(traced.headers["traceparent"])
    assert parsed is not None and parsed[0] == TRACE_ID
    assert "traceparent" not in untraced.headers
