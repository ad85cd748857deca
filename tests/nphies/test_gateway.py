"""The gateway against the simulator's injected faults: what is retried, what is not, and why."""

import datetime as dt
import ssl
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nphies_facade.nphies.gateway import GatewaySettings, NphiesGateway, Outcome
from nphies_facade.nphies.messages import build_poll_request, build_status_check
from nphies_facade.nphies.parsing import OperationOutcomeResult
from nphies_facade.nphies.simulator import FaultRule, create_simulator_app
from nphies_facade.nphies.simulator.faults import FaultInjector

from .conftest import free_port
from .samples import scenario

ELIGIBILITY = "official_eligibility-request_benefits-validation.json"
CLAIM = "official_claim-request_oral.json"


async def _faults(control: httpx.AsyncClient, *rules: dict) -> None:
    assert (await control.put("/__simulator/faults", json=list(rules))).status_code == 200


async def test_eligibility_is_retried_through_503s(control, make_gateway, provider) -> None:
    await _faults(control, {"kind": "error", "status": 503, "sender": provider, "limit": 2})
    async with make_gateway() as gateway:
        exchange = await gateway.send(scenario(ELIGIBILITY, provider=provider).message())
    assert exchange.outcome is Outcome.ANSWERED
    assert [a.status_code for a in exchange.attempts] == [503, 503, 200]
    assert exchange.parsed().outcome == "complete"


async def test_eligibility_fails_when_503s_outlast_the_retries(control, make_gateway, provider) -> None:
    await _faults(control, {"kind": "error", "status": 503, "sender": provider})
    async with make_gateway(retries=1) as gateway:
        exchange = await gateway.send(scenario(ELIGIBILITY, provider=provider).message())
    assert (exchange.outcome, len(exchange.attempts), exchange.status_code) == (Outcome.FAILED, 2, 503)
    assert isinstance(exchange.parsed(), OperationOutcomeResult)


async def test_claim_is_not_resent_after_a_503(control, make_gateway, provider) -> None:
    await _faults(control, {"kind": "error", "status": 503, "sender": provider, "limit": 1})
    async with make_gateway() as gateway:
        exchange = await gateway.send(scenario(CLAIM, provider=provider).message())
    assert (exchange.outcome, len(exchange.attempts)) == (Outcome.UNKNOWN, 1)


async def test_claim_timed_out_after_processing_is_unknown_and_a_blind_resend_would_duplicate(
    control, make_gateway, provider
) -> None:
    case = scenario(CLAIM, provider=provider)
    await _faults(
        control, {"kind": "timeout", "delay": 2.0, "after_processing": True, "sender": provider, "limit": 1}
    )
    async with make_gateway(timeout=0.3) as gateway:
        lost = await gateway.send(case.message())
        assert (lost.outcome, len(lost.attempts)) == (Outcome.UNKNOWN, 1)
        assert "ReadTimeout" in lost.error
        status = await gateway.send(build_status_check(case.focus, case.resolve, case.config))
        assert status.parsed().status == "complete"  # the payer had adjudicated it
        resent = await gateway.send(case.message())
        assert [e.code for e in resent.parsed().errors] == ["BV-00163"]


async def test_eligibility_timeout_is_retried(control, make_gateway, provider) -> None:
    await _faults(control, {"kind": "timeout", "delay": 2.0, "sender": provider, "limit": 1})
    async with make_gateway(timeout=0.3) as gateway:
        started = time.perf_counter()
        exchange = await gateway.send(scenario(ELIGIBILITY, provider=provider).message())
    assert exchange.outcome is Outcome.ANSWERED and len(exchange.attempts) == 2
    assert exchange.attempts[0].error.startswith("ReadTimeout") and time.perf_counter() - started < 2


async def test_malformed_answers_are_retried_for_polls_but_not_for_claims(
    control, make_gateway, provider
) -> None:
    await _faults(
        control,
        {"kind": "malformed", "sender": provider, "events": ["poll-request"], "limit": 1},
        {"kind": "malformed", "sender": provider, "events": ["claim-request"], "limit": 1},
    )
    case = scenario(CLAIM, provider=provider)
    async with make_gateway() as gateway:
        poll = await gateway.send(build_poll_request(case.config))
        claim = await gateway.send(case.message())
    assert (poll.outcome, len(poll.attempts)) == (Outcome.ANSWERED, 2)
    assert (claim.outcome, len(claim.attempts), claim.response) == (Outcome.MALFORMED, 1, None)
    assert claim.response_text


async def test_latency_is_injected_on_every_nth_request_only(control, make_gateway, provider) -> None:
    await _faults(control, {"kind": "latency", "delay": 0.3, "every_nth": 2, "sender": provider})
    async with make_gateway() as gateway:
        durations = [
            (await gateway.send(scenario(ELIGIBILITY, provider=provider).message())).duration_ms
            for _ in range(4)
        ]
    assert [d >= 300 for d in durations] == [False, True, False, True]


async def test_connection_refused_is_retried_for_any_message_then_fails() -> None:
    settings = GatewaySettings(base_url=f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01, timeout=1)
    async with NphiesGateway(settings) as gateway:
        exchange = await gateway.send(scenario(CLAIM).message())
    assert (exchange.outcome, len(exchange.attempts)) == (Outcome.FAILED, 3)
    assert exchange.status_code is None and "ConnectError" in exchange.error


async def test_unreadable_messages_are_rejected_with_an_operation_outcome(gateway) -> None:
    message = scenario(ELIGIBILITY).message()
    message.bundle["type"] = "collection"
    exchange = await gateway.send(message)
    assert (exchange.outcome, exchange.status_code) == (Outcome.REJECTED, 400)
    assert [e.code for e in exchange.parsed().errors] == ["BV-00130"]


async def test_requests_carry_fhir_json_and_the_configured_credential_headers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=orjson.dumps({"resourceType": "OperationOutcome", "issue": []}))

    settings = GatewaySettings(
        base_url="https://nphies.test/api/fs/fhir", headers={"X-Organization-Id": "PR-1"}
    )
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(answer),
        headers={"Content-Type": "application/fhir+json", **settings.headers},
    )
    async with NphiesGateway(settings, client=client) as gateway:
        exchange = await gateway.send(scenario(ELIGIBILITY).message())
    assert str(seen[0].url) == "https://nphies.test/api/fs/fhir/$process-message"
    assert (
        seen[0].headers["content-type"] == "application/fhir+json"
        and seen[0].headers["x-organization-id"] == "PR-1"
    )
    assert (
        exchange.summary()["correlationId"]
        == exchange.correlation_id
        == exchange.request["entry"][0]["resource"]["id"]
    )
    assert exchange.summary()["event"] == "eligibility-request"


def test_fault_rules_fire_deterministically_every_nth_and_up_to_their_limit() -> None:
    injector = FaultInjector([FaultRule("error", events=("claim-request",), every_nth=3, limit=2)])
    fired = [bool(injector.pick("claim-request", "p")) for _ in range(9)]
    assert fired == [False, False, True, False, False, True, False, False, False]
    assert injector.pick("eligibility-request", "p") == []


# --- mutual TLS ------------------------------------------------------------------------------------


def _certificate(name: str, key, issuer_name: str, issuer_key, ca: bool = False, server: bool = False):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, certificate, key) -> tuple[str, str]:
    cert_file, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mtls")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("test CA", ca_key, "test CA", ca_key, ca=True)
    ca_file, _ = _write(folder / "ca", ca, ca_key)
    server_cert, server_key_file = _write(
        folder / "server", _certificate("localhost", server_key, "test CA", ca_key, server=True), server_key
    )
    client_cert, client_key_file = _write(
        folder / "client", _certificate("PR-FHIR", client_key, "test CA", ca_key), client_key
    )
    port = free_port()
    config = uvicorn.Config(
        create_simulator_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=server_cert,
        ssl_keyfile=server_key_file,
        ssl_ca_certs=ca_file,
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield {"url": f"https://localhost:{port}", "ca": ca_file, "cert": client_cert, "key": client_key_file}
    server.should_exit = True
    thread.join(timeout=5)


async def test_mutual_tls_with_the_client_certificate_gets_answered(mtls) -> None:
    settings = GatewaySettings(
        base_url=mtls["url"], ca_file=mtls["ca"], cert_file=mtls["cert"], key_file=mtls["key"]
    )
    async with NphiesGateway(settings) as gateway:
        exchange = await gateway.send(scenario(ELIGIBILITY).message())
    assert exchange.outcome is Outcome.ANSWERED and exchange.parsed().outcome == "complete"


async def test_mutual_tls_without_a_client_certificate_gets_no_answer(mtls) -> None:
    settings = GatewaySettings(base_url=mtls["url"], ca_file=mtls["ca"], retries=0)
    async with NphiesGateway(settings) as gateway:
        exchange = await gateway.send(scenario(ELIGIBILITY).message())
    assert exchange.outcome is Outcome.FAILED and exchange.response is None
