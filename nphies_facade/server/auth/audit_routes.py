"""`GET AuditEvent` and `GET AuditEvent/{id}`: the audit trail served as AuditEvent resources, to callers
with a scope naming AuditEvent or the auditor role. Search takes `patient` (matched through its HMAC),
`entity`, `action`, `subtype`, `_since`, `_count` and the paging cursor; newest first."""

import base64
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...resources.access import Interaction
from ...resources.audit import AuditEntry, audit_event
from ...resources.context import RequestContext
from ...resources.errors import bad_request, not_found
from ...resources.references import relative
from ...resources.security_store import AuditQuery
from ...resources.service import FhirService
from ..history import parse_count, parse_instant
from ..responses import FhirResponse
from ..rest import base_url

router = APIRouter()

AUDIT_TYPE = "AuditEvent"
FILTERS = ("patient", "entity", "action", "subtype", "_since", "_count", "_cursor", "_format")


def _service(request: Request) -> FhirService:
    return request.app.state.service


def _context(request: Request) -> RequestContext:
    return request.state.context


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"a{seq}".encode()).decode().rstrip("=")


def _seq_of_cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    if not raw.startswith("a") or not (raw[1:].isascii() and raw[1:].isdigit()):
        raise bad_request("The paging cursor is not valid; follow the links the server gave", "_cursor")
    return int(raw[1:])


def _query(request: Request, service: FhirService, ctx: RequestContext) -> AuditQuery:
    params = request.query_params
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise bad_request(
            f"AuditEvent search takes {', '.join(FILTERS)}; not {', '.join(unknown)}", unknown[0]
        )
    settings = request.app.state.settings
    patient = service.access.compartment_patient(ctx, AUDIT_TYPE) or params.get("patient")
    if patient is not None and "/" not in relative(patient):
        patient = f"Patient/{patient}"
    return AuditQuery(
        patient_hash=service.audit.pseudonym(relative(patient)) if patient else None,
        entity=params.get("entity"),
        action=params.get("action"),
        subtype=params.get("subtype"),
        since=parse_instant(params["_since"], "_since") if "_since" in params else None,
        before_seq=_seq_of_cursor(params["_cursor"]) if "_cursor" in params else None,
        count=parse_count(params.get("_count"), settings.default_page_size, settings.max_page_size),
    )


def _links(base: str, request: Request, query: AuditQuery, last_seq: int | None) -> list[dict]:
    shown = {k: v for k, v in request.query_params.items() if k != "_cursor"}
    links = [{"relation": "self", "url": f"{base}/{AUDIT_TYPE}?{urlencode(request.query_params)}"}]
    if last_seq is not None:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{AUDIT_TYPE}?{urlencode({**shown, '_cursor': _cursor(last_seq)})}",
            }
        )
    return links


@router.get("/AuditEvent")
async def search_audit(request: Request) -> Response:
    service, ctx = _service(request), _context(request)
    await service.authorize(ctx, Interaction.SEARCH, AUDIT_TYPE)
    query = _query(request, service, ctx)
    await service.audit.drain()
    rows = await service.store.security().audit_query(query)
    base = base_url(request)
    last = rows[-1].seq if rows and len(rows) == query.count else None
    await service.audit.record(
        ctx, AuditEntry("E", Interaction.SEARCH.value, entity=AUDIT_TYPE, detail={"returned": len(rows)})
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": _links(base, request, query, last),
        "entry": [
            {
                "fullUrl": f"{base}/{AUDIT_TYPE}/{row.seq}",
                "resource": audit_event(row),
                "search": {"mode": "match"},
            }
            for row in rows
        ],
    }
    return FhirResponse(bundle)


@router.get("/AuditEvent/{event_id}")
async def read_audit(request: Request, event_id: str) -> Response:
    service, ctx = _service(request), _context(request)
    await service.authorize(ctx, Interaction.READ, AUDIT_TYPE)
    known = event_id.isascii() and event_id.isdigit() and len(event_id) <= 18
    await service.audit.drain()
    row = await service.store.security().audit_row(int(event_id)) if known else None
    if row is None:
        raise not_found(f"{AUDIT_TYPE}/{event_id} is not known")
    event = audit_event(row)
    patient = service.access.compartment_patient(ctx, AUDIT_TYPE)
    if patient is not None and row.patient_hash != service.audit.pseudonym(patient):
        await service.authorize(ctx, Interaction.READ, AUDIT_TYPE, event)
    await service.audit.record(ctx, AuditEntry("R", Interaction.READ.value, entity=f"{AUDIT_TYPE}/{row.seq}"))
    return FhirResponse(event, 200, {"ETag": 'W/"1"'})
