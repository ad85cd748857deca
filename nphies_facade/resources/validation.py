"""Parsing and validation of incoming FHIR JSON: bytes in, a checked plain dict out.

The R4B models of fhir.resources validate (structure_check.py answers first for what it is sure of); the
caller keeps the original dict, so nothing is re-serialised through the model.
"""

import re

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .errors import FhirError, Issue, bad_request, error
from .rules import rule_issues
from .structure_check import surely_valid
from .types import is_supported

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
MAX_ISSUES = 50


def parse_json(body: bytes) -> object:
    if not body:
        raise bad_request("The request body is empty; a FHIR resource in JSON was expected", code="required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}", code="structure") from None


def require_resource(data: object, expression: str = "") -> dict:
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object holding a FHIR resource", code="structure")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request("The resource has no resourceType", expression or "resourceType", code="structure")
    if not is_supported(resource_type):
        raise bad_request(
            f"Unknown or unsupported resourceType '{resource_type}'",
            expression or "resourceType",
            code="not-supported",
        )
    return data


def check_id(resource_id: str, expression: str = "id") -> None:
    if not isinstance(resource_id, str) or not ID_PATTERN.fullmatch(resource_id):
        raise bad_request("A resource id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'", expression)


def _location(resource_type: str, loc: tuple) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _issues_from(resource_type: str, exc: ValidationError) -> list[Issue]:
    issues = []
    for detail in exc.errors(include_url=False, include_input=False)[:MAX_ISSUES]:
        loc = tuple(p for p in detail.get("loc", ()) if p not in ("__root__",))
        issues.append(
            Issue(
                "structure" if detail.get("type") == "extra_forbidden" else "value",
                detail.get("msg", "invalid value"),
                expression=_location(resource_type, loc),
            )
        )
    return issues


def validate_resource(resource: dict) -> None:
    """Validates a resource dict: its structure, then the R4 rules a schema cannot state (required
    bindings, invariants); raises FhirError (400) listing every issue."""
    _validate_structure(resource)
    issues = rule_issues(resource)
    if issues:
        raise FhirError(400, issues)


def _validate_structure(resource: dict) -> None:
    """Against its R4B model. The structure check answers for the common, valid resource; what it doubts,
    the model decides."""
    try:
        if surely_valid(resource):
            return
    except RecursionError:
        pass
    resource_type = resource["resourceType"]
    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise FhirError(400, _issues_from(resource_type, exc)) from None
    except (RecursionError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise error(
            400,
            "structure",
            f"The {resource_type} could not be validated: {type(exc).__name__}",
            resource_type,
        ) from None


def parse_resource(body: bytes) -> dict:
    """Bytes to a validated resource dict."""
    resource = require_resource(parse_json(body))
    validate_resource(resource)
    return resource
