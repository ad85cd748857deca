"""GET /metrics: Prometheus text with the workflow, exchange and HTTP metrics; a system scope is needed;
with `serve --workers 2` the figures are the same whichever process answers."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nphies_facade.server.app import create_app
from nphies_facade.server.settings import Settings
from nphies_facade.workflows import metrics
from tests.security.conftest import (  # noqa: F401 - fixtures
    BASE,
    ISSUER,
    anon,
    as_token,
    clock,
    jwks_server,
    mint,
    published,
    rsa_key,
    secure_app,
    secure_settings,
)
from tests.subscriptions.receiver import free_port

NAMES = {
    "nphies_workflow_started": "counter",
    "nphies_workflow_ended": "counter",
    "nphies_workflow_step_seconds": "histogram",
    "nphies_workflow_step_retries": "counter",
    "nphies_workflow_escalations": "counter",
    "nphies_workflow_sla": "counter",
    "nphies_eligibility_turnaround_seconds": "histogram",
    "nphies_claim_submissions": "counter",
    "nphies_submission_sends": "counter",
    "nphies_exchange_retries": "counter",
    "nphies_preauth_approval_seconds": "histogram",
    "nphies_http_requests": "counter",
    "nphies_http_request_seconds": "histogram",
}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


async def test_metrics_are_prometheus_text_with_every_metric(client):
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    for name, kind in NAMES.items():
        assert families.get(name) == kind, name


async def test_recorded_values_and_http_requests_show_up(client):
    before = (await client.get("/metrics")).text
    metrics.WORKFLOW_STARTED.labels("eligibility").inc()
    metrics.SLA.labels("claims", "submit", "breached").inc(2)
    metrics.ELIGIBILITY_TURNAROUND.observe(0.3)
    assert (await client.get("/Patient/missing")).status_code == 404
    after = (await client.get("/metrics")).text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("nphies_workflow_started_total", workflow="eligibility") == 1
    assert delta("nphies_workflow_sla_total", workflow="claims", step="submit", result="breached") == 2
    assert delta("nphies_eligibility_turnaround_seconds_count") == 1
    assert delta("nphies_eligibility_turnaround_seconds_bucket", le="0.5") == 1
    assert delta("nphies_http_requests_total", kind="GET instance", status="404") == 1
    assert delta("nphies_http_request_seconds_count", kind="GET instance") == 1
    assert delta("nphies_http_requests_total", kind="GET metrics", status="200") == 1


async def test_metrics_need_a_system_scope_when_authentication_is_on(anon, as_token):  # noqa: F811
    assert (await anon.get("/metrics")).status_code == 401
    async with as_token("patient/*.rs", patient="Patient/1") as user:
        refused = await user.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    async with as_token("system/*.rs") as monitor:
        allowed = await monitor.get("/metrics")
    assert allowed.status_code == 200
    assert "nphies_workflow_started" in allowed.text


@pytest.fixture
async def open_metrics_client(tmp_path: Path, published) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    settings = Settings(
        data_dir=tmp_path / "data",
        base_url=BASE,
        auth="on",
        auth_issuer=ISSUER,
        auth_jwks_url=published.url,
        rate_limit=0,
        metrics_auth=False,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
            yield c


async def test_metrics_auth_off_opens_only_the_metrics(open_metrics_client):
    assert (await open_metrics_client.get("/metrics")).status_code == 200
    assert (await open_metrics_client.get("/Patient")).status_code == 401


# ----- several server processes -----


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "NPHIES_FACADE_AUTH": "off",
        "NPHIES_FACADE_LOG_LEVEL": "warning",
    }
    data = tmp_path / "data"
    command = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(port)]
    command += ["--data-dir", str(data), "--workers", "2"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # two processes importing on a busy 2-core machine
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("serve --workers 2 did not start")
            time.sleep(0.2)
        yield base, data / "metrics"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_with_two_server_processes_every_answer_counts_every_request(two_workers):
    base, directory = two_workers

    def writers() -> set[str]:
        return {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}

    def absent(_: int) -> int:
        return httpx.get(f"{base}/Patient/absent", timeout=10).status_code  # a new connection each time

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(writers()) < 2 and sent < 2000:  # concurrent connections, until both processes took some
            assert set(pool.map(absent, range(40))) == {404}
            sent += 40
    assert len(writers()) >= 2, "both server processes should have answered requests"
    for _ in range(6):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        assert sample(text, "nphies_http_requests_total", kind="GET instance", status="404") == sent
