"""The simulator's HTTP server: POST /$process-message like NPHIES, plus a small control API for tests."""

import asyncio
import hashlib
import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .catalog import error
from .faults import FaultInjector
from .payer import Payer
from .responses import operation_outcome
from .settings import FaultRule, SimulatorSettings

log = logging.getLogger("nphies_facade.nphies.simulator")

FHIR_JSON = "application/fhir+json"
# The longest a "timeout" fault holds a connection when it names no delay: past NPHIES's 60 s session.
DEFAULT_HANG = 65.0


def create_simulator_app(settings: SimulatorSettings | None = None) -> Starlette:
    """An ASGI app answering $process-message as NPHIES and the test payer would (state in memory)."""
    settings = settings or SimulatorSettings()
    payer = Payer(settings)
    faults = FaultInjector(list(settings.faults), settings.seed)

    async def process_message(request: Request) -> Response:
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _fhir(400, operation_outcome([error("GE-00013")], "structure"))
        chosen = faults.pick(*_event_and_sender(body))
        for fault in chosen:
            if fault.kind == "latency":
                await asyncio.sleep(fault.delay)
        before = [f for f in chosen if f.kind in ("error", "timeout") and not f.after_processing]
        if before:
            return await _fail(request, before[0])
        try:
            reply = payer.process(body, hashlib.sha256(raw).hexdigest())
        except Exception:
            log.exception("the simulator failed on a message")
            return _fhir(500, operation_outcome([error("GE-00001")], "exception"))
        after = [f for f in chosen if f.kind in ("error", "timeout") and f.after_processing]
        if after:
            return await _fail(request, after[0])
        content = orjson.dumps(reply.body)
        if any(f.kind == "malformed" for f in chosen):
            return Response(content[: len(content) // 2], 200, media_type=FHIR_JSON)
        return Response(content, reply.status, media_type=FHIR_JSON)

    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def state(request: Request) -> Response:
        return _json(
            {
                "handled": dict(payer.handled),
                "claims": len(payer.claims),
                "queued": len(payer.queue),
                "faults": [fault.__dict__ for fault in faults.rules],
            }
        )

    async def set_faults(request: Request) -> Response:
        rules = [FaultRule.from_dict(item) for item in orjson.loads(await request.body() or b"[]")]
        faults.replace(rules)
        return _json({"faults": len(rules)})

    async def clear_faults(request: Request) -> Response:
        faults.replace([])
        return _json({"faults": 0})

    async def reset(request: Request) -> Response:
        payer.reset()
        return _json({"reset": True})

    async def advanced_authorization(request: Request) -> Response:
        data = orjson.loads(await request.body() or b"{}")
        identifier = payer.add_advanced_authorization(data["provider"], data.get("payer", "INS-FHIR"))
        return _json({"identifier": identifier.to_fhir()})

    routes = [
        Route("/$process-message", process_message, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/__simulator/state", state, methods=["GET"]),
        Route("/__simulator/faults", set_faults, methods=["PUT"]),
        Route("/__simulator/faults", clear_faults, methods=["DELETE"]),
        Route("/__simulator/reset", reset, methods=["POST"]),
        Route("/__simulator/advanced-authorization", advanced_authorization, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.payer = payer
    app.state.faults = faults
    return app


def run_simulator(
    host: str = "127.0.0.1", port: int = 9090, settings: SimulatorSettings | None = None
) -> None:
    """Serves the simulator with uvicorn until interrupted; says first where it listens."""
    import uvicorn

    base = f"http://{host}:{port}"
    print(
        f"nphies-facade simulator: NPHIES simulator listening on {base} "
        f"(POST {base}/$process-message; faults at {base}/__simulator/faults; point "
        f"NPHIES_FACADE_NPHIES_URL at {base})",
        flush=True,
    )
    uvicorn.run(create_simulator_app(settings), host=host, port=port, log_level="warning", access_log=False)


async def _fail(request: Request, fault: FaultRule) -> Response:
    if fault.kind == "timeout":
        await _hold(request, fault.delay or DEFAULT_HANG)
        return _fhir(504, operation_outcome([error("GE-00014")], "timeout"))
    return _fhir(fault.status, operation_outcome([error("GE-00017")], "transient"))


async def _hold(request: Request, seconds: float) -> None:
    """Keeps the connection open for `seconds`, or until the client gives up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
        if await request.is_disconnected():
            return


def _event_and_sender(body: Any) -> tuple[str | None, str | None]:
    """Event code and sender license of a message, read without validating it (fault matching only)."""
    try:
        header = body["entry"][0]["resource"]
        return header["eventCoding"]["code"], header["sender"]["identifier"]["value"]
    except (KeyError, IndexError, TypeError):
        return None, None


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Unknown paths and methods answer an OperationOutcome, as NPHIES does, not Starlette's plain text."""
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    issue = {
        "severity": "error",
        "code": code,
        "diagnostics": f"{request.method} {request.url.path}: {exc.detail}",
    }
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": [issue]})
    return Response(body, exc.status_code, headers=exc.headers, media_type=FHIR_JSON)


def _fhir(status: int, body: dict) -> Response:
    return Response(orjson.dumps(body), status, media_type=FHIR_JSON)


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), 200, media_type="application/json")
