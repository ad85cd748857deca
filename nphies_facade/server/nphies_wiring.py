"""Builds the NPHIES side of the server from its settings: the gateway, the operations, and in the
embedded default the sandbox simulator.

Without NPHIES_FACADE_NPHIES_URL the NPHIES simulator is mounted at /_simulator/nphies (its control API
for tests included) and the gateway talks to that same simulator instance in process, through an httpx
ASGI transport: a loopback call to our own port would pass our authentication and rate limit, and with
several worker processes could reach another process's simulator, whose in-memory state differs.
"""

import logging

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from ..nphies import canonical
from ..nphies.gateway import FHIR_JSON, GatewaySettings, NphiesGateway
from ..nphies.messages import ProviderConfig
from ..nphies.simulator import SimulatorSettings, create_simulator_app
from ..operations import NphiesOperations, OperationsConfig
from ..resources.clock import Clock
from ..resources.service import FhirService
from .settings import Settings

log = logging.getLogger("nphies_facade.server")

SIMULATOR_PATH = "/_simulator/nphies"


def sandbox(settings: Settings) -> bool:
    return not settings.nphies_url


def simulator_app(settings: Settings) -> ASGIApp | None:
    """The sandbox simulator to mount, or None when a real NPHIES URL is configured."""
    if not sandbox(settings):
        return None
    path = settings.nphies_simulator_config
    return create_simulator_app(SimulatorSettings.from_file(path) if path else SimulatorSettings())


def gateway_url(settings: Settings) -> str:
    return settings.nphies_url or f"{settings.public_base_url}{SIMULATOR_PATH}"


def schedule(name: str, value: str) -> tuple[float, ...]:
    """Seconds from a comma-separated setting like `1,2,5,10`."""
    try:
        delays = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"NPHIES_FACADE_{name.upper()} is a list of seconds like 1,2,5,10, not {value!r}")
    return delays


def operations_config(settings: Settings) -> OperationsConfig:
    provider = ProviderConfig(
        provider_license=settings.nphies_provider_license,
        provider_name=settings.nphies_provider_name,
        payer_license=settings.nphies_payer_license,
        source_endpoint=settings.nphies_source_endpoint or settings.public_base_url,
        payer_name=settings.nphies_payer_name,
        provider_type=settings.nphies_provider_type or None,
        nphies_endpoint=canonical.NPHIES_ENDPOINT,
    )
    gateway = GatewaySettings(
        base_url=gateway_url(settings),
        timeout=settings.nphies_timeout,
        connect_timeout=settings.nphies_connect_timeout,
        retries=settings.nphies_retries,
        backoff=settings.nphies_backoff,
        max_backoff=settings.nphies_max_backoff,
        cert_file=str(settings.nphies_cert_file) if settings.nphies_cert_file else None,
        key_file=str(settings.nphies_key_file) if settings.nphies_key_file else None,
        ca_file=str(settings.nphies_ca_file) if settings.nphies_ca_file else None,
        headers={name: value.get_secret_value() for name, value in settings.nphies_headers.items()},
    )
    return OperationsConfig(
        provider=provider,
        gateway=gateway,
        sandbox=sandbox(settings),
        eligibility_ttl=settings.nphies_eligibility_cache_ttl,
        poll_schedule=schedule("nphies_poll_schedule", settings.nphies_poll_schedule),
        retry_backoff=schedule("nphies_retry_schedule", settings.nphies_retry_schedule),
        answer_deadline=settings.nphies_answer_deadline,
        send_attempts=settings.nphies_send_attempts,
        step_concurrency=settings.nphies_step_concurrency,
        sweep_interval=settings.nphies_sweep_interval,
    )


def _under(prefix: str, app: ASGIApp) -> ASGIApp:
    """The app as mounted at `prefix`: requests for `{prefix}/x` reach it as `/x`."""

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(prefix):
            scope = {**scope, "path": path[len(prefix) :] or "/", "raw_path": path[len(prefix) :].encode()}
        await app(scope, receive, send)

    return mounted


def nphies_operations(
    settings: Settings,
    service: FhirService,
    clock: Clock,
    simulator: ASGIApp | None,
    *,
    runs_steps: bool = True,
) -> NphiesOperations:
    """`runs_steps`: whether this process runs and sweeps $submit steps (with Redis, only the worker)."""
    config = operations_config(settings)
    client = None
    if simulator is not None:
        transport = httpx.ASGITransport(app=_under(SIMULATOR_PATH, simulator))  # type: ignore[arg-type]
        client = httpx.AsyncClient(
            transport=transport, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        )
    gateway = NphiesGateway(config.gateway, client)
    return NphiesOperations(service, gateway, config, clock, settings.redis_url, runs_steps=runs_steps)


def log_target(settings: Settings, worker: bool = False) -> None:
    """Says at start-up, unmistakably, whether messages go to NPHIES or to the sandbox simulator. A
    worker's sandbox simulator is its own, in its process: not the one the API server mounts."""
    if sandbox(settings) and worker:
        log.warning(
            "NPHIES SANDBOX: this worker sends messages to its own embedded simulator (in this process, "
            "not the API server's at %s), not to NPHIES. Run `nphies-facade simulator` and point "
            "NPHIES_FACADE_NPHIES_URL of the API servers and workers at it to share one.",
            gateway_url(settings),
        )
    elif sandbox(settings):
        log.warning(
            "NPHIES SANDBOX: messages go to the embedded simulator at %s (in process), not to NPHIES. "
            "Set NPHIES_FACADE_NPHIES_URL to exchange with NPHIES.",
            gateway_url(settings),
        )
        if settings.workers > 1:
            log.warning(
                "the sandbox simulator keeps its state per process; with %d workers each has its own "
                "(run `nphies-facade simulator` and point NPHIES_FACADE_NPHIES_URL at it instead)",
                settings.workers,
            )
    else:
        log.info(
            "NPHIES: messages go to %s as provider %s",
            gateway_url(settings),
            settings.nphies_provider_license,
        )


def capability_note(settings: Settings) -> dict:
    """Where NPHIES messages go, for the CapabilityStatement."""
    return {"sandbox": sandbox(settings), "endpoint": gateway_url(settings)}
