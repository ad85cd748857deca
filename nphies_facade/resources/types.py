"""The FHIR resource types this server accepts: every R4 (4.0.1) resource type, and only those."""

from functools import cache

from .r4_schema import RESOURCE_TYPES


@cache
def supported_types() -> frozenset[str]:
    return frozenset(RESOURCE_TYPES)


def is_supported(resource_type: str) -> bool:
    return resource_type in supported_types()
