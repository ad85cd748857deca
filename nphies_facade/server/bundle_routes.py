"""POST [base]: batch and transaction Bundles are processed; other Bundles are stored like POST /Bundle."""

from functools import partial

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..resources.bundle_entries import check_envelope
from ..resources.bundle_responses import RETURN_CHOICES
from ..resources.bundles import BundleOptions, BundleProcessor
from ..resources.errors import bad_request
from ..resources.service import FhirService
from ..resources.validation import parse_json
from .history import history_bundle
from .negotiation import check_content_type, read_body
from .responses import FhirResponse, prefer_return, written_response
from .rest import base_url
from .search_routes import bundle_searcher
from .settings import Settings

router = APIRouter()

BUNDLE_INTERACTIONS = ("transaction", "batch")
PROCESSED = frozenset(BUNDLE_INTERACTIONS)


def _require_bundle(body: object) -> dict:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise bad_request(
            "POST to the server base takes a Bundle (a batch or a transaction); to create another "
            "resource, POST it to [base]/{resourceType}",
            "resourceType",
            code="structure",
        )
    return body


def _options(request: Request) -> BundleOptions:
    settings: Settings = request.app.state.settings
    prefer = prefer_return(request.headers.get("prefer"))
    return BundleOptions(
        base=base_url(request),
        prefer=prefer if prefer in RETURN_CHOICES else "representation",
        max_entries=settings.max_bundle_entries,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
    )


async def _store(request: Request, service: FhirService, bundle: dict) -> Response:
    result = await service.create(request.state.context, bundle)
    stored = result.version
    location = f"{base_url(request)}/Bundle/{stored.id}/_history/{stored.version}"
    return written_response(stored, result.status, request.headers.get("prefer"), location)


@router.post("/")
async def post_bundle(request: Request) -> Response:
    check_content_type(request)
    body = parse_json(await read_body(request, request.app.state.settings.max_body_bytes))
    bundle = _require_bundle(body)
    kind = check_envelope(bundle)
    service: FhirService = request.app.state.service
    if kind == "message":
        raise bad_request(
            "A message Bundle is not processed at the server base; POST it to [base]/$process-message",
            "Bundle.type",
            code="not-supported",
        )
    if kind not in PROCESSED:
        return await _store(request, service, bundle)
    options = _options(request)
    processor = BundleProcessor(
        service,
        request.state.context,
        options,
        partial(history_bundle, options.base),
        bundle_searcher(request),
    )
    return FhirResponse(await processor.process(bundle))
