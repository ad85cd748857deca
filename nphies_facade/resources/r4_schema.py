"""The official FHIR R4 JSON Schema (vendored, see vendor_schema.py), compiled once at import.

`schema_issues(resource)` answers [] for a valid resource (one pass of the compiled validator), else one
Issue per problem, worded for a person and located by FHIRPath-like expression
(`Patient.name[0].given[1]`). The schema dispatches on `resourceType`, so a resource, and every resource
inside it, is checked against its own type's definition only.
"""

from datetime import date
from pathlib import Path

import jsonschema_rs
import orjson

from .. import exact_json
from .errors import Issue
from .narrative import narrative_problem

SCHEMA_FILE = Path(__file__).with_name("data") / "fhir-r4.schema.json"
MAX_ISSUES = 50
MAX_LISTED_CODES = 12
JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}


class _Narrative:
    """The schema's `fhir-xhtml` keyword: the narrative XHTML rules (narrative.py)."""

    def __init__(self, parent_schema: dict, value: object, schema_path: list) -> None:
        pass

    def validate(self, instance: object) -> None:
        if isinstance(instance, str):
            problem = narrative_problem(instance)
            if problem:
                raise ValueError(problem)


def _existing_date(value: str) -> bool:
    """The schema's `fhir-date` format: the regexes allow day 31 of every month; the day must exist."""
    if len(value) < 10 or value[8:10] <= "28":
        return True
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def _load() -> tuple[dict, jsonschema_rs.Validator]:
    schema = orjson.loads(SCHEMA_FILE.read_bytes())
    validator = jsonschema_rs.validator_for(
        {**schema, "allOf": [{"$ref": "#/definitions/ResourceList"}]},
        keywords={"fhir-xhtml": _Narrative},
        formats={"fhir-date": _existing_date},
        validate_formats=True,
        pattern_options=jsonschema_rs.RegexOptions(),
    )
    return schema["definitions"], validator


DEFINITIONS, VALIDATOR = _load()
RESOURCE_TYPES: tuple[str, ...] = tuple(DEFINITIONS["ResourceList"]["properties"]["resourceType"]["enum"])


def schema_issues(resource: dict) -> list[Issue]:
    """[] when the resource is valid R4 by the schema; else its problems, at most MAX_ISSUES."""
    try:
        if VALIDATOR.is_valid(resource):
            return []
    except ValueError:
        pass
    # jsonschema-rs takes no float subclass (it raises, or answers invalid), so a resource holding a
    # JsonNumber, a decimal keeping its text, is checked as a copy with plain floats.
    resource = exact_json.plain(resource)
    if VALIDATOR.is_valid(resource):
        return []
    issues: list[Issue] = []
    for error in VALIDATOR.iter_errors(resource):
        issues += [i for i in _issues(resource, error) if i not in issues]
        if len(issues) >= MAX_ISSUES:
            break
    return issues[:MAX_ISSUES] or [
        Issue("structure", "The resource is not valid R4", expression=_type(resource))
    ]


def _type(resource: dict) -> str:
    resource_type = resource.get("resourceType")
    return resource_type if isinstance(resource_type, str) else "Resource"


def _location(resource: dict, path: list) -> str:
    location = _type(resource)
    for part in path:
        location += f"[{part}]" if isinstance(part, int) else f".{part}"
    return location


def _definition(schema_path: list) -> str:
    """The schema definition holding the failing keyword (`date`, `Patient_Contact`)."""
    return str(schema_path[1]) if len(schema_path) > 1 and schema_path[0] == "definitions" else ""


def _issues(resource: dict, error: jsonschema_rs.ValidationError) -> list[Issue]:
    where = list(error.instance_path)
    at = _location(resource, where)
    kind = type(error.kind).__name__
    details = error.kind.as_dict() if hasattr(error.kind, "as_dict") else {}
    definition = _definition(list(error.schema_path))
    instance = error.instance
    if kind == "AdditionalProperties":
        return [_unknown(resource, where, name) for name in details.get("unexpected", [])]
    if kind == "Required":
        name = details.get("property")
        return [Issue("required", f"The required element '{name}' is missing", expression=at)]
    if kind == "AnyOf":
        return [_missing_one_of(error, at)]
    if kind == "Not":
        return [_two_choices(error, at)]
    if kind == "Type":
        return [Issue("value", _type_message(definition, instance), expression=at)]
    if kind in ("Pattern", "Format", "Minimum", "Maximum"):
        return [Issue("value", _value_message(definition, instance), expression=at)]
    if kind == "Enum" and where and where[-1] == "resourceType":
        message = f"Unknown resourceType {orjson.dumps(instance).decode()[:80]}: not a FHIR R4 resource type"
        return [Issue("not-supported", message, expression=at)]
    if kind == "Enum":
        return [Issue("code-invalid", _code_message(instance, details.get("options")), expression=at)]
    if kind == "MaxLength":
        return [Issue("too-long", "A string may be at most 1 MB (1,048,576 characters)", expression=at)]
    if kind in ("MinItems", "MinProperties"):
        what = "array" if kind == "MinItems" else "object"
        message = f"An empty {what} is not allowed: an element must have a value or children (ele-1)"
        return [Issue("required", message, expression=at)]
    if kind == "Custom":
        return [Issue("value", error.message, expression=at)]
    return [Issue("structure", error.message, expression=at)]


def _unknown(resource: dict, where: list, name: str) -> Issue:
    at = _location(resource, [*where, name])
    if name == "fhir_comments":
        return Issue("structure", "fhir_comments is not allowed in FHIR R4 JSON", expression=at)
    return Issue("structure", f"Unknown element '{name}': R4 does not define it here", expression=at)


def _missing_one_of(error: jsonschema_rs.ValidationError, at: str) -> Issue:
    """A required primitive (value or `_x` extensions) or a required choice element is missing."""
    names = [
        getattr(branch.kind, "as_dict", dict)().get("property")
        for branches in error.kind.as_dict().get("context", [])
        for branch in branches
    ]
    values = [n for n in names if isinstance(n, str) and not n.startswith("_")]
    if len(values) == 1:
        return Issue("required", f"The required element '{values[0]}' is missing", expression=at)
    listed = ", ".join(values)
    return Issue("required", f"One of {listed} is required", expression=at)


def _two_choices(error: jsonschema_rs.ValidationError, at: str) -> Issue:
    """`dependencies` of a choice element: two of its types are present."""
    schema_path = list(error.schema_path)
    choice = schema_path[schema_path.index("dependencies") + 1] if "dependencies" in schema_path else ""
    others = DEFINITIONS.get(_definition(schema_path), {}).get("dependencies", {}).get(choice, {})
    names = [r["required"][0] for r in others.get("not", {}).get("anyOf", [])]
    present = [n for n in names if isinstance(error.instance, dict) and n in error.instance]
    listed = ", ".join(sorted([str(choice), *present]))
    return Issue(
        "structure", f"Only one type of a choice element may be present, not {listed}", expression=at
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return JSON_TYPES.get(type(value), "an object")


def _type_message(definition: str, instance: object) -> str:
    if definition and definition[0].islower():
        expected = {"boolean": "true or false", "decimal": "a JSON number"}.get(definition)
        if expected is None:
            expected = "a JSON integer" if "nt" in definition else "a JSON string"
        return f"A FHIR {definition} must be {expected}, not {_json_type(instance)}"
    if definition:
        return f"{definition.replace('_', '.')} must be a JSON object, not {_json_type(instance)}"
    return f"Wrong JSON type: {_json_type(instance)}"


def _value_message(definition: str, instance: object) -> str:
    shown = orjson.dumps(instance).decode()[:80]
    if instance == "":
        return "An empty string is not allowed: an element must have a value or children (ele-1)"
    if isinstance(instance, str) and any(c < " " and c not in "\t\r\n" for c in instance):
        return f"{shown}: control characters (but tab, CR and LF) are not allowed in FHIR strings"
    if definition in ("integer", "positiveInt", "unsignedInt"):
        return f"{shown} is out of range for a FHIR {definition}"
    if definition in ("date", "dateTime", "instant", "time"):
        return f"{shown} is not a valid FHIR {definition}"
    return f"{shown} is not a valid FHIR {definition or 'value'}"


def _code_message(instance: object, options: object) -> str:
    shown = orjson.dumps(instance).decode()[:80]
    codes = [str(o) for o in options] if isinstance(options, list) else []
    listed = ", ".join(codes[:MAX_LISTED_CODES]) + (" ..." if len(codes) > MAX_LISTED_CODES else "")
    return f"{shown} is not a code of the required value set ({listed})"
