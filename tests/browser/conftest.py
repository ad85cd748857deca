"""Browser end-to-end fixtures: the server as a real process on loopback (auth on, users and apps added
with the CLI, records seeded with a backend-services token), a tiny SMART app on another loopback port
serving SMART's own JavaScript client (npm `fhirclient`), and headless Debian chromium driven by
playwright. Skipped, saying why, when chromium is not installed (.ci/run installs it)."""

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.integration.conftest import free_port, running_server, serve_command
from tests.security.launch_support import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
FHIRCLIENT_DIR = ROOT / ".cache" / "fhirclient"
FHIRCLIENT_VERSION = "2.6.3"
FHIRCLIENT_JS = FHIRCLIENT_DIR / "node_modules" / "fhirclient" / "build" / "fhir-client.js"

if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency (pip install -e .[test])")

POLICY = {
    "rules": [
        {
            "id": "region-boundary",
            "check": "same-region",
            "tag_system": "urn:nphies-facade:region",
            "untagged": "allow",
        },
        {
            "id": "practitioner-own-organization",
            "description": "A practitioner sees the patients their organization manages.",
            "roles": ["practitioner"],
            "resource_types": ["Patient"],
            "check": "same-organization",
            "paths": {"Patient": ["managingOrganization"]},
        },
    ]
}


def fhirclient_script() -> Path:
    """SMART's JavaScript client, installed with npm into the git-ignored .cache/ on first use."""
    if not FHIRCLIENT_JS.exists():
        FHIRCLIENT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(FHIRCLIENT_DIR),
                f"fhirclient@{FHIRCLIENT_VERSION}",
            ],
            check=True,
            timeout=600,
        )
    return FHIRCLIENT_JS


LAUNCH_PAGE = """<!doctype html><meta charset="utf-8"><title>launch</title>
<script src="/fhir-client.js"></script>
<script>
const params = new URLSearchParams(location.search);
FHIR.oauth2.authorize({
  iss: params.get("iss"), clientId: "portal", scope: params.get("scope"),
  redirectUri: "/app.html", pkceMode: "required"
});
</script>"""

APP_PAGE = """<!doctype html><meta charset="utf-8"><title>app</title>
<script src="/fhir-client.js"></script>
<p id="status">waiting</p>
<script>
FHIR.oauth2.settings.refreshTokenWithClientId = true;
FHIR.oauth2.ready().then(
  client => { window.client = client; document.getElementById("status").textContent = "ready"; },
  error => { document.getElementById("status").textContent = "error: " + error.message; }
);
</script>"""


@dataclass
class AppSite:
    """The SMART app's origin: the launch page and the redirect page."""

    origin: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/app.html"


@pytest.fixture(scope="module")
def app_site() -> Iterator[AppSite]:
    script = fhirclient_script().read_bytes()
    pages = {
        "/launch.html": (LAUNCH_PAGE.encode(), "text/html"),
        "/app.html": (APP_PAGE.encode(), "text/html"),
        "/fhir-client.js": (script, "application/javascript"),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body, kind = pages.get(self.path.split("?", 1)[0], (b"not found", "text/plain"))
            self.send_response(200 if kind != "text/plain" else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield AppSite(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def cli(env: dict[str, str], *argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nphies_facade.server.cli", *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def seed_records() -> list[dict]:
    def patient(pid: str, family: str, organization: str) -> dict:
        return {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": family, "given": ["Noura" if pid == "p1" else "Huda"]}],
            "birthDate": "1990-04-01",
            "managingOrganization": {"reference": f"Organization/{organization}"},
        }

    claim = {
        "resourceType": "Claim",
        "id": "cl1",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": "2024-05-01",
        "provider": {"reference": "Organization/org-a"},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/c1"}}],
    }
    task = {
        "resourceType": "Task",
        "id": "t1",
        "status": "in-progress",
        "intent": "order",
        "focus": {"reference": "Claim/cl1"},
        "for": {"reference": "Patient/p1"},
    }
    coverage = {
        "resourceType": "Coverage",
        "id": "c1",
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/payer"}],
    }
    practitioner = {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Alqahtani"}]}
    organizations = [
        {"resourceType": "Organization", "id": o, "name": o} for o in ("org-a", "org-b", "payer")
    ]
    return [
        *organizations,
        practitioner,
        patient("p1", "Alharbi", "org-a"),
        patient("p2", "Alzahrani", "org-b"),
        coverage,
        claim,
        task,
    ]


@dataclass
class LaunchServer:
    url: str
    app: AppSite
    system_token: str  # a backend-services token with system/*.cruds, to look behind the app's back


@pytest.fixture(scope="module")
def launch_server(tmp_path_factory, app_site: AppSite) -> Iterator[LaunchServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir: Path = tmp_path_factory.mktemp("launch-server")
    policy = data_dir / "policy.json"
    policy.write_text(json.dumps(POLICY))
    env = {
        **os.environ,
        "NPHIES_FACADE_LOG_LEVEL": "warning",
        "NPHIES_FACADE_AUTH": "on",
        "NPHIES_FACADE_BASE_URL": url,
        "NPHIES_FACADE_CORS_ORIGINS": app_site.origin,
        "NPHIES_FACADE_RATE_LIMIT": "0",
        "NPHIES_FACADE_ABAC_POLICY_FILE": str(policy),
        "NPHIES_FACADE_DATA_DIR": str(data_dir),
    }
    scopes = (
        "launch/patient openid fhirUser offline_access online_access patient/Patient.rs patient/Coverage.rs "
        "patient/Claim.rs patient/Task.rs user/Patient.rs user/Coverage.rs"
    )
    cli(env, "db", "init", "--data-dir", str(data_dir))
    cli(env, "apps", "add", "--id", "portal", "--name", "Patient portal", "--redirect-uri", app_site.redirect_uri,
        "--scope", scopes)  # fmt: skip
    cli(env, "users", "add", "noura", "--fhir-user", "Patient/p1", "--role", "patient", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    cli(env, "users", "add", "dr", "--fhir-user", "Practitioner/dr1", "--role", "practitioner",
        "--organization", "org-a", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    key = ec.generate_private_key(ec.SECP384R1())
    jwks = data_dir / "seeder.jwks.json"
    jwks.write_text(
        json.dumps({"keys": [{**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k"}]})
    )
    cli(env, "clients", "add", "--id", "seeder", "--jwks", str(jwks), "--scope", "system/*.cruds")
    token = cli(env, "token", "--client", "seeder", "--scope", "system/*.cruds").strip()
    with running_server(serve_command(port, data_dir), url, env):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        for record in seed_records():
            put = httpx.put(f"{url}/{record['resourceType']}/{record['id']}", json=record, headers=headers)
            assert put.status_code in (200, 201), put.text
        yield LaunchServer(url, app_site, token)


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium) -> Iterator:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()
