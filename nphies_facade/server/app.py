"""The app factory: wires settings, store, search extraction and FhirService into a FastAPI app."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from ..resources.clock import Clock, fhir_instant, system_clock
from ..resources.context import RequestContext
from ..resources.errors import FhirError
from ..resources.search.definitions import SearchRegistry
from ..resources.search.extraction import Extractor
from ..resources.service import FhirService
from ..resources.sqlite.store import SqliteStore
from ..subscriptions.runtime import SubscriptionRuntime
from . import bundle_routes, errors, rest, subscription_routes
from .capability import capability_statement
from .negotiation import check_accept
from .responses import FhirResponse
from .settings import Settings

log = logging.getLogger("nphies_facade.server")

TRACE_HEADER = "x-request-id"


def _trace_id(request: Request) -> str:
    given = request.headers.get(TRACE_HEADER, "")
    return given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else RequestContext().trace_id


def create_app(settings: Settings | None = None, clock: Clock = system_clock) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SqliteStore(settings.database_path)
        await store.open()
        registry = SearchRegistry()
        app.state.store = store
        app.state.registry = registry
        app.state.service = FhirService(store, Extractor(registry), clock)
        subscriptions = SubscriptionRuntime(
            app.state.service, settings.subscription_config(), clock, relay=settings.redis_url is None
        )
        app.state.subscriptions = subscriptions
        await subscriptions.start()
        try:
            yield
        finally:
            await subscriptions.stop()
            await store.close()

    app = FastAPI(title="nphies-facade", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    errors.install(app)

    @app.middleware("http")
    async def request_context(request: Request, call_next) -> Response:
        trace_id = _trace_id(request)
        request.state.trace_id = trace_id
        request.state.context = RequestContext(actor="anonymous", trace_id=trace_id)
        try:
            check_accept(request)
        except FhirError as exc:
            return FhirResponse(exc.outcome(), exc.status, {"X-Request-Id": trace_id})
        response = await call_next(request)
        response.headers["X-Request-Id"] = trace_id
        return response

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
            rest.base_url(request), request.app.state.registry, fhir_instant(clock())
        )
        return FhirResponse(statement)

    app.include_router(subscription_routes.router)
    app.include_router(bundle_routes.router)
    app.include_router(rest.router)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
