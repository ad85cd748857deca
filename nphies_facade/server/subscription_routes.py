"""Subscription operations ($status, $events, $resend, Subscriptions R5 Backport IG for R4) and the R4
websocket channel endpoint (`GET /websocket`: `bind {id}` -> `bound {id}`, then `ping {id}` per event)."""

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.requests import Request
from starlette.responses import Response

from .. import exact_json
from ..resources.access import Interaction
from ..resources.clock import fhir_instant
from ..resources.context import RequestContext, new_trace_id
from ..resources.errors import FhirError, bad_request
from ..resources.ledger import Ledger, SubscriptionEvent
from ..resources.operations_access import OperationDeclaration
from ..resources.service import FhirService
from ..resources.store import StoredVersion
from ..resources.validation import parse_json
from ..subscriptions.criteria import WEBSOCKET, read_channel
from ..subscriptions.notifications import add_focus, notification_bundle, status_bundle, status_parameters
from ..subscriptions.runtime import SubscriptionRuntime
from ..subscriptions.topics import with_topic
from .auth.middleware import Unauthenticated
from .auth.runtime import SecurityRuntime
from .negotiation import read_body
from .operation_routes import authorized
from .responses import FhirResponse
from .rest import base_url

router = APIRouter()

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition"
STATUS = OperationDeclaration(
    "status",
    "Subscription",
    f"{BACKPORT}/backport-subscription-status",
    "GET or POST: the Subscription's status Bundle (events since start, state, delivery attempts)",
    needs=("read Subscription",),
)
EVENTS = OperationDeclaration(
    "events",
    "Subscription",
    f"{BACKPORT}/backport-subscription-events",
    "GET or POST: replays events eventsSinceNumber..eventsUntilNumber (at most 1000); full-resource "
    "content adds each focus the caller may read",
    needs=("read Subscription",),
)
RESEND = OperationDeclaration(
    "resend",
    "Subscription",
    "https://github.com/nphies-facade/OperationDefinition/Subscription-resend",
    "POST: puts the Subscription's dead letters back in line, oldest first",
    needs=("read Subscription", "update Subscription"),
)
OPERATIONS = [STATUS, EVENTS, RESEND]

MAX_EVENTS = 1000
RECENT_ATTEMPTS = 10


def _runtime(request: Request) -> SubscriptionRuntime:
    return request.app.state.subscriptions


def _service(request: Request) -> FhirService:
    return request.app.state.service


def _now(request: Request) -> str:
    return fhir_instant(_service(request).clock())


async def _subscription(request: Request, subscription_id: str) -> dict:
    """The Subscription, read as the caller (404/410/403 as for a read)."""
    stored = await _service(request).read("Subscription", subscription_id, ctx=request.state.context)
    return exact_json.loads(stored.body)


async def _parameters(request: Request) -> dict[str, str]:
    """Operation parameters from the query string, and from a Parameters body on POST."""
    values = dict(request.query_params)
    if request.method == "POST":
        body = await read_body(request, request.app.state.settings.max_body_bytes)
        if body:
            parameters = parse_json(body)
            if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
                raise bad_request("The operation takes a Parameters resource", "resourceType")
            for parameter in parameters.get("parameter") or []:
                if not isinstance(parameter, dict) or not parameter.get("name"):
                    continue
                value = next((v for k, v in parameter.items() if k.startswith("value")), None)
                if value is not None:
                    values[parameter["name"]] = str(value)
    return values


def _number(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise bad_request(f"{name} must be a whole number, not {raw!r}", name)
    return int(raw)


async def _status_parameters(ledger: Ledger, subscription: dict, kind: str) -> dict:
    subscription_id = subscription["id"]
    state = await ledger.subscription_state(subscription_id)
    attempts = await ledger.recent_attempts(subscription_id, RECENT_ATTEMPTS)
    parameters = status_parameters(
        subscription_id,
        subscription.get("status", ""),
        kind,
        state.events_total if state else 0,
        error=subscription.get("error") or (state.last_error if state and state.failures else None),
        state=state,
        attempts=attempts,
    )
    return with_topic(parameters, subscription)


@router.api_route("/Subscription/{subscription_id}/$status", methods=["GET", "POST"])
async def subscription_status(request: Request, subscription_id: str) -> Response:
    await authorized(request, STATUS)
    subscription = await _subscription(request, subscription_id)
    parameters = await _status_parameters(_runtime(request).ledger, subscription, "query-status")
    return FhirResponse(status_bundle(parameters, _now(request)))


@router.api_route("/Subscription/{subscription_id}/$events", methods=["GET", "POST"])
async def subscription_events(request: Request, subscription_id: str) -> Response:
    """Replays events eventsSinceNumber..eventsUntilNumber (at most 1000); `content=full-resource` (the
    default when the Subscription has a payload) adds each focus resource as that event wrote it."""
    await authorized(request, EVENTS)
    subscription = await _subscription(request, subscription_id)
    values = await _parameters(request)
    ledger = _runtime(request).ledger
    state = await ledger.subscription_state(subscription_id)
    total = state.events_total if state else 0
    first = _number(values, "eventsSinceNumber") or 1
    last = _number(values, "eventsUntilNumber") or total
    if last < first and "eventsUntilNumber" in values:
        raise bad_request("eventsUntilNumber is before eventsSinceNumber", "eventsUntilNumber")
    events = await ledger.events(subscription_id, first, min(last, first + MAX_EVENTS - 1), MAX_EVENTS)
    content = values.get("content") or ("full-resource" if read_channel(subscription).payload else "id-only")
    if content not in ("full-resource", "id-only", "empty"):
        raise bad_request("content is one of empty, id-only, full-resource", "content")
    parameters = status_parameters(
        subscription_id,
        subscription.get("status", ""),
        "query-event",
        total,
        events=events if content != "empty" else (),
    )
    bundle = notification_bundle(with_topic(parameters, subscription), subscription_id, _now(request))
    if content == "full-resource":
        await _add_resources(request, bundle, events)
    return FhirResponse(bundle)


async def _add_resources(request: Request, bundle: dict, events: list[SubscriptionEvent]) -> None:
    """Each event's focus as that event wrote it, when the caller may read it; a deletion's entry has
    no resource."""
    bodies = await _runtime(request).ledger.bodies(events)
    versions = {
        event.seq: StoredVersion(
            event.resource_type, event.resource_id, event.version, event.at, "", bodies[event.seq]
        )
        for event in events
        if bodies.get(event.seq) is not None
    }
    visible = await _service(request).permitted(
        request.state.context, Interaction.READ, list(versions.values())
    )
    allowed = {(v.resource_type, v.id, v.version) for v in visible}
    for event in events:
        version = versions.get(event.seq)
        if event.action == "delete":
            add_focus(bundle, base_url(request), event, None)
        elif version is not None and (version.resource_type, version.id, version.version) in allowed:
            add_focus(bundle, base_url(request), event, version.body)


@router.post("/Subscription/{subscription_id}/$resend")
async def subscription_resend(request: Request, subscription_id: str) -> Response:
    """Puts the Subscription's dead letters back in line, oldest first."""
    await authorized(request, RESEND)
    subscription = await _subscription(request, subscription_id)
    await _service(request).authorize(request.state.context, Interaction.UPDATE, "Subscription", subscription)
    runtime = _runtime(request)
    resent = await runtime.ledger.resend(subscription_id, _service(request).clock().timestamp())
    runtime.poke()
    return FhirResponse(
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "subscription", "valueReference": {"reference": f"Subscription/{subscription_id}"}},
                {"name": "resent", "valueInteger": resent},
            ],
        }
    )


@router.websocket("/websocket")
async def websocket_channel(websocket: WebSocket) -> None:
    """Binding needs the caller's read access to the Subscription. Credentials come from the handshake's
    Authorization header or, for browsers that cannot set one, a `token {access token}` message."""
    await websocket.accept()
    runtime: SubscriptionRuntime = websocket.app.state.subscriptions
    service: FhirService = websocket.app.state.service
    security: SecurityRuntime = websocket.app.state.security
    ctx: RequestContext | None = None
    try:
        header = websocket.headers.get("authorization", "")
        if header:
            ctx = await _websocket_caller(websocket, security, header.removeprefix("Bearer ").strip())
            if ctx is None:
                return
        elif not security.enabled:
            ctx = await security.authenticate_token(None, new_trace_id())
        while True:
            command, _, argument = (await websocket.receive_text()).strip().partition(" ")
            if command == "token" and argument:
                ctx = await _websocket_caller(websocket, security, argument.strip())
                if ctx is None:
                    return
                await websocket.send_text("authenticated")
                continue
            if command != "bind" or not argument:
                await websocket.send_text("error expected 'bind {subscription id}' or 'token {access token}'")
                continue
            if ctx is None:
                await websocket.send_text("error unauthenticated: send 'token {access token}' first")
                continue
            refusal = await _websocket_refusal(service, argument, ctx)
            if refusal:
                await websocket.send_text(f"error {refusal}")
                continue
            runtime.hub.bind(argument, websocket)
            await websocket.send_text(f"bound {argument}")
    except WebSocketDisconnect:
        pass
    finally:
        runtime.hub.unbind(websocket)


async def _websocket_caller(
    websocket: WebSocket, security: SecurityRuntime, token: str
) -> RequestContext | None:
    """The token's caller; an unusable token ends the connection (close code 1008, policy violation)."""
    try:
        return await security.authenticate_token(token, new_trace_id())
    except Unauthenticated as refused:
        await websocket.send_text(f"error unauthenticated: {refused.description}")
        await websocket.close(code=1008)
        return None


async def _websocket_refusal(service: FhirService, subscription_id: str, ctx: RequestContext) -> str | None:
    try:
        stored = await service.read("Subscription", subscription_id, ctx=ctx)
    except FhirError as exc:
        if exc.status == 403:
            return f"{subscription_id} may not be read by this client"
        return f"{subscription_id} is not a live websocket Subscription"
    subscription = exact_json.loads(stored.body)
    live = read_channel(subscription).type == WEBSOCKET and subscription.get("status") in (
        "requested",
        "active",
        "error",
    )
    return None if live else f"{subscription_id} is not a live websocket Subscription"
