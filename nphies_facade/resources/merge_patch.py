"""JSON Merge Patch (RFC 7386): the patch is an object whose members replace the target's, `null` removes a
member and nested objects merge the same way; arrays and other values replace whole."""

from .errors import bad_request


def apply_merge_patch(document: dict, patch: object) -> dict:
    """A new document; `document` is left as it was. A resource's patch must be an object."""
    if not isinstance(patch, dict):
        raise bad_request("A JSON Merge Patch of a resource is an object", code="structure")
    return _merged(document, patch)


def _merged(target: object, patch: dict) -> dict:
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        elif isinstance(value, dict):
            result[name] = _merged(result.get(name), value)
        else:
            result[name] = value
    return result
