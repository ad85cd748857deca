"""The built-in authorization server's endpoints: the token endpoint (client_credentials for backend
services; authorization_code and refresh_token for people, user_tokens.py), its JWKS, SMART discovery."""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..negotiation import read_body
from .runtime import SecurityRuntime
from .smart import smart_configuration
from .token_endpoint import OAuthError, parse_form
from .user_tokens import USER_GRANTS

router = APIRouter()

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _security(request: Request) -> SecurityRuntime:
    return request.app.state.security


@router.get("/.well-known/smart-configuration", include_in_schema=False)
async def smart_discovery(request: Request) -> Response:
    return JSONResponse(smart_configuration(_security(request)))


@router.get("/auth/jwks", include_in_schema=False)
async def jwks(request: Request) -> Response:
    return JSONResponse(_security(request).key.jwks())


@router.post("/auth/token", include_in_schema=False)
async def token(request: Request) -> Response:
    security = _security(request)
    try:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != FORM:
            raise OAuthError("invalid_request", f"send the token request as {FORM}")
        form = parse_form(await read_body(request, MAX_FORM_BYTES))
        if form.get("grant_type") in USER_GRANTS:
            authorization = request.headers.get("authorization")
            body = await security.user_tokens.handle(form, authorization, request.state.trace_id)
        else:
            body = await security.token_endpoint.handle(form, request.state.trace_id)
    except OAuthError as exc:
        headers = dict(NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="nphies-facade"'
        return JSONResponse(exc.body(), exc.status, headers)
    return JSONResponse(body, 200, NO_STORE)
