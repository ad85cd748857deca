"""Parsing and validation of incoming FHIR JSON: bytes in, a checked plain dict out.

The R4 (4.0.1) definitions decide validity: the official R4 JSON Schema, tightened to FHIR's JSON rules
(r4_schema.py, vendored by vendor_schema.py), with the narrative rules (narrative.py). JSON types are never
coerced: what is stored is the dict that was validated.
"""

import re

from .. import exact_json
from .duplicate_keys import duplicate_key
from .errors import FhirError, bad_request
from .r4_schema import schema_issues
from .rules import rule_issues
from .types import is_supported

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def parse_json(body: bytes) -> object:
    if not body:
        raise bad_request("The request body is empty; a FHIR resource in JSON was expected", code="required")
    try:
        parsed = exact_json.loads(body)
    except exact_json.JSONDecodeError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}", code="structure") from None
    duplicate = duplicate_key(body, parsed)
    if duplicate is not None:
        raise bad_request(
            f"The JSON object key '{duplicate}' appears twice; FHIR JSON names are unique", code="structure"
        )
    return parsed


def require_resource(data: object, expression: str = "") -> dict:
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object holding a FHIR resource", code="structure")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request("The resource has no resourceType", expression or "resourceType", code="structure")
    if not is_supported(resource_type):
        raise bad_request(
            f"Unknown resourceType '{resource_type}': not a FHIR R4 resource type",
            expression or "resourceType",
            code="not-supported",
        )
    return data


def check_id(resource_id: str, expression: str = "id") -> None:
    if not isinstance(resource_id, str) or not ID_PATTERN.fullmatch(resource_id):
        raise bad_request("A resource id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'", expression)


def validate_resource(resource: dict) -> None:
    """Validates a resource dict: its structure by the R4 JSON Schema, then the R4 rules a schema cannot
    state (required bindings, invariants); raises FhirError (400) listing every issue."""
    issues = schema_issues(resource) or rule_issues(resource)
    if issues:
        raise FhirError(400, issues)


def parse_resource(body: bytes) -> dict:
    """Bytes to a validated resource dict."""
    resource = require_resource(parse_json(body))
    validate_resource(resource)
    return resource
