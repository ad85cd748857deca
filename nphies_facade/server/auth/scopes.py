"""SMART on FHIR scopes, v1 and v2: parsing, and which scopes grant an interaction on a resource type.

`patient/Patient.rs`, `user/Claim.cruds`, `system/*.read`, `patient/Observation.rs?category=laboratory`.
v1 `read` is v2 `rs`, `write` is `cud`, `*` is `cruds`. Non-resource scopes (openid, fhirUser, launch,
offline_access ...) parse to None. AuditEvent is granted only by scopes that name it: a wildcard never
reaches the audit trail.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
V2_ORDER = "cruds"
EXPLICIT_ONLY = frozenset({"AuditEvent"})

_SCOPE = re.compile(r"(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?")


class ScopeError(ValueError):
    """A resource scope that does not follow SMART's grammar."""


@dataclass(frozen=True, slots=True)
class Scope:
    context: str
    resource_type: str
    permissions: frozenset[str]
    restrictions: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers(self, resource_type: str | None) -> bool:
        """Whether the scope names this type; None (system-wide history, search or operations) needs `*`."""
        if resource_type is None:
            return self.resource_type == "*"
        if self.resource_type == resource_type:
            return True
        return self.resource_type == "*" and resource_type not in EXPLICIT_ONLY

    def grants(self, letter: str, resource_type: str | None) -> bool:
        return letter in self.permissions and self.covers(resource_type)

    @property
    def conditional(self) -> bool:
        """True when what it grants depends on the resource (patient compartment, query restriction)."""
        return self.context == "patient" or bool(self.restrictions)

    def includes(self, other: "Scope") -> bool:
        """Whether granting this scope grants everything `other` asks for (the token endpoint narrows)."""
        return (
            self.context == other.context
            and (self.resource_type == other.resource_type or self.resource_type == "*")
            and other.permissions <= self.permissions
            and (not self.restrictions or self.restrictions == other.restrictions)
        )


def _permissions(text: str, scope: str) -> frozenset[str]:
    if text in V1_PERMISSIONS:
        return frozenset(V1_PERMISSIONS[text])
    positions = [V2_ORDER.find(letter) for letter in text]
    if not text or -1 in positions or positions != sorted(set(positions)):
        raise ScopeError(f"{scope!r}: permissions must be read, write, * or letters of 'cruds' in that order")
    return frozenset(text)


def parse_scope(text: str) -> Scope | None:
    """A resource scope, or None for scopes that grant no resource access (openid, launch/patient ...)."""
    if "/" not in text or text.split("/", 1)[0] not in CONTEXTS:
        return None
    match = _SCOPE.fullmatch(text)
    if match is None:
        raise ScopeError(f"{text!r} is not a SMART scope such as patient/Observation.rs")
    context, resource_type, permissions, query = match.groups()
    restrictions = tuple(parse_qsl(query[1:], keep_blank_values=True)) if query else ()
    return Scope(context, resource_type, _permissions(permissions, text), restrictions, text)


def parse_scopes(texts: Iterable[str]) -> list[Scope]:
    """Resource scopes among `texts`; malformed ones raise ScopeError."""
    scopes = []
    for text in texts:
        scope = parse_scope(text)
        if scope is not None:
            scopes.append(scope)
    return scopes


def split_scope_string(value: object) -> tuple[str, ...]:
    """The `scope` claim is a space-separated string (some servers send a list)."""
    if isinstance(value, str):
        return tuple(part for part in value.split() if part)
    if isinstance(value, list):
        return tuple(part for part in value if isinstance(part, str) and part)
    return ()


def narrow(requested: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The requested scopes a client registered for `allowed` may be granted (others are dropped)."""
    allowed_list = list(allowed)
    allowed_scopes = parse_scopes(allowed_list)
    granted = []
    for text in requested:
        if text in allowed_list:
            granted.append(text)
            continue
        scope = parse_scope(text)
        if scope is not None and any(a.includes(scope) for a in allowed_scopes):
            granted.append(text)
    return granted
