"""R4 element types for the compiler: which elements are choice types and what type a path has.

It reads the same R4 model tables fhirpathpy uses (shipped inside fhirpathpy), and walks paths the way
fhirpathpy does, so a compiled accessor picks the same `value[x]` variants fhirpathpy picks.
"""

from dataclasses import dataclass
from functools import cache

from fhirpathpy.models import models


@dataclass(frozen=True, slots=True)
class ChoiceVariant:
    key: str  # JSON property, e.g. "valueQuantity"
    type_name: str  # element type fhirpathpy gives it, e.g. "Quantity", "dateTime"


@dataclass(frozen=True, slots=True)
class Child:
    """The result of navigating `name` from a typed path."""

    path: str | None  # the child's type (or backbone path); None when it depends on the data
    variants: tuple[ChoiceVariant, ...]  # non-empty for a choice element


_RESOURCE_TYPES_BY_DATA = frozenset({"Resource", "DomainResource"})


@cache
def _tables() -> tuple[dict, dict, dict]:
    r4 = models["r4"]
    return r4["choiceTypePaths"], r4["path2Type"], r4["pathsDefinedElsewhere"]


def r4_model() -> dict:
    """The model dict to hand to fhirpathpy."""
    return models["r4"]


def child(path: str, name: str) -> Child:
    choices, path_types, defined_elsewhere = _tables()
    child_path = f"{path}.{name}"
    child_path = defined_elsewhere.get(child_path, child_path)
    variant_types = choices.get(child_path)
    if variant_types:
        variants = tuple(
            ChoiceVariant(f"{name}{t}", path_types.get(child_path + t, child_path + t)) for t in variant_types
        )
        return Child(None, variants)
    if name == "extension":
        return Child("Extension", ())
    child_type = path_types.get(child_path, child_path)
    # A contained or bundled resource takes its path from its own resourceType at run time.
    return Child(None if child_type in _RESOURCE_TYPES_BY_DATA else child_type, ())


def is_type(type_name: str | None, wanted: str) -> bool:
    """Whether an element of `type_name` is selected by ofType(wanted): the exact type, as fhirpathpy does.

    (fhirpathpy also accepts subtypes, Age for Quantity, canonical for uri, but only after some `is`/`as`
    has set its global model; the search parameters mean the exact choice variant: `target-uri` is
    `ConceptMap.targetUri`, not `targetCanonical`.)
    """
    return type_name is not None and type_name == wanted.removeprefix("FHIR.")


def is_backbone_path(path: str) -> bool:
    """Paths with a dot are backbone elements, whose type is not a named datatype."""
    return "." in path
