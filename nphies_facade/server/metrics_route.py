"""`GET /metrics`: the Prometheus text exposition of the workflow, exchange and HTTP metrics.

Callers need a system scope (a monitoring client's backend-services token); with the `metrics_auth`
setting off the path is open, for a scraper that cannot hold a token on a private network.
"""

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..resources.access import forbidden
from ..resources.context import RequestContext
from ..workflows.metrics import CONTENT_TYPE, render

router = APIRouter()


def _may_read_metrics(request: Request) -> bool:
    if not request.app.state.settings.metrics_auth:
        return True
    ctx: RequestContext = request.state.context
    return any(scope.startswith("system/") for scope in ctx.scopes)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not _may_read_metrics(request):
        raise forbidden("GET /metrics needs a system scope (e.g. system/*.rs)")
    return Response(await asyncio.to_thread(render), media_type=CONTENT_TYPE)
