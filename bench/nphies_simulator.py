"""Eligibility round trips through the NPHIES gateway against the simulator on loopback (real HTTP).

The simulator runs in its own process (`python -m nphies_facade.nphies.simulator`). Two runs, same
concurrency and request count:
  1. baseline: prebuilt eligibility-request Bundles POSTed with a bare httpx.AsyncClient, body parsed with
     orjson only (the cost of HTTP + the simulator's validation and answer);
  2. gateway: per request, build the message from stored resources (builder), send it with NphiesGateway
     and parse the answer into an EligibilityResponse (what a workflow step does).
Reports req/s and p50/p95/p99 latency of each, the gateway/baseline ratio, and builder and parser cost per
message measured alone.

  .venv/bin/python bench/nphies_simulator.py [--requests 2000] [--concurrency 8] [--warmup 200]
"""

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import orjson

from nphies_facade.nphies.gateway import GatewaySettings, NphiesGateway, Outcome
from nphies_facade.nphies.messages import ProviderConfig, build_eligibility_request
from nphies_facade.nphies.parsing import EligibilityResponse, parse_response

CONFIG = ProviderConfig(
    provider_license="PR-BENCH",
    provider_name="Bench Hospital",
    payer_license="INS-FHIR",
    source_endpoint="http://bench.test",
)


def store() -> dict[str, dict]:
    """The stored resources of one eligibility request: patient, coverage, provider and payer."""
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PRC"}]
                },
                "system": "http://nphies.sa/identifier/iqama",
                "value": "2000000001",
            }
        ],
        "active": True,
        "name": [{"text": "Bench Patient"}],
        "gender": "male",
        "birthDate": "1980-01-01",
    }
    provider = {
        "resourceType": "Organization",
        "id": "prov",
        "identifier": [{"system": "http://nphies.sa/license/provider-license", "value": "PR-BENCH"}],
        "active": True,
        "type": [
            {
                "coding": [
                    {"system": "http://nphies.sa/terminology/CodeSystem/organization-type", "code": "prov"}
                ]
            }
        ],
        "name": "Bench Hospital",
    }
    payer = {
        "resourceType": "Organization",
        "id": "ins",
        "identifier": [{"system": "http://nphies.sa/license/payer-license", "value": "INS-FHIR"}],
        "active": True,
        "type": [
            {
                "coding": [
                    {"system": "http://nphies.sa/terminology/CodeSystem/organization-type", "code": "ins"}
                ]
            }
        ],
    }
    coverage = {
        "resourceType": "Coverage",
        "id": "cov",
        "identifier": [{"system": "http://payer.test/memberid", "value": "M-1"}],
        "status": "active",
        "type": {
            "coding": [{"system": "http://nphies.sa/terminology/CodeSystem/coverage-type", "code": "EHCPOL"}]
        },
        "policyHolder": {"reference": "Patient/p1"},
        "beneficiary": {"reference": "Patient/p1"},
        "relationship": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}
            ]
        },
        "payor": [{"reference": "Organization/ins"}],
    }
    return {f"{r['resourceType']}/{r['id']}": r for r in (patient, provider, payer, coverage)}


def eligibility_request() -> dict:
    return {
        "resourceType": "CoverageEligibilityRequest",
        "id": "cer",
        "identifier": [{"system": "http://bench.test/eligibility", "value": str(uuid.uuid4())}],
        "status": "active",
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "purpose": ["benefits", "validation"],
        "patient": {"reference": "Patient/p1"},
        "servicedDate": "2026-01-01",
        "created": "2026-01-01",
        "provider": {"reference": "Organization/prov"},
        "insurer": {"reference": "Organization/ins"},
        "insurance": [{"coverage": {"reference": "Coverage/cov"}}],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "nphies_facade.nphies.simulator", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the simulator did not start")


async def run(name: str, requests: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> dict:
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for number in counter:
            started = time.perf_counter()
            await one(number)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"name": name, "rps": requests / elapsed, "p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


async def baseline(url: str, requests: int, concurrency: int) -> dict:
    resources = store()
    bodies = [
        orjson.dumps(build_eligibility_request(eligibility_request(), resources.get, CONFIG).bundle)
        for _ in range(requests)
    ]
    headers = {"Content-Type": "application/fhir+json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def one(number: int) -> None:
            response = await client.post("/$process-message", content=bodies[number])
            assert response.status_code == 200
            orjson.loads(response.content)

        return await run("baseline (bare httpx, prebuilt bodies)", requests, concurrency, one)


async def through_gateway(url: str, requests: int, concurrency: int) -> dict:
    resources = store()
    async with NphiesGateway(GatewaySettings(base_url=url, timeout=30)) as gateway:

        async def one(number: int) -> None:
            message = build_eligibility_request(eligibility_request(), resources.get, CONFIG)
            exchange = await gateway.send(message)
            assert exchange.outcome is Outcome.ANSWERED
            assert isinstance(exchange.parsed(), EligibilityResponse)

        return await run("gateway (build + send + parse)", requests, concurrency, one)


def per_message_costs(samples: int = 500) -> tuple[float, float]:
    """Microseconds to build one eligibility message, and to parse one eligibility answer."""
    resources = store()
    started = time.perf_counter()
    for _ in range(samples):
        build_eligibility_request(eligibility_request(), resources.get, CONFIG)
    build_us = (time.perf_counter() - started) / samples * 1e6
    answer = orjson.loads(
        orjson.dumps(
            {
                "resourceType": "Bundle",
                "type": "message",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:h",
                        "resource": {
                            "resourceType": "MessageHeader",
                            "id": "h",
                            "eventCoding": {"code": "eligibility-response"},
                            "focus": [{"reference": "urn:uuid:r"}],
                        },
                    },
                    {
                        "fullUrl": "urn:uuid:r",
                        "resource": {"resourceType": "CoverageEligibilityResponse", "outcome": "complete"},
                    },
                ],
            }
        )
    )
    started = time.perf_counter()
    for _ in range(samples):
        parse_response(answer)
    return build_us, (time.perf_counter() - started) / samples * 1e6


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | {platform.platform()} | Python {platform.python_version()}"


async def measure(url: str, requests: int, concurrency: int, warmup: int) -> list[dict]:
    await through_gateway(url, warmup, concurrency)
    return [await baseline(url, requests, concurrency), await through_gateway(url, requests, concurrency)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    print("command:", " ".join([os.path.relpath(sys.executable), *sys.argv]))
    print("machine:", machine())
    port = free_port()
    simulator = start_simulator(port)
    try:
        results = asyncio.run(
            measure(f"http://127.0.0.1:{port}", args.requests, args.concurrency, args.warmup)
        )
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    print(
        f"eligibility round trips: {args.requests} requests, concurrency {args.concurrency}, "
        "simulator in its own process"
    )
    print(f"{'run':42} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for result in results:
        print(
            f"{result['name']:42} {result['rps']:8.0f} {result['p50']:8.2f} {result['p95']:8.2f} {result['p99']:8.2f}"
        )
    print(f"gateway / baseline throughput: {results[1]['rps'] / results[0]['rps']:.2f}")
    build_us, parse_us = per_message_costs()
    print(f"alone, per message: build {build_us:.0f} us, parse answer {parse_us:.0f} us")


if __name__ == "__main__":
    main()
