"""$validate over HTTP: `POST /[type]/$validate` and `POST /[type]/[id]/$validate` (operations/validate.py).

Included before the REST routes, so `POST /Patient/$validate` is no create of a type `$validate`.
"""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..operations.validate import Validation
from ..resources.errors import not_found
from ..resources.types import is_supported
from ..resources.validation import check_id, parse_json
from .negotiation import check_content_type, read_body
from .responses import FhirResponse

router = APIRouter()

VALIDATE_OPERATION = {
    "name": "validate",
    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "documentation": "POST [type]/$validate or [type]/[id]/$validate with the resource or Parameters "
    "(resource, mode=create|update|delete, profile: an NPHIES profile or the R4 type): an "
    "OperationOutcome of every issue (structure, references, referential integrity, profile), or one "
    "informational 'All OK'; nothing is stored",
}


async def _validate(request: Request, resource_type: str, resource_id: str | None) -> Response:
    if not is_supported(resource_type):
        raise not_found(f"Unknown or unsupported resource type {resource_type!r}")
    if resource_id is not None:
        check_id(resource_id)
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    check_content_type(request)
    validation = Validation(request.app.state.service)
    outcome = await validation.validate(request.state.context, resource_type, resource_id, parse_json(body))
    return FhirResponse(outcome, 200)


@router.post("/{resource_type}/$validate")
async def validate_type(request: Request, resource_type: str) -> Response:
    return await _validate(request, resource_type, None)


@router.post("/{resource_type}/{resource_id}/$validate")
async def validate_instance(request: Request, resource_type: str, resource_id: str) -> Response:
    return await _validate(request, resource_type, resource_id)
