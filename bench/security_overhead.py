"""Benchmark what security costs per request: token verification, authorisation and the audit chain.

Run: .venv/bin/python bench/security_overhead.py [--requests N] [--rounds R]
In-process over ASGI (no network): reads and creates of Patients against the same app with
NPHIES_FACADE_AUTH=off (the baseline of this run: audit on, no token, full access) and with auth on, once
with a token of the built-in issuer (ES256, server key) and once with a token of an external issuer
(RS256, JWKS served over HTTP on loopback, cached). Also: audit records appended per second (chain hash
included) beside plain SQLite inserts of rows of the same size, and chain verification records/s.
The token endpoint (SMART App Launch): the authorization_code exchange (PKCE S256) and a rotating
refresh, sent at a sustained rate, beside the client_credentials grant (a private_key_jwt assertion) at
the same rate as the baseline; median and p95 latency per grant.
Searches across types: a chained search (`Observation?subject:Patient.family=...`) and a `_has` search
(`Patient?_has:Observation:patient:code=...`) against two apps on the same data in the same run, one with
auth off and one with auth on (a `system/*.rs` token: every type the criteria reach is authorised), the
rounds alternating between them; median microseconds per search and the ratio.
Prints medians over rounds with the command and the machine.
"""

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nphies_facade.resources.audit import AuditEntry, verify_chain  # noqa: E402
from nphies_facade.resources.context import RequestContext  # noqa: E402
from nphies_facade.server.app import create_app  # noqa: E402
from nphies_facade.server.auth.accounts import new_user  # noqa: E402
from nphies_facade.server.auth.apps import KIND as APP_KIND  # noqa: E402
from nphies_facade.server.auth.apps import new_app  # noqa: E402
from nphies_facade.server.auth.clients import new_client  # noqa: E402
from nphies_facade.server.settings import Settings  # noqa: E402

BASE = "http://bench.test"
ISSUER = "https://issuer.bench"
PATIENT = {"resourceType": "Patient", "name": [{"family": "Bench", "given": ["Mark"]}], "gender": "female"}


def serve_jwks(jwk: dict) -> tuple[str, ThreadingHTTPServer]:
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/jwks.json", server


async def timed_requests(client: httpx.AsyncClient, headers: dict, n: int) -> dict[str, float]:
    """Microseconds per create and per read (mean over n each)."""
    ids = []
    start = time.perf_counter()
    for _ in range(n):
        response = await client.post("/Patient", json=PATIENT, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.headers["location"].split("/")[4])
    create = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for resource_id in ids:
        response = await client.get(f"/Patient/{resource_id}", headers=headers)
        assert response.status_code == 200, response.text
    read = (time.perf_counter() - start) / n * 1e6
    return {"create": create, "read": read}


async def measure_mode(mode: str, requests: int, rounds: int, jwks_url: str, rsa_key) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="nf-bench-"))
    settings = Settings(
        data_dir=data,
        base_url=BASE,
        auth="off" if mode == "auth off" else "on",
        rate_limit=0,
        auth_issuer=ISSUER,
        auth_jwks_url=jwks_url,
    )
    app = create_app(settings)
    samples: dict[str, list[float]] = {"create": [], "read": []}
    async with app.router.lifespan_context(app):
        headers = {}
        if mode == "built-in ES256":
            client = new_client("bench", "system/*.cruds", jwks={"keys": [app.state.security.key.public_jwk]})
            headers = {
                "Authorization": f"Bearer {app.state.security.issuer.mint(client, ['system/*.cruds'], lifetime=3600).access_token}"
            }
        elif mode == "external RS256":
            now = int(time.time())
            claims = {
                "iss": ISSUER,
                "sub": "bench",
                "aud": BASE,
                "exp": now + 3600,
                "scope": "system/*.cruds",
                "jti": uuid.uuid4().hex,
            }
            headers = {
                "Authorization": f"Bearer {jwt.encode(claims, rsa_key, algorithm='RS256', headers={'kid': 'b1'})}"
            }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE, headers={"Content-Type": "application/fhir+json"}
        ) as c:
            await timed_requests(c, headers, max(10, requests // 10))  # warm-up (and the JWKS fetch)
            for _ in range(rounds):
                result = await timed_requests(c, headers, requests)
                for name, value in result.items():
                    samples[name].append(value)
    return {name: statistics.median(values) for name, values in samples.items()}


async def measure_audit(records: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="nf-bench-audit-"))
    app = create_app(Settings(data_dir=data, base_url=BASE, auth="on"))
    async with app.router.lifespan_context(app):
        service = app.state.service
        ctx = RequestContext.system("bench")
        entry = AuditEntry("R", "read", entity="Patient/1", patient="Patient/1", digest="0" * 64)
        start = time.perf_counter()
        async with service.transaction() as tx:
            for _ in range(records):
                await service.audit.record(ctx, entry, tx)
        chained = records / (time.perf_counter() - start)
        start = time.perf_counter()
        report = await verify_chain(service.store.security())
        verified = report.records / (time.perf_counter() - start)
    raw_path = data / "raw.sqlite3"
    db = sqlite3.connect(raw_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT, d TEXT)")
    start = time.perf_counter()
    with db:
        for n in range(records):
            db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", (n, "x" * 64, "y" * 64, "z" * 64, "w" * 64))
    raw = records / (time.perf_counter() - start)
    db.close()
    return {"chained appends/s": chained, "raw sqlite3 inserts/s": raw, "chain verified records/s": verified}


# ----- the token endpoint: code exchange and refresh (SMART App Launch) -----


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def _launch_fixtures(app, requests: int) -> dict[str, list[dict]]:
    """Forms for `requests` requests of each grant: codes and refresh tokens made the way the consent
    screen and a first exchange make them, and pre-signed client assertions for the baseline."""
    security = app.state.security
    store = app.state.store.security()
    user = new_user("bench", "Patient/p1", "bench password 123", "patient")
    await security.accounts.save(user)
    bench_app, _ = new_app(
        "bench-app", "Bench", "public", ["https://app.bench/cb"], "launch/patient patient/*.rs offline_access"
    )
    await store.put_record(APP_KIND, bench_app.client_id, bench_app.to_json())
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "c1", "alg": "ES384"}
    await store.put_client(
        "bench-client", new_client("bench-client", "system/*.rs", jwks={"keys": [jwk]}).to_json()
    )
    grant = {"username": "bench", "user_id": user.id, "client_id": "bench-app", "patient": "Patient/p1"}
    grant |= {
        "scopes": ["launch/patient", "patient/*.rs", "offline_access"],
        "encounter": None,
        "refresh": "offline",
    }
    forms: dict[str, list[dict]] = {"client_credentials": [], "authorization_code": [], "refresh_token": []}
    for _ in range(requests):
        verifier, challenge = _pkce()
        code = await security.grants.issue_code(
            {"grant": await security.grants.new_grant(grant), "client_id": "bench-app",
             "redirect_uri": "https://app.bench/cb", "code_challenge": challenge, "nonce": None}
        )  # fmt: skip
        forms["authorization_code"].append(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.bench/cb",
             "client_id": "bench-app", "code_verifier": verifier}
        )  # fmt: skip
        live = await security.grants.grant(await security.grants.new_grant(grant))
        forms["refresh_token"].append(
            {"grant_type": "refresh_token", "client_id": "bench-app",
             "refresh_token": await security.grants.issue_refresh(live)}
        )  # fmt: skip
        now = int(time.time())
        claims = {"iss": "bench-client", "sub": "bench-client", "aud": f"{BASE}/auth/token", "exp": now + 240}
        assertion = jwt.encode(
            {**claims, "jti": uuid.uuid4().hex}, key, algorithm="ES384", headers={"kid": "c1"}
        )
        forms["client_credentials"].append(
            {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion": assertion,
             "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
        )  # fmt: skip
    return forms


async def _at_rate(client: httpx.AsyncClient, forms: list[dict], rate: float) -> list[float]:
    """Sends the forms open-loop, one every 1/rate s; milliseconds from each send to its answer."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    start = time.perf_counter()

    async def one(index: int, form: dict) -> float:
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        sent = time.perf_counter()
        response = await client.post("/auth/token", data=form, headers=headers)
        assert response.status_code == 200, response.text
        return (time.perf_counter() - sent) * 1000

    return list(await asyncio.gather(*(one(i, form) for i, form in enumerate(forms))))


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def measure_token_endpoint(requests: int, rounds: int, rate: float) -> dict[str, dict[str, float]]:
    """Median over rounds of each grant's median and p95 latency (ms); the grants alternate in each round."""
    data = Path(tempfile.mkdtemp(prefix="nf-bench-tokens-"))
    settings = Settings(data_dir=data, base_url=BASE, auth="on", rate_limit=0, auth_code_lifetime=600)
    app = create_app(settings)
    samples: dict[str, dict[str, list[float]]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            warm = await _launch_fixtures(app, 20)
            for forms in warm.values():
                await _at_rate(client, forms, rate)
            for _ in range(rounds):
                forms_by_grant = await _launch_fixtures(app, requests)
                for grant, forms in forms_by_grant.items():
                    latencies = await _at_rate(client, forms, rate)
                    figures = samples.setdefault(grant, {"median": [], "p95": []})
                    figures["median"].append(statistics.median(latencies))
                    figures["p95"].append(_p95(latencies))
    return {
        grant: {k: statistics.median(v) for k, v in figures.items()} for grant, figures in samples.items()
    }


async def measure_person_reads(requests: int, rounds: int) -> dict[str, float]:
    """Microseconds per read of one Patient with a backend-services token and with a person's token (whose
    grant, user and app are checked on every request); median over rounds, alternating."""
    data = Path(tempfile.mkdtemp(prefix="nf-bench-person-"))
    app = create_app(Settings(data_dir=data, base_url=BASE, auth="on", rate_limit=0))
    samples: dict[str, list[float]] = {"backend token": [], "person's token": []}
    async with app.router.lifespan_context(app):
        security = app.state.security
        system = new_client("bench", "system/*.cruds", jwks={"keys": [security.key.public_jwk]})
        backend = security.issuer.mint(system, ["system/*.cruds"], lifetime=3600).access_token
        forms = await _launch_fixtures(app, 1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            exchange = await client.post(
                "/auth/token", data=forms["authorization_code"][0],
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            person = exchange.json()["access_token"]
            patient = {**PATIENT, "id": "p1"}
            headers = {"Authorization": f"Bearer {backend}", "Content-Type": "application/fhir+json"}
            assert (await client.put("/Patient/p1", json=patient, headers=headers)).status_code == 201
            tokens = {"backend token": backend, "person's token": person}
            for _ in range(rounds + 1):  # the first round warms up
                for name, token in tokens.items():
                    start = time.perf_counter()
                    for _ in range(requests):
                        response = await client.get(
                            "/Patient/p1", headers={"Authorization": f"Bearer {token}"}
                        )
                        assert response.status_code == 200, response.text
                    samples[name].append((time.perf_counter() - start) / requests * 1e6)
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


SEARCHES = {
    "chained": lambda n: f"/Observation?subject:Patient.family=Fam{n % 50}",
    "_has": lambda n: f"/Patient?_has:Observation:patient:code=c{n % 50}",
}


async def _search_data(client: httpx.AsyncClient, headers: dict) -> None:
    """200 Patients (50 family names) with 5 Observations each (50 codes)."""
    for n in range(200):
        patient = {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"Fam{n % 50}"}]}
        assert (await client.put(f"/Patient/p{n}", json=patient, headers=headers)).status_code == 201
        for k in range(5):
            observation = {
                "resourceType": "Observation",
                "id": f"o{n}-{k}",
                "status": "final",
                "code": {"coding": [{"system": "urn:bench", "code": f"c{(n + k) % 50}"}]},
                "subject": {"reference": f"Patient/p{n}"},
            }
            response = await client.put(f"/Observation/o{n}-{k}", json=observation, headers=headers)
            assert response.status_code == 201, response.text


async def measure_searches(requests: int, rounds: int) -> dict[str, dict[str, float]]:
    """Microseconds per chained and per _has search, auth off and auth on, median over rounds."""
    apps, headers = {}, {}
    async with contextlib.AsyncExitStack() as stack:
        for mode in ("auth off", "auth on"):
            data = Path(tempfile.mkdtemp(prefix="nf-bench-search-"))
            app = create_app(Settings(data_dir=data, base_url=BASE, auth=mode.split()[1], rate_limit=0))
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
            )
            headers[mode] = {"Content-Type": "application/fhir+json"}
            if mode == "auth on":
                security = app.state.security
                reader = new_client("bench", "system/*.cruds", jwks={"keys": [security.key.public_jwk]})
                token = security.issuer.mint(reader, ["system/*.cruds"], lifetime=3600).access_token
                headers[mode]["Authorization"] = f"Bearer {token}"
                data_token = token
            await _search_data(client, headers[mode])
            if mode == "auth on":
                reader = new_client("bench", "system/*.rs", jwks={"keys": [security.key.public_jwk]})
                token = security.issuer.mint(reader, ["system/*.rs"], lifetime=3600).access_token
                headers[mode]["Authorization"] = f"Bearer {token}"
                assert token != data_token
            apps[mode] = client
        samples: dict[str, dict[str, list[float]]] = {kind: {mode: [] for mode in apps} for kind in SEARCHES}
        for round_number in range(rounds + 1):  # the first round warms up
            for kind, url in SEARCHES.items():
                for mode, client in apps.items():
                    start = time.perf_counter()
                    for n in range(requests):
                        response = await client.get(url(n), headers=headers[mode])
                        assert response.status_code == 200, response.text
                        assert response.json().get("entry"), url(n)
                    if round_number:
                        samples[kind][mode].append((time.perf_counter() - start) / requests * 1e6)
    return {kind: {m: statistics.median(v) for m, v in by_mode.items()} for kind, by_mode in samples.items()}


def print_searches(figures: dict[str, dict[str, float]], requests: int, rounds: int) -> None:
    print(f"\nsearches across types, in-process ASGI, median of {rounds} rounds of {requests} (alternating)")
    print(f"{'search':<10}{'auth off us':>13}{'auth on us':>12}{'on/off':>8}")
    for kind, by_mode in figures.items():
        off, on = by_mode["auth off"], by_mode["auth on"]
        print(f"{kind:<10}{off:>13.0f}{on:>12.0f}{on / off:>8.2f}")


def print_token_endpoint(
    figures: dict[str, dict[str, float]], requests: int, rounds: int, rate: float
) -> None:
    print(
        f"\ntoken endpoint at {rate:.0f} requests/s, in-process ASGI, median of {rounds} rounds of {requests}"
    )
    print(f"{'grant':<22}{'median ms':>11}{'p95 ms':>9}{'p95 x':>8}")
    baseline = figures["client_credentials"]["p95"]
    for grant, values in figures.items():
        print(f"{grant:<22}{values['median']:>11.2f}{values['p95']:>9.2f}{values['p95'] / baseline:>8.2f}")


def print_person_reads(figures: dict[str, float], requests: int, rounds: int) -> None:
    print(f"\nread of one Patient, in-process ASGI, median of {rounds} rounds of {requests}")
    baseline = figures["backend token"]
    for name, value in figures.items():
        print(f"{name:<22}{value:>10.0f} us{value / baseline:>8.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="creates and reads per round (300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are printed (3)")
    parser.add_argument("--audit-records", type=int, default=5000, help="audit records appended (5000)")
    parser.add_argument("--token-rate", type=float, default=50.0, help="token requests per second (50)")
    parser.add_argument("--token-requests", type=int, default=300, help="token requests per grant and round")
    parser.add_argument("--tokens-only", action="store_true", help="measure only the token endpoint")
    parser.add_argument("--searches-only", action="store_true", help="measure only the cross-type searches")
    parser.add_argument("--search-requests", type=int, default=200, help="searches per kind and round (200)")
    args = parser.parse_args()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {
        **RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True),
        "kid": "b1",
        "alg": "RS256",
        "use": "sig",
    }
    jwks_url, server = serve_jwks(jwk)
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    if args.searches_only:
        server.shutdown()
        searches = await measure_searches(args.search_requests, args.rounds)
        print_searches(searches, args.search_requests, args.rounds)
        return
    if args.tokens_only:
        server.shutdown()
        tokens = await measure_token_endpoint(args.token_requests, args.rounds, args.token_rate)
        print_token_endpoint(tokens, args.token_requests, args.rounds, args.token_rate)
        print_person_reads(await measure_person_reads(args.requests, args.rounds), args.requests, args.rounds)
        return
    results = {}
    for mode in ("auth off", "built-in ES256", "external RS256"):
        results[mode] = await measure_mode(mode, args.requests, args.rounds, jwks_url, rsa_key)
    server.shutdown()
    baseline = results["auth off"]
    print(f"\nper request, in-process ASGI, median of {args.rounds} rounds of {args.requests}")
    print(f"{'mode':<18}{'create us':>12}{'read us':>12}{'create x':>10}{'read x':>9}")
    for mode, figures in results.items():
        print(
            f"{mode:<18}{figures['create']:>12.0f}{figures['read']:>12.0f}"
            f"{figures['create'] / baseline['create']:>10.2f}{figures['read'] / baseline['read']:>9.2f}"
        )
    audit = await measure_audit(args.audit_records)
    print(f"\naudit trail, {args.audit_records} records in one transaction")
    for name, value in audit.items():
        print(f"{name:<28}{value:>12.0f}")
    tokens = await measure_token_endpoint(args.token_requests, args.rounds, args.token_rate)
    print_token_endpoint(tokens, args.token_requests, args.rounds, args.token_rate)
    print_person_reads(await measure_person_reads(args.requests, args.rounds), args.requests, args.rounds)
    searches = await measure_searches(args.search_requests, args.rounds)
    print_searches(searches, args.search_requests, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
