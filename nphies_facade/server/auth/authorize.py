"""SMART App Launch, the browser's part: `/auth/authorize`, the login page, the patient picker and the
consent screen, ending in a redirect to the app with a one-time authorization code.

The request is checked before anyone logs in: an unknown app or a redirect URI not registered exactly
gets an error page (never a redirect); anything else wrong goes back to the app as an OAuth error with its
`state`. PKCE with S256 is required (`plain` is refused) and `aud` must be this server. The browser's
progress is a pending request in the store, named by an HttpOnly cookie; every form carries that
request's CSRF token (renewed after the login). A practitioner choosing a patient sees only the patients
the ABAC policy lets them read; a patient user's context is their own record.
"""

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...resources.audit import MINOR_FAILURE, SUCCESS, AuditEntry, Auditor
from ...resources.context import RequestContext
from ...resources.errors import FhirError
from ...resources.searching import SearchOptions
from ...resources.security_store import SecurityStore
from ...resources.service import FhirService, resource_json
from .accounts import Accounts, UserRecord
from .apps import KIND as APP_KIND
from .apps import AppRecord
from .grants import Grants
from .pages import choose_language, describe_scope, render
from .scopes import narrow, split_scope_string

COOKIE = "nf_authz"
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43,128}")
PICKER_PAGE_SIZE = 20
MAX_FORM_BYTES = 16 * 1024


class PageError(Exception):
    """Shown on an error page: the text key and the HTTP status."""

    def __init__(self, key: str, status: int = 400, detail: str | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AppError(Exception):
    """An OAuth error the app hears about at its redirect URI."""

    error: str
    description: str


def redirect_to_app(redirect_uri: str, **params: str | None) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", 303)


def origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def form_fields(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise PageError("forbidden_form", 400) from None


def first(fields: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in fields if key == name), "")


def display_name(patient: dict) -> str:
    for name in patient.get("name") or []:
        if isinstance(name, dict):
            if name.get("text"):
                return str(name["text"])
            parts = [*(name.get("given") or []), name.get("family") or ""]
            text = " ".join(str(p) for p in parts if p)
            if text:
                return text
    return f"Patient/{patient.get('id')}"


class AuthorizationFlow:
    def __init__(
        self,
        security: SecurityStore,
        accounts: Accounts,
        grants: Grants,
        auditor: Auditor,
        audiences: tuple[str, ...],
        https: bool,
    ) -> None:
        self.security = security
        self.accounts = accounts
        self.grants = grants
        self.auditor = auditor
        self.audiences = tuple(a.rstrip("/") for a in audiences)
        self.https = https
        self.service: FhirService | None = None

    def bind(self, service: FhirService) -> None:
        self.service = service

    async def app(self, client_id: str | None) -> AppRecord | None:
        record = await self.security.get_record(APP_KIND, client_id) if client_id else None
        app = AppRecord.from_json(record) if record is not None else None
        return app if app is not None and not app.disabled else None

    # ----- audit -----

    async def audit(
        self, subtype: str, outcome: str, trace_id: str, actor: str, client: str | None, **detail
    ):
        ctx = RequestContext(actor=actor, client_id=client, trace_id=trace_id)
        entry = AuditEntry("E", subtype, outcome, entity=None, detail=detail or None)
        if outcome == SUCCESS:
            await self.auditor.record(ctx, entry)
        else:
            await self.auditor.record_failure(ctx, entry)

    # ----- /auth/authorize -----

    async def authorize(self, request: Request, trace_id: str) -> Response:
        params = dict(request.query_params)
        app = await self.app(params.get("client_id"))
        if app is None:
            await self.audit("authorize", MINOR_FAILURE, trace_id, "unknown", None, error="unknown app")
            raise PageError("bad_request", 400, "The client_id is not a registered app.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            await self.audit(
                "authorize", MINOR_FAILURE, trace_id, app.client_id, app.client_id, error="redirect_uri"
            )
            raise PageError("bad_request", 400, "The redirect_uri is not registered for this app.")
        try:
            pending = await self._pending_request(app, params, request.headers.get("accept-language"))
        except AppError as exc:
            await self.audit(
                "authorize", MINOR_FAILURE, trace_id, app.client_id, app.client_id, error=exc.error
            )
            return redirect_to_app(
                redirect_uri, error=exc.error, error_description=exc.description, state=params.get("state")
            )
        request_id = await self.grants.open_request(pending)
        response = RedirectResponse("/auth/login", 303)
        response.set_cookie(
            COOKIE, request_id, httponly=True, samesite="lax", secure=self.https, path="/auth"
        )
        return response

    async def _pending_request(self, app: AppRecord, params: dict, accept_language: str | None) -> dict:
        if params.get("response_type") != "code":
            raise AppError("unsupported_response_type", "only response_type=code is supported")
        if not params.get("state"):
            raise AppError("invalid_request", "state is required")
        method = params.get("code_challenge_method")
        if method != "S256":
            raise AppError(
                "invalid_request", "PKCE with code_challenge_method=S256 is required (plain is refused)"
            )
        if not CODE_CHALLENGE.fullmatch(params.get("code_challenge", "")):
            raise AppError("invalid_request", "code_challenge must be a base64url S256 digest")
        if params.get("aud", "").rstrip("/") not in self.audiences:
            raise AppError("invalid_request", "aud must be this FHIR server's base URL")
        scopes = narrow(split_scope_string(params.get("scope", "")), app.scopes)
        if not scopes:
            raise AppError("invalid_scope", "none of the requested scopes is registered for the app")
        launch = await self._launch_context(app, params.get("launch"), scopes)
        if "launch/patient" in scopes and "standalone" not in app.launch_types:
            raise AppError("invalid_scope", "the app is not registered for standalone launch")
        return {
            "client_id": app.client_id,
            "app_name": app.name,
            "redirect_uri": params["redirect_uri"],
            "state": params["state"],
            "code_challenge": params["code_challenge"],
            "nonce": params.get("nonce"),
            "scopes": scopes,
            "launch": launch,
            "lang": choose_language(params.get("ui_locales"), accept_language),
            "username": None,
            "patient": None,
        }

    async def _launch_context(self, app: AppRecord, launch_id: str | None, scopes: list[str]) -> dict | None:
        if launch_id is None:
            if "launch" in scopes:
                raise AppError(
                    "invalid_request", "the launch scope needs the launch parameter of an EHR launch"
                )
            return None
        if "launch" not in scopes or "ehr" not in app.launch_types:
            raise AppError("invalid_scope", "an EHR launch needs the launch scope, registered for the app")
        context = await self.grants.launch(launch_id)
        if context is None:
            raise AppError("invalid_request", "the launch is unknown or has expired")
        return {"patient": context.get("patient"), "encounter": context.get("encounter")}

    # ----- the pending request -----

    async def pending(self, request: Request) -> tuple[str, dict]:
        request_id = request.cookies.get(COOKIE)
        record = await self.grants.request(request_id) if request_id else None
        if record is None:
            raise PageError("session_expired", 400)
        return request_id, record  # type: ignore[return-value]

    @staticmethod
    def check_csrf(record: dict, fields: list[tuple[str, str]]) -> None:
        sent = first(fields, "csrf")
        if not sent or not hmac.compare_digest(sent.encode(), record["csrf"].encode()):
            raise PageError("forbidden_form", 403)

    async def language(self, request: Request, request_id: str, record: dict) -> dict:
        """A language chosen with the page's toggle (`?lang=`) sticks for the rest of the way."""
        chosen = request.query_params.get("lang")
        if chosen in ("ar", "en") and chosen != record["lang"]:
            record = await self.grants.update_request(request_id, {**record, "lang": chosen})
        return record

    def _page(self, template: str, record: dict, title_key: str, path: str, **values) -> Response:
        return render(
            template,
            record["lang"],
            title_key,
            form_targets=(origin(record["redirect_uri"]),),
            toggle=path,
            app_name=record["app_name"],
            csrf=record["csrf"],
            **values,
        )

    # ----- login -----

    async def login_page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        request_id, record = await self.pending(request)
        record = await self.language(request, request_id, record)
        response = self._page("login.html", record, "login_title", "/auth/login", error=error)
        response.status_code = status
        return response

    async def login(self, request: Request, body: bytes, trace_id: str) -> Response:
        request_id, record = await self.pending(request)
        fields = form_fields(body)
        self.check_csrf(record, fields)
        result = await self.accounts.login(first(fields, "username"), first(fields, "password"))
        actor = result.user.id if result.user is not None else "unknown"
        if result.reason != "ok" or result.user is None:
            await self.audit(
                "login", MINOR_FAILURE, trace_id, actor, record["client_id"], reason=result.reason
            )
            page = self._page("login.html", record, "login_title", "/auth/login", error="login_failed")
            page.status_code = 401
            return page
        await self.audit("login", SUCCESS, trace_id, actor, record["client_id"])
        user = result.user
        record = {**record, "username": user.username, "user_id": user.id}
        try:
            record["patient"] = await self._patient_context(user, record)
        except AppError as exc:
            await self.grants.close_request(request_id)
            await self.audit(
                "authorize", MINOR_FAILURE, trace_id, actor, record["client_id"], error=exc.error
            )
            return redirect_to_app(
                record["redirect_uri"],
                error=exc.error,
                error_description=exc.description,
                state=record["state"],
            )
        await self.grants.update_request(request_id, record, new_csrf=True)
        needs_picker = record["patient"] is None and "launch/patient" in record["scopes"]
        return RedirectResponse("/auth/picker" if needs_picker else "/auth/consent", 303)

    async def _patient_context(self, user: UserRecord, record: dict) -> str | None:
        """The patient the tokens will be about: the EHR's launch context (which the user must be allowed
        to see), a patient user's own record, the patient of a related person, or None (picker next)."""
        launched = (record.get("launch") or {}).get("patient")
        if user.kind == "Patient":
            if launched and launched != user.fhir_user:
                raise AppError("access_denied", "the launch is about another patient")
            return user.fhir_user
        if launched:
            if not await self.may_read_patient(user, launched):
                raise AppError("access_denied", "the user may not see the launch's patient")
            return launched
        if user.kind == "RelatedPerson" and "launch/patient" in record["scopes"]:
            return await self._related_patient(user)
        return None

    async def _related_patient(self, user: UserRecord) -> str:
        try:
            stored = await self._service().read(
                "RelatedPerson", user.fhir_user.split("/", 1)[1], ctx=RequestContext.system("auth")
            )
        except FhirError:
            raise AppError("access_denied", "the user's RelatedPerson record is missing") from None
        patient = (resource_json(stored).get("patient") or {}).get("reference")
        if not isinstance(patient, str) or not patient.startswith("Patient/"):
            raise AppError("access_denied", "the user's RelatedPerson names no patient")
        return patient

    def _service(self) -> FhirService:
        if self.service is None:
            raise RuntimeError("the authorization flow is not bound to a FhirService")
        return self.service

    # ----- the patient picker -----

    @staticmethod
    def user_context(user: UserRecord, trace_id: str = "") -> RequestContext:
        """What the user may see of patients, whatever the app asked for: their attributes, user/Patient.rs."""
        return RequestContext(
            actor=user.id,
            scopes=("user/Patient.rs",),
            trace_id=trace_id or "picker",
            fhir_user=user.fhir_user,
            roles=(user.role,) if user.role else (),
            region=user.region,
            organization=user.organization,
        )

    async def may_read_patient(self, user: UserRecord, reference: str) -> bool:
        kind, _, patient_id = reference.partition("/")
        if kind != "Patient" or not patient_id:
            return False
        try:
            await self._service().read("Patient", patient_id, ctx=self.user_context(user))
        except FhirError:
            return False
        return True

    async def _logged_in(self, request: Request) -> tuple[str, dict, UserRecord]:
        request_id, record = await self.pending(request)
        user = await self.accounts.get(record["username"]) if record.get("username") else None
        if user is None or user.disabled:
            raise PageError("session_expired", 400)
        return request_id, record, user

    async def picker_page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        request_id, record, user = await self._logged_in(request)
        record = await self.language(request, request_id, record)
        query = request.query_params.get("q", "").strip()[:100]
        patients = await self._visible_patients(user, query)
        path = f"/auth/picker?{urlencode({'q': query})}" if query else "/auth/picker"
        page = self._page(
            "picker.html", record, "picker_title", path, patients=patients, query=query, error=error
        )
        page.status_code = status
        return page

    async def _visible_patients(self, user: UserRecord, query: str) -> list[dict]:
        params = [("_count", str(PICKER_PAGE_SIZE))]
        if query:
            params.append(("name", query))
        try:
            result = await self._service().search(
                ("Patient",), params, SearchOptions(), ctx=self.user_context(user)
            )
        except FhirError:
            return []
        patients = []
        for stored in result.matches:
            patient = resource_json(stored)
            detail = " · ".join(str(v) for v in (patient.get("birthDate"), f"Patient/{stored.id}") if v)
            patients.append({"id": stored.id, "name": display_name(patient), "detail": detail})
        return patients

    async def pick(self, request: Request, body: bytes, trace_id: str) -> Response:
        request_id, record, user = await self._logged_in(request)
        fields = form_fields(body)
        self.check_csrf(record, fields)
        reference = f"Patient/{first(fields, 'patient')}"
        if not await self.may_read_patient(user, reference):
            await self.audit(
                "authorize", MINOR_FAILURE, trace_id, user.id, record["client_id"], error="patient refused"
            )
            return await self.picker_page(request, "patient_refused", 403)
        await self.grants.update_request(request_id, {**record, "patient": reference})
        return RedirectResponse("/auth/consent", 303)

    # ----- consent -----

    async def consent_page(self, request: Request) -> Response:
        request_id, record, user = await self._logged_in(request)
        if record["patient"] is None and "launch/patient" in record["scopes"]:
            return RedirectResponse("/auth/picker", 303)
        record = await self.language(request, request_id, record)
        scopes = [{"text": s, "description": describe_scope(s, record["lang"])} for s in record["scopes"]]
        patient_name = await self._patient_name(record["patient"]) if record["patient"] else None
        return self._page(
            "consent.html", record, "consent_title", "/auth/consent", scopes=scopes, patient_name=patient_name
        )

    async def _patient_name(self, reference: str) -> str:
        try:
            stored = await self._service().read(
                "Patient", reference.split("/", 1)[1], ctx=RequestContext.system("auth")
            )
        except FhirError:
            return reference
        return display_name(resource_json(stored))

    async def consent(self, request: Request, body: bytes, trace_id: str) -> Response:
        request_id, record, user = await self._logged_in(request)
        fields = form_fields(body)
        self.check_csrf(record, fields)
        await self.grants.close_request(request_id)
        if first(fields, "decision") != "allow":
            await self.audit(
                "consent", MINOR_FAILURE, trace_id, user.id, record["client_id"], decision="deny"
            )
            return self._to_app(record, error="access_denied", error_description="the user denied access")
        chosen = {value for key, value in fields if key == "scope"}
        scopes = [s for s in record["scopes"] if s in chosen]
        refresh = "offline" if "offline_access" in scopes else "online" if "online_access" in scopes else None
        grant_id = await self.grants.new_grant(
            {
                "username": user.username,
                "user_id": user.id,
                "client_id": record["client_id"],
                "scopes": scopes,
                "patient": record["patient"],
                "encounter": (record.get("launch") or {}).get("encounter"),
                "refresh": refresh,
            }
        )
        code = await self.grants.issue_code(
            {
                "grant": grant_id,
                "client_id": record["client_id"],
                "redirect_uri": record["redirect_uri"],
                "code_challenge": record["code_challenge"],
                "nonce": record.get("nonce"),
            }
        )
        await self.audit(
            "consent", SUCCESS, trace_id, user.id, record["client_id"], scope=" ".join(scopes), grant=grant_id
        )
        return self._to_app(record, code=code)

    def _to_app(self, record: dict, **params: str) -> Response:
        response = redirect_to_app(record["redirect_uri"], **params, state=record["state"])
        response.delete_cookie(COOKIE, path="/auth", httponly=True, samesite="lax", secure=self.https)
        return response

    # ----- EHR launch contexts -----

    async def checked_launch_context(self, body: object) -> dict:
        """The context an EHR registers: a Patient (and an Encounter) that exist here."""
        if not isinstance(body, dict) or not isinstance(body.get("patient"), str):
            raise ValueError('send {"patient": "Patient/<id>", "encounter": "Encounter/<id>"}')
        context = {}
        for name, kind in (("patient", "Patient"), ("encounter", "Encounter")):
            reference = body.get(name)
            if reference is None:
                continue
            prefix, _, resource_id = str(reference).partition("/")
            if prefix != kind or not resource_id:
                raise ValueError(f"{name} must be a reference such as {kind}/1")
            await self._service().read(kind, resource_id, ctx=RequestContext.system("auth"))
            context[name] = f"{kind}/{resource_id}"
        return context

    # ----- errors -----

    @staticmethod
    def error_page(error: PageError, lang: str = "en") -> Response:
        return render(
            "error.html", lang, "error_title", status=error.status, error=error.key, detail=error.detail
        )
