"""Loads the stored resources a message needs: the focus's references, followed transitively.

The builders in nphies/ resolve references synchronously and know no store, so the closure is read up
front, one level of references at a time, and handed to them as a dict.
"""

import asyncio
import re

from ..nphies.messages import Resolver
from ..nphies.references import is_local, iter_references
from ..resources.context import RequestContext
from ..resources.errors import FhirError
from ..resources.service import FhirService, resource_json

_STORED = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/(?P<version>\d+))?$")


class Closure(dict[str, dict]):
    """Stored resources by the reference that named them (`Patient/1`, `Claim/7/_history/2`)."""

    @property
    def resolve(self) -> Resolver:
        return self.get


async def load_closure(
    service: FhirService, ctx: RequestContext, focus: dict, known: dict[str, dict] | None = None
) -> Closure:
    """Every stored resource reachable by reference from `focus`; what cannot be read is left out (the
    builder then names the reference it could not resolve)."""
    closure = Closure(known or {})
    level = [focus]
    while level:
        wanted = {r for resource in level for r in _stored_references(resource) if r not in closure}
        read = await asyncio.gather(*(_read(service, ctx, reference) for reference in wanted))
        level = []
        for reference, resource in zip(wanted, read, strict=True):
            if resource is not None:
                closure[reference] = resource
                level.append(resource)
    return closure


def _stored_references(resource: dict) -> set[str]:
    return {
        found.reference
        for found in iter_references(resource)
        if not is_local(found.reference) and _STORED.match(found.reference)
    }


async def _read(service: FhirService, ctx: RequestContext, reference: str) -> dict | None:
    match = _STORED.match(reference)
    assert match is not None
    try:
        if match["version"]:
            stored = await service.vread(match["type"], match["id"], match["version"], ctx=ctx)
        else:
            stored = await service.read(match["type"], match["id"], ctx=ctx)
    except FhirError as exc:
        if exc.status in (404, 410):
            return None
        raise
    return resource_json(stored)
