"""The CapabilityStatement, generated from what the server really implements."""

from .. import __version__
from ..resources.search.definitions import SearchRegistry
from ..resources.types import supported_types
from ..subscriptions.topics import capability_extensions
from .bundle_routes import BUNDLE_INTERACTIONS
from .negotiation import JSON_PATCH, MERGE_PATCH
from .rest import INTERACTIONS, SYSTEM_INTERACTIONS
from .search_routes import SYSTEM_SEARCH_INTERACTIONS

NPHIES_SANDBOX_EXTENSION = "urn:nphies-facade:extension:nphies-sandbox"
SANDBOX_NOTE = "NPHIES SANDBOX: messages go to the embedded NPHIES simulator, not to NPHIES"


def _reverse_includes(registry: SearchRegistry) -> dict[str, list[str]]:
    """Target type -> the `Source:code` reference parameters that can point at it."""
    reverse: dict[str, list[str]] = {}
    for source in sorted(supported_types()):
        for code, param in sorted(registry.params_for(source).items()):
            if param.type == "reference":
                for target in param.targets or sorted(supported_types()):
                    reverse.setdefault(target, []).append(f"{source}:{code}")
    return reverse


def _resource_entry(
    resource_type: str,
    registry: SearchRegistry,
    search_types: set[str] | None,
    reverse: dict[str, list[str]] | None = None,
) -> dict:
    entry: dict = {
        "type": resource_type,
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
    }
    if search_types is not None:
        entry["interaction"].append({"code": "search-type"})
        params = registry.params_for(resource_type)
        entry["searchParam"] = [
            {"name": code, "definition": p.url, "type": p.type}
            for code, p in sorted(params.items())
            if p.type in search_types
        ]
        references = [
            f"{resource_type}:{code}" for code, p in sorted(params.items()) if p.type == "reference"
        ]
        entry["searchInclude"] = ["*", *references]
        entry["searchRevInclude"] = (reverse or {}).get(resource_type, [])
    return entry


def capability_statement(
    base: str,
    registry: SearchRegistry,
    instant: str,
    search_types: set[str] | None = None,
    operations: list[dict] | None = None,
    security: dict | None = None,
    resource_operations: dict[str, list[dict]] | None = None,
    nphies: dict | None = None,
    every_type_operations: list[dict] | None = None,
) -> dict:
    """`nphies` ({"sandbox": bool, "endpoint": url}) says where NPHIES messages go; a sandbox is named in
    the implementation description, an extension and the documentation of each resource operation.
    `every_type_operations` (such as $validate) are listed for every resource type."""
    reverse = _reverse_includes(registry) if search_types is not None else None
    searching = SYSTEM_SEARCH_INTERACTIONS if search_types is not None else ()
    rest: dict = {
        "mode": "server",
        "resource": [_resource_entry(t, registry, search_types, reverse) for t in sorted(supported_types())],
        "interaction": [{"code": code} for code in (*SYSTEM_INTERACTIONS, *BUNDLE_INTERACTIONS, *searching)],
    }
    if operations:
        rest["operation"] = operations
    sandbox = bool(nphies and nphies.get("sandbox"))
    for entry in rest["resource"]:
        found = (resource_operations or {}).get(entry["type"])
        listed = [_sandboxed(o) if sandbox else o for o in found or ()]
        if listed or every_type_operations:
            entry["operation"] = [*listed, *(every_type_operations or ())]
        if entry["type"] == "Subscription":
            entry["extension"] = capability_extensions()
    if security:
        rest["security"] = security
    description = "nphies-facade FHIR R4 server"
    extension = []
    if nphies is not None:
        extension = [{"url": NPHIES_SANDBOX_EXTENSION, "valueBoolean": sandbox}]
        description += (
            f"; {SANDBOX_NOTE} at {nphies['endpoint']}" if sandbox else "; NPHIES messages go to NPHIES"
        )
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant,
        "publisher": "nphies-facade",
        "kind": "instance",
        "software": {"name": "nphies-facade", "version": __version__},
        "implementation": {"description": description, "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": [JSON_PATCH, MERGE_PATCH],
        "rest": [rest],
    }
    if extension:
        statement["extension"] = extension
    return statement


def _sandboxed(operation: dict) -> dict:
    return {**operation, "documentation": f"[{SANDBOX_NOTE}] {operation.get('documentation', '')}"}
