"""The HTTP endpoints of SMART App Launch: authorize, login, patient picker and consent pages, EHR launch
registration, token introspection and revocation, the pages' style sheet, OpenID discovery."""

from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from ...resources.audit import MINOR_FAILURE, SUCCESS
from ...resources.context import RequestContext
from ...resources.errors import FhirError
from ..negotiation import read_body
from .authorize import MAX_FORM_BYTES, PageError
from .middleware import Unauthenticated, bearer_token
from .pages import STYLE_SHEET
from .runtime import SecurityRuntime
from .smart import openid_configuration
from .token_endpoint import OAuthError, parse_form

router = APIRouter()

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
LAUNCH_SCOPE = "launch"


def _security(request: Request) -> SecurityRuntime:
    return request.app.state.security


async def _page(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except PageError as error:
        return _security(request).authorization.error_page(error)


@router.get("/auth/authorize", include_in_schema=False)
async def authorize(request: Request) -> Response:
    flow = _security(request).authorization
    return await _page(request, lambda: flow.authorize(request, request.state.trace_id))


@router.get("/auth/login", include_in_schema=False)
async def login_page(request: Request) -> Response:
    return await _page(request, lambda: _security(request).authorization.login_page(request))


async def _form_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM:
        raise PageError("forbidden_form", 400)
    return await read_body(request, MAX_FORM_BYTES)


@router.post("/auth/login", include_in_schema=False)
async def login(request: Request) -> Response:
    flow = _security(request).authorization

    async def work() -> Response:
        return await flow.login(request, await _form_body(request), request.state.trace_id)

    return await _page(request, work)


@router.get("/auth/picker", include_in_schema=False)
async def picker_page(request: Request) -> Response:
    return await _page(request, lambda: _security(request).authorization.picker_page(request))


@router.post("/auth/picker", include_in_schema=False)
async def pick(request: Request) -> Response:
    flow = _security(request).authorization

    async def work() -> Response:
        return await flow.pick(request, await _form_body(request), request.state.trace_id)

    return await _page(request, work)


@router.get("/auth/consent", include_in_schema=False)
async def consent_page(request: Request) -> Response:
    return await _page(request, lambda: _security(request).authorization.consent_page(request))


@router.post("/auth/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    flow = _security(request).authorization

    async def work() -> Response:
        return await flow.consent(request, await _form_body(request), request.state.trace_id)

    return await _page(request, work)


@router.get("/auth/static/auth.css", include_in_schema=False)
async def style_sheet() -> Response:
    return FileResponse(STYLE_SHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def openid_discovery(request: Request) -> Response:
    return JSONResponse(openid_configuration(_security(request)))


async def _oauth_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM:
        raise OAuthError("invalid_request", f"send the request as {FORM}")
    return parse_form(await read_body(request, MAX_FORM_BYTES))


def _oauth_error(exc: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="nphies-facade"'
    return JSONResponse(exc.body(), exc.status, headers)


@router.post("/auth/introspect", include_in_schema=False)
async def introspect(request: Request) -> Response:
    """RFC 7662: for resource servers (a backend-services bearer token) and confidential apps."""
    security = _security(request)
    try:
        form = await _oauth_form(request)
        answer = await security.user_tokens.introspect(
            form, request.headers.get("authorization"), request.state.trace_id
        )
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(answer, 200, NO_STORE)


@router.post("/auth/revoke", include_in_schema=False)
async def revoke(request: Request) -> Response:
    """RFC 7009: 200 whether or not the token was known (a public app names itself by client_id)."""
    security = _security(request)
    try:
        form = await _oauth_form(request)
        await security.user_tokens.revoke(form, request.headers.get("authorization"), request.state.trace_id)
    except OAuthError as exc:
        return _oauth_error(exc)
    return Response(status_code=200, headers=NO_STORE)


def _is_ehr(claims: dict, issuer: str) -> bool:
    """A backend-services token of this server (not a person's, not another issuer's) with `launch`."""
    scopes = str(claims.get("scope", "")).split()
    return claims.get("iss") == issuer and "grant" not in claims and LAUNCH_SCOPE in scopes


@router.post("/auth/launch", include_in_schema=False)
async def register_launch(request: Request) -> Response:
    """An EHR registers the context of an EHR launch (JSON: patient, encounter) with a backend-services
    token carrying the `launch` scope; the answer is the opaque launch id for the app's launch URL."""
    security = _security(request)
    ctx: RequestContext = request.state.context
    try:
        claims = await security.verified_claims(bearer_token(request)) if security.enabled else {}
    except Unauthenticated as refused:
        return refused.response()
    flow = security.authorization
    if security.enabled and not _is_ehr(claims, security.issuer_url):
        await flow.audit("launch", MINOR_FAILURE, ctx.trace_id, ctx.actor, ctx.client_id, error="scope")
        return JSONResponse(
            {
                "error": "insufficient_scope",
                "error_description": "needs a backend-services token with scope launch",
            },
            403,
        )
    try:
        context = await flow.checked_launch_context(orjson.loads(await read_body(request, MAX_FORM_BYTES)))
    except (orjson.JSONDecodeError, FhirError, ValueError) as exc:
        await flow.audit("launch", MINOR_FAILURE, ctx.trace_id, ctx.actor, ctx.client_id, error="context")
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
    launch_id = await security.grants.register_launch(context)
    await flow.audit("launch", SUCCESS, ctx.trace_id, ctx.actor, ctx.client_id)
    return JSONResponse({"launch": launch_id, "expires_in": security.grants.lifetimes.launch}, 201, NO_STORE)
