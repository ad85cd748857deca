"""Search over HTTP: `GET [type]`, `POST [type]/_search`, system search `GET [base]` (`_type`) and
`POST [base]/_search`, and `$reindex` at the base and per type.

`router` goes before the REST routes (so `/Task/$reindex` is no read), `type_router` after them (so
`/_history` is no search of a type `_history`)."""

from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..resources.errors import error
from ..resources.operations_access import OperationDeclaration
from ..resources.searching import SearchOptions
from ..resources.service import FhirService
from ..resources.store import StoreTransaction
from ..resources.types import is_supported, supported_types
from .negotiation import read_body
from .responses import FhirResponse
from .rest import base_url
from .searchset import searchset_bundle
from .settings import Settings

router = APIRouter()
# `GET [type]` goes after the other routes, so `/_history`, `/metadata` ... keep their own handlers.
type_router = APIRouter()

SEARCH_INTERACTIONS = ("search-type",)
SYSTEM_SEARCH_INTERACTIONS = ("search-system",)
FORM = "application/x-www-form-urlencoded"
REINDEX = OperationDeclaration(
    "reindex",
    None,
    "https://github.com/nphies-facade/OperationDefinition/reindex",
    "POST starts reindexing every type (or the type in the URL, or the `type` parameters); GET reports "
    "the jobs; also at [type]/$reindex",
    admin=True,
)


def _service(request: Request) -> FhirService:
    return request.app.state.service


def _strict(request: Request) -> bool:
    for part in request.headers.get("prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "handling":
            return value.strip().strip('"').lower() == "strict"
    return False


def _options(request: Request, strict: bool) -> SearchOptions:
    settings: Settings = request.app.state.settings
    return SearchOptions(strict, base_url(request), settings.default_page_size, settings.max_page_size)


def _check_type(resource_type: str) -> None:
    if not is_supported(resource_type):
        raise error(404, "not-found", f"Unknown resource type '{resource_type}'")


async def _form(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if body and content_type != FORM:
        raise error(415, "not-supported", f"POST _search takes {FORM}, not {content_type or '(none)'}")
    return parse_qsl(body.decode(), keep_blank_values=True)


async def _search(
    request: Request, types: tuple[str, ...], params: list[tuple[str, str]], path: str
) -> Response:
    result = await _service(request).search(types, params, _options(request, _strict(request)))
    return FhirResponse(searchset_bundle(base_url(request), path, result))


@router.get("/")
async def system_search(request: Request) -> Response:
    return await _search(request, (), list(request.query_params.multi_items()), "")


@router.post("/_search")
async def system_search_form(request: Request) -> Response:
    params = list(request.query_params.multi_items()) + await _form(request)
    return await _search(request, (), params, "")


@router.api_route("/$reindex", methods=["GET", "POST"])
async def reindex_all(request: Request) -> Response:
    return await _reindex(request, None)


@router.api_route("/{resource_type}/$reindex", methods=["GET", "POST"])
async def reindex_type(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    return await _reindex(request, resource_type)


async def _reindex(request: Request, resource_type: str | None) -> Response:
    """POST starts a job (all types, the type in the URL or `type` parameters); GET reports the jobs."""
    service = _service(request)
    await service.authorize_operation(request.state.context, REINDEX)
    reindexer = service.searching.reindexer
    if request.method == "POST":
        named = tuple(v for k, v in request.query_params.multi_items() if k == "type")
        for name in named:
            _check_type(name)
        types = (resource_type,) if resource_type else named or tuple(sorted(supported_types()))
        jobs = [reindexer.start(types)]
    else:
        jobs = [j for j in reindexer.jobs() if resource_type is None or resource_type in j.types]
    return FhirResponse({"resourceType": "Parameters", "parameter": [j.parameters() for j in jobs]})


@type_router.get("/{resource_type}")
async def type_search(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    return await _search(request, (resource_type,), list(request.query_params.multi_items()), resource_type)


@router.post("/{resource_type}/_search")
async def type_search_form(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    params = list(request.query_params.multi_items()) + await _form(request)
    return await _search(request, (resource_type,), params, resource_type)


def bundle_searcher(request: Request):
    """The search a batch or transaction runs for its GET entries (inside the transaction for the latter)."""
    service, options = _service(request), _options(request, strict=False)
    base = base_url(request)

    async def search(resource_type: str | None, query: str, tx: StoreTransaction | None) -> dict:
        types = (resource_type,) if resource_type else ()
        params = parse_qsl(query, keep_blank_values=True)
        result = await service.search(types, params, options, ctx=request.state.context, tx=tx)
        return searchset_bundle(base, resource_type or "", result)

    return search
