"""Every operation the server offers, from the declarations next to their routes: the
CapabilityStatement's `operation` entries and the requirements table of docs/security.md come from here
(`python -m nphies_facade.server.operation_catalog` prints the table)."""

from ..resources.operations_access import OperationDeclaration, requirements_table
from . import operation_routes, search_routes, subscription_routes, workflow_routes

DECLARATIONS: list[OperationDeclaration] = [
    search_routes.REINDEX,
    *operation_routes.OPERATIONS,
    *workflow_routes.OPERATIONS,
    *subscription_routes.OPERATIONS,
]


def system_operations() -> list[dict]:
    return [d.capability() for d in DECLARATIONS if d.resource_type is None]


def resource_operations() -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    for declaration in DECLARATIONS:
        if declaration.resource_type is not None:
            by_type.setdefault(declaration.resource_type, []).append(declaration.capability())
    return by_type


if __name__ == "__main__":
    print(requirements_table(DECLARATIONS), end="")
