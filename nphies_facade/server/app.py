"""The app factory: wires settings, store, search extraction and FhirService into a FastAPI app."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from ..resources.clock import Clock, fhir_instant, system_clock
from ..resources.search.definitions import SearchRegistry
from ..resources.search.extraction import Extractor
from ..resources.service import FhirService
from ..resources.sqlite.store import SqliteStore
from ..resources.store import Store
from ..resources.tracing import configure_logging
from ..subscriptions.runtime import SubscriptionRuntime
from . import (
    bundle_routes,
    errors,
    metrics_route,
    nphies_wiring,
    operation_catalog,
    operation_routes,
    rest,
    search_routes,
    subscription_routes,
    validate_routes,
    workflow_routes,
    workflow_wiring,
)
from .auth import audit_routes, launch_routes
from .auth import routes as auth_routes
from .auth.hardening import JsonLimits
from .auth.runtime import SecurityRuntime
from .auth.smart import capability_security
from .capability import capability_statement
from .cors import FhirCORSMiddleware
from .fast_routes import FastRoutes
from .request_context import RequestContextMiddleware
from .responses import FhirResponse
from .settings import Settings

log = logging.getLogger("nphies_facade.server")

SEARCHABLE = {"number", "date", "string", "token", "reference", "composite", "quantity", "uri"}


def store_for(settings: Settings) -> Store:
    """MongoDB when NPHIES_FACADE_MONGODB_URL is set (production), else the embedded SQLite file."""
    if settings.mongodb_url:
        from ..resources.mongo.store import MongoStore  # pymongo is needed by this backend only

        return MongoStore(settings.mongodb_url, settings.mongodb_database)
    return SqliteStore(settings.database_path)


def settle_garbage_collection() -> None:
    """What start-up loaded lives as long as the process: frozen, the collector no longer walks it, and a
    larger youngest generation is collected less often. Together they halved the slowest requests' time
    (p99) on the CRUD benchmark, where collections had been the longest pauses."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def create_app(settings: Settings | None = None, clock: Clock = system_clock) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = store_for(settings)
        await store.open()
        registry = SearchRegistry()
        extractor = Extractor(registry)
        security = SecurityRuntime(settings, store, extractor, clock)
        app.state.store = store
        app.state.registry = registry
        app.state.security = security
        app.state.service = FhirService(
            store,
            extractor,
            clock,
            security.authorizer,
            security.auditor,
            validate_own=settings.validate_own_resources,
            referential_integrity=settings.referential_integrity == "strict",
        )
        security.start(app.state.service)
        await app.state.service.open()
        subscriptions = SubscriptionRuntime(
            app.state.service, settings.subscription_config(), clock, relay=settings.redis_url is None
        )
        app.state.subscriptions = subscriptions
        await subscriptions.start()
        app.state.nphies = nphies_wiring.nphies_operations(
            settings, app.state.service, clock, simulator, runs_steps=settings.redis_url is None
        )
        await app.state.nphies.start()
        app.state.workflows = workflow_wiring.workflow_engine(
            settings, app.state.service, clock, app.state.nphies, runs_jobs=settings.redis_url is None
        )
        await app.state.workflows.start()
        nphies_wiring.log_target(settings)
        if settings.gc_tuning:
            settle_garbage_collection()
        try:
            yield
        finally:
            # Subscriptions first: their trigger jobs start workflow instances, so the engine outlives them.
            await subscriptions.stop()
            await app.state.workflows.stop()
            await app.state.nphies.stop()
            await security.stop()
            await app.state.service.close()
            await store.close()

    app = FastAPI(
        title="nphies-facade",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks (unused: tracing is traceparent and /metrics) cost a check a request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    errors.install(app)
    simulator = nphies_wiring.simulator_app(settings)
    app.add_middleware(FastRoutes)  # innermost: GET [type] and [type]/[id] skip the route table
    app.add_middleware(JsonLimits, max_depth=settings.max_json_depth, max_bytes=settings.max_body_bytes)

    app.add_middleware(RequestContextMiddleware)

    if settings.cors_origins.strip():
        app.add_middleware(
            FhirCORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Accept",
                "If-Match",
                "If-None-Match",
                "If-None-Exist",
            ]
            + ["Prefer", "X-Request-Id", "traceparent"],
            expose_headers=["ETag", "Location", "Content-Location", "Last-Modified", "X-Request-Id"]
            + ["WWW-Authenticate", "Retry-After", "traceparent"],
            max_age=600,
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return FhirResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        ready = await request.app.state.store.ping()
        return FhirResponse({"status": "ready" if ready else "store unreachable"}, 200 if ready else 503)

    @app.get("/metadata")
    async def metadata(request: Request) -> Response:
        statement = capability_statement(
            rest.base_url(request),
            request.app.state.registry,
            fhir_instant(clock()),
            search_types=SEARCHABLE,
            operations=operation_catalog.system_operations(),
            security=capability_security(request.app.state.security),
            resource_operations=operation_catalog.resource_operations(),
            nphies=nphies_wiring.capability_note(settings),
            every_type_operations=[validate_routes.VALIDATE_OPERATION],
        )
        return FhirResponse(statement)

    app.include_router(auth_routes.router)
    app.include_router(launch_routes.router)
    app.include_router(metrics_route.router)
    app.include_router(audit_routes.router)
    app.include_router(subscription_routes.router)
    app.include_router(bundle_routes.router)
    app.include_router(search_routes.router)
    if simulator is not None:
        app.mount(nphies_wiring.SIMULATOR_PATH, simulator)
    app.include_router(operation_routes.router)
    app.include_router(validate_routes.router)
    app.include_router(workflow_routes.router)
    app.include_router(rest.router)
    app.include_router(search_routes.type_router)
    return app


def create_app_from_env() -> FastAPI:
    settings = Settings()
    configure_logging(
        settings.log_level, settings.log_format, settings.access_log
    )  # in each server process `serve --workers N` starts
    return create_app(settings)
