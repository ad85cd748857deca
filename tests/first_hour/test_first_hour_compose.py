"""docker-compose.yml is valid (`docker-compose config -q`) and production-shaped: the public base URL on
api and worker, MongoDB and Redis reachable from the stack (MongoDB also from the host's loopback) and only
with credentials that have no defaults, a health check on every long-running service, the NPHIES simulator
as a service of its own, named volumes for what must survive. Skipped where docker-compose is missing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed"
)

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "MONGO_ROOT_PASSWORD": "root-secret",
    "MONGO_FACADE_PASSWORD": "facade-secret",
    "REDIS_PASSWORD": "redis-secret",
}
LONG_RUNNING = ("mongo", "redis", "nphies-simulator", "api", "worker")


def compose(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("NPHIES_FACADE_")}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def stack() -> dict:
    resolved = compose("config", **SECRETS)
    assert resolved.returncode == 0, resolved.stderr
    return yaml.safe_load(resolved.stdout)


def test_compose_file_is_valid():
    checked = compose("config", "-q", **SECRETS)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_every_password_must_be_given(missing):
    given = {k: v for k, v in SECRETS.items() if k != missing}
    refused = compose("config", "-q", **given)
    assert refused.returncode != 0 and missing in refused.stderr


def test_api_and_worker_advertise_the_public_base_url_and_use_the_simulator_service(stack):
    services = stack["services"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["NPHIES_FACADE_BASE_URL"] == "http://localhost:8080"
        assert env["NPHIES_FACADE_NPHIES_URL"] == "http://nphies-simulator:9090"
    assert "simulator" in services["nphies-simulator"]["command"]
    public = compose("config", **SECRETS, NPHIES_FACADE_BASE_URL="https://fhir.hospital.example")
    assert yaml.safe_load(public.stdout)["services"]["worker"]["environment"]["NPHIES_FACADE_BASE_URL"] == (
        "https://fhir.hospital.example"
    )


def test_mongodb_and_redis_are_internal_and_need_credentials(stack):
    services = stack["services"]
    assert "ports" not in services["redis"] and "ports" not in services["nphies-simulator"]
    for port in services["mongo"].get("ports", []):
        host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", port
    assert services["mongo"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == "root-secret"
    assert "--keyFile" in services["mongo"]["command"]
    assert "requirepass" in " ".join(services["redis"]["command"])
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["NPHIES_FACADE_MONGODB_URL"].startswith("mongodb://facade:facade-secret@mongo:27017/")
        assert env["NPHIES_FACADE_REDIS_URL"] == "redis://:redis-secret@redis:6379/0"
    init = " ".join(services["mongo-init"]["command"])
    assert "createUser" in init and "process.env.MONGO_FACADE_PASSWORD" in init


def test_every_long_running_service_has_a_health_check(stack):
    services = stack["services"]
    assert set(LONG_RUNNING) <= set(services)
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), name
    assert services["api"]["depends_on"]["nphies-simulator"]["condition"] == "service_healthy"


def test_data_lives_on_named_volumes(stack):
    assert {"mongo-data", "mongo-config", "redis-data", "api-data"} <= set(stack["volumes"])
    services = stack["services"]
    for name, target in (("mongo", "/data/db"), ("redis", "/data"), ("api", "/data"), ("worker", "/data")):
        mounts = services[name]["volumes"]
        targets = [m.split(":")[1] if isinstance(m, str) else m["target"] for m in mounts]
        assert target in targets, name
