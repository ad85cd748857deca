"""The one place where search-parameter expressions are rewritten before they are compiled or evaluated.

The official R4 expressions use a few things fhirpathpy cannot evaluate on a single resource. Each rewrite
below keeps the meaning the search specification gives the expression, and both extraction paths (the
compiler and the fhirpathpy fallback) see only the rewritten text, so they stay comparable.
"""

import re

# The Resource/DomainResource parameters are written `Resource.id`, `Resource.meta.tag` ...; fhirpathpy
# does not treat `Resource` as a name for the resource at hand (it returns nothing), so the root becomes
# the concrete type.
_ABSTRACT_ROOT = re.compile(r"(^|\|\s*|\(\s*)(?:DomainResource|Resource)\.")

# (pattern, replacement, why)
REWRITES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"\.where\(\s*resolve\(\)\s+is\s+([A-Z][A-Za-z]+)\s*\)"),
        r".where(reference.matches('(^|/)\1/[^/]+(/_history/[^/]+)?$'))",
        "resolve() needs the referenced resource, which extraction does not have (fhirpathpy raises "
        "'Not implemented: resolve'); the reference's own text says its target type, e.g. 'Patient/1' "
        "or 'http://host/fhir/Patient/1/_history/2'.",
    ),
    (
        re.compile(r"\(\s*([A-Za-z][A-Za-z0-9_.]*)\s+as\s+([A-Za-z][A-Za-z0-9_.]*)\s*\)"),
        r"\1.ofType(\2)",
        "'(x as T)' is an error on collections of more than one item (fhirpathpy raises 'Expected "
        "singleton'), e.g. (ActivityDefinition.useContext.value as Quantity); search means 'the items "
        "of type T', which is ofType(T).",
    ),
    (
        re.compile(r"\.as\(\s*([A-Za-z][A-Za-z0-9_.]*)\s*\)"),
        r".ofType(\1)",
        "the function form .as(T) of the same thing, used by composite components: value.as(Quantity).",
    ),
)


def rewrite(expression: str, resource_type: str) -> str:
    """The expression as both extraction paths evaluate it on a resource of `resource_type`."""
    expression = _ABSTRACT_ROOT.sub(lambda m: f"{m.group(1)}{resource_type}.", expression)
    for pattern, replacement, _why in REWRITES:
        expression = pattern.sub(replacement, expression)
    return expression
