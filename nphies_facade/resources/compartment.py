"""The Patient compartment: which patients a resource belongs to, per the R4 CompartmentDefinition.

The membership parameters are vendored data (data/patient-compartment.json, see data/SOURCES.md); their
values come from the same search-parameter extraction the index uses, so a resource is in the compartment
of every Patient its compartment parameters refer to.
"""

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from .. import exact_json
from .search.extraction import Extractor
from .search.values import ReferenceValue

if TYPE_CHECKING:
    from .service import FhirService

DATA = Path(__file__).with_name("data") / "patient-compartment.json"


@cache
def compartment_params() -> dict[str, tuple[str, ...]]:
    """{resource type: reference parameters that place it in a Patient's compartment}."""
    data = json.loads(DATA.read_text())
    merged = {**data["resource"], **data["additions"]}
    return {resource_type: tuple(codes) for resource_type, codes in merged.items()}


def patient_reference(value: ReferenceValue) -> str | None:
    if value.type == "Patient" and value.id:
        return f"Patient/{value.id}"
    return None


class PatientCompartment:
    def __init__(self, extractor: Extractor) -> None:
        self.extractor = extractor

    @staticmethod
    def params_for(resource_type: str) -> tuple[str, ...]:
        return compartment_params().get(resource_type, ())

    @staticmethod
    def has_compartment(resource_type: str) -> bool:
        return resource_type in compartment_params()

    def patients(self, resource: dict) -> set[str]:
        """References ("Patient/1") of every patient whose compartment holds the resource."""
        resource_type = resource.get("resourceType")
        found: set[str] = set()
        if resource_type == "Patient" and isinstance(resource.get("id"), str):
            found.add(f"Patient/{resource['id']}")
        codes = self.params_for(resource_type) if isinstance(resource_type, str) else ()
        for value in self._reference_values(resource, codes):
            reference = patient_reference(value)
            if reference is not None:
                found.add(reference)
        return found

    def contains(self, resource: dict, patient: str) -> bool:
        return patient in self.patients(resource)

    def _reference_values(self, resource: dict, codes: Iterable[str]) -> list[ReferenceValue]:
        wanted = set(codes)
        if not wanted:
            return []
        values: list[ReferenceValue] = []
        for plan in self.extractor.plans(resource["resourceType"]):
            if plan.code not in wanted:
                continue
            try:
                extracted = plan.values(resource)
            except Exception:  # a malformed element cannot place a resource in a compartment
                continue
            values.extend(v for v in extracted if isinstance(v, ReferenceValue))
        return values


async def resources_referring(
    service: "FhirService", resource_type: str, codes: Iterable[str], reference: str
) -> list[dict]:
    """Live `resource_type` resources whose reference parameters `codes` point at `reference` (committed
    state, found through the search index, read without authorisation or audit: for internal checks)."""
    found: dict[str, dict] = {}
    for code in codes:
        for resource_id in await service.find_ids(resource_type, [(code, reference)]):
            if resource_id in found:
                continue
            stored = await service.store.read(resource_type, resource_id)
            if stored is not None and stored.body is not None:
                found[resource_id] = exact_json.loads(stored.body)
    return list(found.values())
