"""PATCH entries of a Bundle: the JSON Patch document carried, base64-encoded, in a Binary resource."""

import base64
import binascii

from .. import exact_json
from .errors import bad_request, error

JSON_PATCH = "application/json-patch+json"


def json_patch_of(resource: dict) -> list:
    """The JSON Patch operations of a PATCH entry's Binary (FHIRPath Patch Parameters are not supported)."""
    kind = resource.get("resourceType")
    if kind == "Parameters":
        raise error(
            400,
            "not-supported",
            f"FHIRPath Patch is not supported; send a Binary holding a JSON Patch ({JSON_PATCH})",
            "resource",
        )
    if kind != "Binary" or str(resource.get("contentType", "")).split(";")[0].strip() != JSON_PATCH:
        raise bad_request(
            f"A PATCH entry's resource must be a Binary with contentType {JSON_PATCH}", "resource"
        )
    try:
        operations = exact_json.loads(base64.b64decode(resource.get("data") or "", validate=True))
    except (binascii.Error, ValueError, TypeError):
        raise bad_request(
            "The Binary's data must be a base64-encoded JSON Patch document",
            "resource.data",
            code="structure",
        ) from None
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise bad_request(
            "A JSON Patch document is an array of operation objects", "resource.data", code="structure"
        )
    return operations
