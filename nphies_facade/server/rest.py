"""The FHIR REST interactions at the server root: create, read, vread, update, patch, delete, history."""

from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..resources.context import RequestContext
from ..resources.errors import bad_request, error, not_found
from ..resources.service import FhirService, WriteResult
from ..resources.types import is_supported
from ..resources.validation import parse_json
from .history import history_bundle, history_query
from .negotiation import JSON_PATCH, MERGE_PATCH, PATCH_TYPES, check_content_type, media_type, read_body
from .responses import FhirResponse, etag, version_headers, written_response
from .settings import Settings

router = APIRouter()

# Parameters of a URL that shape the answer rather than select resources.
FORMAT_PARAMETERS = frozenset({"_format", "_pretty"})
INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create")
SYSTEM_INTERACTIONS = ("history-system",)


def _service(request: Request) -> FhirService:
    return request.app.state.service


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _context(request: Request) -> RequestContext:
    return request.state.context


def base_url(request: Request) -> str:
    return _settings(request).base_url or str(request.base_url).rstrip("/")


def _check_type(resource_type: str) -> None:
    if not is_supported(resource_type):
        raise not_found(f"Unknown resource type '{resource_type}'")


async def _json_body(request: Request, allowed=None) -> object:
    if allowed is None:
        check_content_type(request)
    else:
        check_content_type(request, allowed)
    return parse_json(await read_body(request, _settings(request).max_body_bytes))


def _written(request: Request, result: WriteResult) -> Response:
    if result.version is None or result.version.deleted:
        return Response(status_code=204)
    stored = result.version
    location = f"{base_url(request)}/{stored.resource_type}/{stored.id}/_history/{stored.version}"
    return written_response(stored, result.status, request.headers.get("prefer"), location)


def _criteria(request: Request) -> str:
    return request.url.query


def _if_none_exist(request: Request) -> str | None:
    """A create's conditions: `If-None-Exist`, or the search parameters of its URL
    (`POST /Patient?identifier=...`, as fhirpy's get_or_create sends them)."""
    header = request.headers.get("if-none-exist")
    query = [
        (name, value)
        for name, value in parse_qsl(request.url.query, keep_blank_values=True)
        if name not in FORMAT_PARAMETERS
    ]
    if not query:
        return header
    if header is not None:
        raise bad_request(
            "Give a conditional create's criteria once: in If-None-Exist or in the URL, not both"
        )
    return urlencode(query)


async def _patch_document(request: Request, resource_type: str) -> tuple[object, bool]:
    """The body of a PATCH and whether it is a JSON Merge Patch (RFC 7386) rather than a JSON Patch
    (RFC 6902): the media type says, and plain JSON is a merge patch when it is an object."""
    document = await _json_body(request, PATCH_TYPES)
    kind = media_type(request.headers["content-type"])
    if kind in (JSON_PATCH, MERGE_PATCH):
        return document, kind == MERGE_PATCH
    if isinstance(document, list):
        return document, False
    fhirpath_patch = isinstance(document, dict) and document.get("resourceType") == "Parameters"
    if fhirpath_patch and resource_type != "Parameters":
        raise error(
            415,
            "not-supported",
            f"FHIRPath Patch (a Parameters body) is not supported here; send a JSON Patch ({JSON_PATCH}) "
            f"or a JSON Merge Patch ({MERGE_PATCH})",
        )
    return document, True


@router.get("/_history")
async def system_history(request: Request) -> Response:
    settings = _settings(request)
    query = history_query(request, None, None, settings.default_page_size, settings.max_page_size)
    versions = await _service(request).history(query)
    return FhirResponse(history_bundle(base_url(request), "_history", query, versions))


@router.get("/{resource_type}/_history")
async def type_history(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    settings = _settings(request)
    query = history_query(request, resource_type, None, settings.default_page_size, settings.max_page_size)
    versions = await _service(request).history(query)
    return FhirResponse(history_bundle(base_url(request), f"{resource_type}/_history", query, versions))


@router.get("/{resource_type}/{resource_id}/_history")
async def instance_history(request: Request, resource_type: str, resource_id: str) -> Response:
    _check_type(resource_type)
    settings = _settings(request)
    query = history_query(
        request, resource_type, resource_id, settings.default_page_size, settings.max_page_size
    )
    versions = await _service(request).history(query)
    path = f"{resource_type}/{resource_id}/_history"
    return FhirResponse(history_bundle(base_url(request), path, query, versions))


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
async def vread(request: Request, resource_type: str, resource_id: str, version_id: str) -> Response:
    _check_type(resource_type)
    stored = await _service(request).vread(resource_type, resource_id, version_id)
    return FhirResponse(stored.body, 200, version_headers(stored))


@router.get("/{resource_type}/{resource_id}")
async def read(request: Request, resource_type: str, resource_id: str) -> Response:
    _check_type(resource_type)
    stored = await _service(request).read(resource_type, resource_id)
    headers = version_headers(stored)
    if request.headers.get("if-none-match", "").strip() == etag(stored.version):
        return Response(status_code=304, headers=headers)
    return FhirResponse(stored.body, 200, headers)


@router.post("/{resource_type}")
async def create(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    body = await _json_body(request)
    service = _service(request)
    service.check_target(body, resource_type, None)
    result = await service.create(_context(request), body, if_none_exist=_if_none_exist(request))
    return _written(request, result)


@router.put("/{resource_type}/{resource_id}")
async def update(request: Request, resource_type: str, resource_id: str) -> Response:
    _check_type(resource_type)
    body = await _json_body(request)
    result = await _service(request).update(
        _context(request), resource_type, resource_id, body, if_match=request.headers.get("if-match")
    )
    return _written(request, result)


@router.put("/{resource_type}")
async def conditional_update(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    body = await _json_body(request)
    result = await _service(request).conditional_update(
        _context(request), resource_type, _criteria(request), body, if_match=request.headers.get("if-match")
    )
    return _written(request, result)


@router.patch("/{resource_type}/{resource_id}")
async def patch(request: Request, resource_type: str, resource_id: str) -> Response:
    _check_type(resource_type)
    document, merge = await _patch_document(request, resource_type)
    result = await _service(request).patch(
        _context(request),
        resource_type,
        resource_id,
        document,
        if_match=request.headers.get("if-match"),
        merge=merge,
    )
    return _written(request, result)


@router.patch("/{resource_type}")
async def conditional_patch(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    document, merge = await _patch_document(request, resource_type)
    result = await _service(request).conditional_patch(
        _context(request),
        resource_type,
        _criteria(request),
        document,
        if_match=request.headers.get("if-match"),
        merge=merge,
    )
    return _written(request, result)


@router.delete("/{resource_type}/{resource_id}")
async def delete(request: Request, resource_type: str, resource_id: str) -> Response:
    _check_type(resource_type)
    await _service(request).delete(
        _context(request), resource_type, resource_id, if_match=request.headers.get("if-match")
    )
    return Response(status_code=204)


@router.delete("/{resource_type}")
async def conditional_delete(request: Request, resource_type: str) -> Response:
    _check_type(resource_type)
    await _service(request).conditional_delete(_context(request), resource_type, _criteria(request))
    return Response(status_code=204)
