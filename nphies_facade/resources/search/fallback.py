"""Accessors that evaluate FHIRPath with fhirpathpy, for the expressions the compiler does not translate.

Each expression is parsed once (`fhirpathpy.compile`) with the R4 model, which fhirpathpy needs to
resolve choice types (`Observation.value` -> `valueQuantity`).
"""

import fhirpathpy

from nphies_facade.resources.search.compiler import Accessor, RelativeAccessor
from nphies_facade.resources.search.expressions import split_union
from nphies_facade.resources.search.model import r4_model


def _uses_resource_variable(expression: str) -> bool:
    return "%resource" in expression or "%rootResource" in expression


def fallback_accessor(expression: str) -> Accessor:
    evaluate = fhirpathpy.compile(expression, model=r4_model())
    if _uses_resource_variable(expression):
        return lambda resource: evaluate(resource, {"resource": resource, "rootResource": resource})
    return lambda resource: evaluate(resource)


def fallback_items(expression: str) -> Accessor:
    """Like fallback_accessor, but the items keep fhirpathpy's type information (for composite parts).

    fhirpathpy's `|` drops the type of what it unites (`Observation | Observation.component` gives the
    components no path, so `value` in a part no longer finds `valueQuantity`); each branch is evaluated
    on its own instead.
    """
    options = {"returnRawData": True}
    branches = [fhirpathpy.compile(b, model=r4_model(), options=options) for b in split_union(expression)]
    return lambda resource: [item for evaluate in branches for item in evaluate(resource)]


def fallback_relative(expression: str) -> RelativeAccessor:
    """An accessor for an expression evaluated on an item returned by fallback_items."""
    evaluate = fhirpathpy.compile(expression, model=r4_model())
    return lambda item, root: evaluate(item, {"resource": root, "rootResource": root})
