"""The server's access log on a real `serve` process: one line per request (method, path with query
names but no values, status, duration, client, trace id), as text or, with NPHIES_FACADE_LOG_FORMAT=json,
as JSON lines; uvicorn's own access log stays off, so no request is logged twice."""

import json
import time

import httpx
import pytest

from .server_process import serve

QUERY = {"name": "Alharbi", "birthdate": "1980-01-01"}


def wait_for(server, text: str) -> str:
    deadline = time.monotonic() + 10
    while text not in (log := server.log()):
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{log}"
        time.sleep(0.05)
    return log


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("text-log")) as live:
        yield live


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("json-log"), NPHIES_FACADE_LOG_FORMAT="json") as live:
        yield live


def test_a_request_gets_one_text_line_without_query_values(text_server):
    answer = httpx.get(f"{text_server.url}/Patient", params=QUERY, headers={"X-Request-Id": "first-hour-1"})
    assert answer.status_code == 200
    log = wait_for(text_server, "trace=first-hour-1")
    [line] = [line for line in log.splitlines() if "/Patient?" in line]
    assert "nphies_facade.access trace=first-hour-1 GET /Patient?name=&birthdate= 200 " in line
    assert line.endswith("client=-") and " ms " in line
    assert "Alharbi" not in log and "1980" not in log


def test_json_lines_carry_the_same_parts_as_fields(json_server):
    answer = httpx.get(f"{json_server.url}/Patient/unknown", params=QUERY)
    assert answer.status_code == 404
    trace = answer.headers["x-request-id"]
    log = wait_for(json_server, trace)
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    [access] = [line for line in lines if line.get("trace_id") == trace and line["logger"].endswith("access")]
    assert access["method"] == "GET" and access["path"] == "/Patient/unknown?name=&birthdate="
    assert access["status"] == 404 and access["client_id"] == "-"
    assert isinstance(access["duration_ms"], float) and access["level"] == "INFO"
    assert "Alharbi" not in log
    assert any("Uvicorn running" in line["message"] for line in lines)  # uvicorn's lines are JSON too
