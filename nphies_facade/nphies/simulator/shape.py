"""JSON types of the elements the simulator reads: a wrong type is a data type error (DT-), not a crash."""

from collections.abc import Iterator
from typing import Any

from .catalog import RuleError, data_type_rule

# path -> expected JSON type; `x[]` is each item of the array x.
BUNDLE = {
    "id": str,
    "meta": dict,
    "meta.profile": list,
    "entry": list,
    "entry[]": dict,
    "entry[].resource": dict,
}
HEADER = {
    "id": str,
    "meta": dict,
    "eventCoding": dict,
    "eventCoding.code": str,
    "sender": dict,
    "sender.identifier": dict,
    "sender.identifier.value": str,
    "source": dict,
    "source.endpoint": str,
    "destination": list,
    "destination[]": dict,
    "destination[].endpoint": str,
    "destination[].receiver": dict,
    "destination[].receiver.identifier": dict,
    "focus": list,
    "focus[]": dict,
    "focus[].reference": str,
    "response": dict,
    "response.identifier": str,
    "response.code": str,
}
ANY_RESOURCE = {
    "meta": dict,
    "meta.profile": list,
    "meta.profile[]": str,
    "identifier": list,
    "identifier[]": dict,
    "extension": list,
    "extension[]": dict,
}
FOCUS = {
    "patient": dict,
    "provider": dict,
    "insurer": dict,
    "requester": dict,
    "owner": dict,
    "insurance": list,
    "insurance[]": dict,
    "insurance[].coverage": dict,
    "item": list,
    "item[]": dict,
    "item[].productOrService": dict,
    "item[].quantity": dict,
    "item[].net": dict,
    "related": list,
    "related[]": dict,
    "about": list,
    "about[]": dict,
    "basedOn": list,
    "basedOn[]": dict,
    "input": list,
    "input[]": dict,
    "focus": dict,
    "payment": dict,
    "purpose": list,
}


def bundle_shape_errors(bundle: dict) -> list[RuleError]:
    """Wrong types in the Bundle or its MessageHeader: the message cannot be read or routed."""
    errors = _errors(bundle, "Bundle", BUNDLE, "Bundle")
    if errors:
        return errors
    for position, entry in enumerate(bundle.get("entry") or []):
        if not isinstance(entry.get("resource"), dict):
            errors.append(RuleError("IC-01435", f"Bundle.entry[{position}].resource"))
    if errors:
        return errors
    entries = bundle.get("entry") or []
    if entries and entries[0]["resource"].get("resourceType") == "MessageHeader":
        errors = _errors(entries[0]["resource"], "MessageHeader", HEADER, "Bundle.entry[0].resource")
    return errors


def resource_shape_errors(bundle: dict, focus_index: int | None) -> list[RuleError]:
    """Wrong types in the entries (the focus more closely): reported like NPHIES's DT- rules."""
    errors = []
    for position, entry in enumerate(bundle.get("entry") or []):
        resource = entry["resource"]
        kind, where = str(resource.get("resourceType")), f"Bundle.entry[{position}].resource"
        errors += _errors(
            resource, kind, {**ANY_RESOURCE, **(FOCUS if position == focus_index else {})}, where
        )
    return errors


def _errors(node: dict, kind: str, shape: dict[str, type], where: str) -> list[RuleError]:
    errors = []
    for path, expected in shape.items():
        for value, expression in _values(node, path.split("."), where):
            if not isinstance(value, expected):
                element = f"{kind}.{path.replace('[]', '')}"
                errors.append(RuleError(data_type_rule(element), expression))
    return errors


def _values(node: Any, parts: list[str], where: str) -> Iterator[tuple[Any, str]]:
    """The values at a path such as `destination[].receiver`, skipping what is absent or mistyped above."""
    if not parts:
        yield node, where
        return
    if not isinstance(node, dict):
        return
    name, many = parts[0].removesuffix("[]"), parts[0].endswith("[]")
    if name not in node or node[name] is None:
        return
    value = node[name]
    if not many:
        yield from _values(value, parts[1:], f"{where}.{name}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _values(item, parts[1:], f"{where}.{name}[{position}]")
