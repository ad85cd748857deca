"""Every official R4 example the specification holds valid is accepted; exactly the structurally invalid
ones, named in tests/fixtures/r4-examples-invalid.json with the rule they break, are refused by the schema
check (those the binding and invariant rules refuse are test_examples_rules.py's)."""

import random

import pytest

from nphies_facade.resources.r4_schema import schema_issues
from nphies_facade.resources.types import supported_types

from .examples import invalid_examples, refused_by_rules
from .test_examples_references import refused_by_references

SAMPLE_SIZE = 60


def refused(resource: dict) -> list[str]:
    return [f"{i.expression}: {i.diagnostics}" for i in schema_issues(resource)]


def test_every_valid_official_example_is_accepted_and_only_the_listed_invalid_ones_refused(r4_resources):
    invalid = invalid_examples()
    refusals = {name: refused(resource) for name, resource in r4_resources.items()}
    wrongly_refused = {name: why[:3] for name, why in refusals.items() if why and name not in invalid}
    wrongly_accepted = [name for name in invalid if not refusals.get(name)]
    assert wrongly_refused == {}
    assert wrongly_accepted == []
    assert len(r4_resources) > 5000


def test_exactly_the_r4_resource_types_are_supported(r4_resources):
    r4_types = {
        r["type"]
        for r in r4_resources.values()
        if r["resourceType"] == "StructureDefinition"
        and r["kind"] == "resource"
        and r.get("derivation") == "specialization"
        and not r.get("abstract")
    }
    assert len(r4_types) == 146
    assert supported_types() == r4_types


def _without_id_and_meta(resource: dict) -> dict:
    kept = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        kept["meta"] = meta
    return kept


def _sample(r4_resources: dict[str, dict]) -> list[str]:
    """A fixed sample of the valid examples, with one of each R4-only type the R4B models lacked."""
    refused = invalid_examples().keys() | refused_by_rules().keys() | refused_by_references().keys()
    valid = sorted(name for name in r4_resources if name not in refused)
    r4_only = [n for n in valid if n.startswith(("MedicinalProduct", "EffectEvidence", "RiskEvidence",
                                                  "SubstanceSpecification", "Evidence-"))]  # fmt: skip
    return sorted(set(random.Random(15).sample(valid, SAMPLE_SIZE)) | set(r4_only))


async def test_a_sample_of_official_examples_is_created_read_back_equal_and_found(client, r4_resources):
    for name in _sample(r4_resources):
        resource = r4_resources[name]
        resource_type = resource["resourceType"]
        created = await client.post(f"/{resource_type}", json=resource)
        assert created.status_code == 201, (name, created.text[:500])
        new_id = created.json()["id"]
        read = await client.get(f"/{resource_type}/{new_id}")
        assert read.status_code == 200, name
        assert _without_id_and_meta(read.json()) == _without_id_and_meta(resource), name
        found = await client.get(f"/{resource_type}", params={"_id": new_id})
        assert found.status_code == 200, (name, found.text[:500])
        assert [e["resource"]["id"] for e in found.json().get("entry", [])] == [new_id], name


R4_ONLY = [
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "EffectEvidenceSynthesis",
    "RiskEvidenceSynthesis",
    "SubstanceSpecification",
    "Evidence",
]


@pytest.mark.parametrize("resource_type", R4_ONLY)
async def test_the_r4_types_the_r4b_models_lacked_or_changed_are_served(client, r4_resources, resource_type):
    """Created, read back, updated, searched and listed in the CapabilityStatement."""
    resource = r4_resources[f"{resource_type}-example.json"]
    created = await client.post(f"/{resource_type}", json=resource)
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    read = await client.get(f"/{resource_type}/{new_id}")
    assert _without_id_and_meta(read.json()) == _without_id_and_meta(resource)
    updated = await client.put(f"/{resource_type}/{new_id}", json={**resource, "id": new_id})
    assert updated.status_code == 200, updated.text
    searched = await client.get(f"/{resource_type}", params={"_id": new_id})
    assert [e["resource"]["id"] for e in searched.json()["entry"]] == [new_id]
    everything = await client.get(f"/{resource_type}")
    assert everything.json()["entry"][0]["resource"]["meta"]["versionId"] == "2"
    metadata = (await client.get("/metadata")).json()
    assert resource_type in {r["type"] for r in metadata["rest"][0]["resource"]}
