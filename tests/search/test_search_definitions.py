"""The search-parameter registry: official definitions split per base, common ones, custom ones."""

import pytest

from nphies_facade.resources.search.definitions import SearchParam, SearchRegistry, branches_by_base
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.search.rewrites import rewrite
from nphies_facade.resources.search.values import CompositeValue, ReferenceValue, StringValue, TokenValue

REGISTRY = SearchRegistry()

MEMBER_ID = {
    "resourceType": "SearchParameter",
    "url": "http://nphies.sa/fhir/ksa/nphies-fs/SearchParameter/coverage-member-id",
    "name": "member-id",
    "status": "active",
    "code": "member-id",
    "base": ["Coverage"],
    "type": "token",
    "expression": "Coverage.identifier.where(system='http://nphies.sa/member-id')",
}


def test_union_expressions_are_split_so_each_base_gets_its_own_branches() -> None:
    patient = REGISTRY.get("Claim", "patient")
    assert patient is not None
    assert patient.expression == "Claim.patient"
    assert patient.base == ("Claim",)
    assert patient.type == "reference"
    assert patient.targets == ("Patient",)
    assert REGISTRY.get("Task", "patient").expression == "Task.for.where(resolve() is Patient)"
    assert REGISTRY.get("Encounter", "date").expression == "Encounter.period"


def test_choice_branches_in_parentheses_stay_with_their_base() -> None:
    assert REGISTRY.get("Patient", "death-date").expression == "(Patient.deceased as dateTime)"
    assert REGISTRY.get("Observation", "value-quantity").expression == (
        "(Observation.value as Quantity) | (Observation.value as SampledData)"
    )


def test_relative_branches_belong_to_every_base() -> None:
    assert branches_by_base("name | alias", ["InsurancePlan"]) == {"InsurancePlan": "name | alias"}
    assert branches_by_base("A.x | B.y | (A.z as T)", ["A", "B", "C"]) == {
        "A": "A.x | (A.z as T)",
        "B": "B.y",
    }


def test_every_type_gets_the_common_resource_parameters() -> None:
    params = REGISTRY.params_for("Patient")
    assert {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"} <= set(params)
    assert params["_id"].base == ("Patient",)
    assert not {"_text", "_content", "_query"} & set(params)
    assert len(params) == 29


def test_parameters_that_cannot_be_extracted_are_left_out() -> None:
    assert REGISTRY.get("Location", "near") is None
    assert REGISTRY.get("Location", "address-city") is not None


def test_composite_parameters_keep_their_components() -> None:
    combo = REGISTRY.get("Observation", "code-value-quantity")
    assert combo is not None
    assert combo.components == (
        ("http://hl7.org/fhir/SearchParameter/clinical-code", "code"),
        ("http://hl7.org/fhir/SearchParameter/Observation-value-quantity", "value.as(Quantity)"),
    )
    assert REGISTRY.by_url("http://hl7.org/fhir/SearchParameter/clinical-code").code == "code"


def test_params_for_returns_a_copy() -> None:
    params = REGISTRY.params_for("Task")
    params.clear()
    assert REGISTRY.params_for("Task")


def test_rewrites_make_expressions_fhirpathpy_can_evaluate() -> None:
    assert rewrite("Resource.meta.tag", "Claim") == "Claim.meta.tag"
    assert rewrite("Task.for.where(resolve() is Patient)", "Task") == (
        "Task.for.where(reference.matches('(^|/)Patient/[^/]+(/_history/[^/]+)?$'))"
    )
    assert rewrite(
        "(Observation.value as Quantity) | (Observation.component.value as Quantity)", "Observation"
    ) == ("Observation.value.ofType(Quantity) | Observation.component.value.ofType(Quantity)")
    assert rewrite("value.as(CodeableConcept)", "Observation") == "value.ofType(CodeableConcept)"
    assert rewrite("DocumentReference.subject", "DocumentReference") == "DocumentReference.subject"


def test_custom_search_parameter_is_registered_and_extracted() -> None:
    registry = SearchRegistry()
    extractor = Extractor(registry)
    coverage = {
        "resourceType": "Coverage",
        "id": "c1",
        "status": "active",
        "identifier": [
            {"system": "http://nphies.sa/member-id", "value": "0000000001-01"},
            {"system": "http://other", "value": "x"},
        ],
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/ins"}],
    }
    assert "member-id" not in extractor.extract(coverage)

    [param] = registry.add(MEMBER_ID)

    assert param == SearchParam(
        code="member-id",
        url=MEMBER_ID["url"],
        type="token",
        base=("Coverage",),
        expression=MEMBER_ID["expression"],
    )
    assert registry.get("Coverage", "member-id") == param
    values = extractor.extract(coverage)
    assert values["member-id"] == [TokenValue("http://nphies.sa/member-id", "0000000001-01")]
    assert values["beneficiary"] == [ReferenceValue("Patient", "p1", "Patient/p1")]


def test_custom_extension_parameter_is_compiled() -> None:
    registry = SearchRegistry()
    registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/patient-occupation",
            "code": "occupation",
            "base": ["Patient"],
            "type": "token",
            "expression": "Patient.extension('http://nphies.sa/occupation').value",
        }
    )
    extractor = Extractor(registry)
    patient = {
        "resourceType": "Patient",
        "extension": [
            {
                "url": "http://nphies.sa/occupation",
                "valueCodeableConcept": {"coding": [{"system": "s", "code": "x"}]},
            },
            {"url": "http://other", "valueString": "no"},
        ],
    }
    plan = next(plan for plan in extractor.plans("Patient") if plan.code == "occupation")
    assert plan.compiled
    assert extractor.extract(patient)["occupation"] == [TokenValue("s", "x")]
    assert Extractor(registry, use_compiler=False).extract(patient)["occupation"] == [TokenValue("s", "x")]


def test_custom_composite_parameter_needs_known_components() -> None:
    registry = SearchRegistry()
    composite = {
        **MEMBER_ID,
        "code": "class-type-value",
        "type": "composite",
        "expression": "Coverage.class",
        "component": [
            {"definition": "http://hl7.org/fhir/SearchParameter/Coverage-class-type", "expression": "type"},
            {"definition": "http://example.org/unknown", "expression": "value"},
        ],
    }
    with pytest.raises(ValueError, match="not a known parameter"):
        registry.add(composite)
    composite["component"][1]["definition"] = "http://hl7.org/fhir/SearchParameter/Coverage-class-value"
    registry.add(composite)
    coverage = {
        "resourceType": "Coverage",
        "class": [{"type": {"coding": [{"code": "plan"}]}, "value": "Gold"}],
    }
    assert Extractor(registry).extract(coverage)["class-type-value"] == [
        CompositeValue(
            (("class-type", TokenValue(None, "plan")), ("class-value", StringValue("gold", "Gold")))
        )
    ]


def test_custom_parameter_replaces_one_with_the_same_code() -> None:
    registry = SearchRegistry()
    registry.add({**MEMBER_ID, "code": "identifier"})
    assert registry.get("Coverage", "identifier").expression == MEMBER_ID["expression"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": None}, "code"),
        ({"code": "has space"}, "code"),
        ({"base": []}, "base"),
        ({"base": "Coverage"}, "base"),
        ({"type": "special"}, "type"),
        ({"type": None}, "type"),
        ({"expression": None}, "expression"),
        ({"expression": "  "}, "expression"),
        ({"expression": "Coverage.identifier.where(system='x'"}, "not valid FHIRPath"),
        ({"expression": "Patient.identifier"}, "no branch for base"),
        ({"resourceType": "Patient"}, "resourceType"),
        ({"type": "composite", "component": [{"definition": "x"}]}, "component"),
        ({"expression": "Coverage.payor.resolve().name"}, "resolve"),
    ],
)
def test_invalid_search_parameters_are_refused_with_a_clear_message(change: dict, message: str) -> None:
    registry = SearchRegistry()
    resource = {key: value for key, value in {**MEMBER_ID, **change}.items() if value is not None}
    with pytest.raises(ValueError, match=message):
        registry.add(resource)
    assert registry.get("Coverage", "member-id") is None
