"""The closure of a message: the focus and every resource it references (transitively), in the IG's order."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..references import is_local, iter_references
from .profiles import profile_for

Resolver = Callable[[str], dict | None]


class MessageBuildError(ValueError):
    """The stored resources cannot make a valid message (missing reference, wrong type ...)."""


@dataclass
class Collected:
    """The resources of a message, each once, with the element name that first referenced it."""

    resources: list[dict] = field(default_factory=list)
    roles: list[str | None] = field(default_factory=list)
    index_by_key: dict[str, int] = field(default_factory=dict)
    index_by_reference: dict[str, int] = field(default_factory=dict)


def resource_key(resource: dict) -> str:
    """`Type/id`; a resource without an id is only itself."""
    identity = resource.get("id") or f"#{id(resource)}"
    return f"{resource.get('resourceType')}/{identity}"


def collect(focus: dict, resolve: Resolver) -> Collected:
    """The focus then every resource reachable through references, breadth first, each once."""
    collected = Collected()
    _add(collected, focus, None)
    position = 0
    while position < len(collected.resources):
        resource = collected.resources[position]
        for found in iter_references(resource):
            reference = found.reference
            if is_local(reference) or reference in collected.index_by_reference:
                continue
            target = resolve(reference)
            if target is None:
                where = f"{resource.get('resourceType')}.{found.path}"
                raise MessageBuildError(f"{where} refers to {reference!r}, which cannot be resolved")
            collected.index_by_reference[reference] = _add(collected, target, _role(found.path))
        position += 1
    return collected


def _add(collected: Collected, resource: dict, role: str | None) -> int:
    key = resource_key(resource)
    if key not in collected.index_by_key:
        collected.index_by_key[key] = len(collected.resources)
        collected.resources.append(resource)
        collected.roles.append(role)
    return collected.index_by_key[key]


# Entry order of the IG's "Structure of Selected Request Messages" (table 8), after the focus: the
# beneficiary, provider, insurer, coverage ... and last any other Patient (e.g. the subscriber).
_GUIDE_ORDER = [
    ("Patient", lambda role, profile: role in ("patient", "beneficiary", "subject")),
    ("Organization", lambda role, profile: profile == "provider-organization"),
    ("Organization", lambda role, profile: profile == "insurer-organization"),
    *((name, None) for name in ("Coverage", "Practitioner", "PractitionerRole", "MedicationRequest")),
    *((name, None) for name in ("DeviceRequest", "ClaimResponse", "Encounter")),
]


def _guide_rank(resource: dict, role: str | None) -> int:
    resource_type = resource.get("resourceType")
    for rank, (wanted_type, matches) in enumerate(_GUIDE_ORDER):
        if resource_type == wanted_type and (matches is None or matches(role, profile_for(resource, role))):
            return rank
    return len(_GUIDE_ORDER) + (resource_type in ("Patient", "Organization"))


def in_guide_order(collected: Collected) -> Collected:
    """The focus first, then the referenced resources in the guide's order (stable within a kind)."""
    rest = sorted(
        range(1, len(collected.resources)),
        key=lambda i: _guide_rank(collected.resources[i], collected.roles[i]),
    )
    order = [0, *rest]
    reordered = Collected(
        resources=[collected.resources[i] for i in order],
        roles=[collected.roles[i] for i in order],
    )
    new_position = {old: new for new, old in enumerate(order)}
    reordered.index_by_key = {key: new_position[i] for key, i in collected.index_by_key.items()}
    reordered.index_by_reference = {ref: new_position[i] for ref, i in collected.index_by_reference.items()}
    return reordered


def _role(path: str) -> str:
    """The element name that holds a reference: `insurance[0].coverage` -> `coverage`."""
    return re.sub(r"\[\d+\]", "", path).split(".")[-1]
