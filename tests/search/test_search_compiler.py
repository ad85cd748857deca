"""The FHIRPath compiler: what it translates, what it hands to fhirpathpy, and the fallback doing so."""

import pytest

from nphies_facade.resources.search.compiler import NotCompilable, compile_accessor
from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.expressions import split_union
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.search.rewrites import rewrite
from nphies_facade.resources.search.values import TokenValue

PATIENT = {
    "resourceType": "Patient",
    "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}, {"value": "x"}],
    "name": [{"family": "A", "given": ["B", "C"]}, {"given": ["D"]}],
    "extension": [
        {"url": "http://e/1", "valueString": "one"},
        {"url": "http://e/2", "valueCode": "two"},
        {"url": "http://e/1", "valueString": "uno"},
    ],
}


def select(expression: str, resource: dict) -> list:
    return compile_accessor(rewrite(expression, resource["resourceType"]), resource["resourceType"])(resource)


def test_paths_flatten_lists() -> None:
    assert select("Patient.name.given", PATIENT) == ["B", "C", "D"]
    assert select("Patient.name.family | Patient.name.given", PATIENT) == ["A", "B", "C", "D"]
    assert select("Patient.birthDate", PATIENT) == []


def test_where_with_a_literal() -> None:
    assert select("Patient.telecom.where(system='phone')", PATIENT) == [{"system": "phone", "value": "1"}]


def test_choice_types_select_their_variant() -> None:
    observation = {"resourceType": "Observation", "valueQuantity": {"value": 1}, "effectiveDateTime": "2020"}
    assert select("(Observation.value as Quantity)", observation) == [{"value": 1}]
    assert select("Observation.value.as(CodeableConcept)", observation) == []
    assert select("Observation.value", observation) == [{"value": 1}]
    assert select("Observation.effective", observation) == ["2020"]


def test_resolve_is_type_reads_the_reference_text() -> None:
    task = {"resourceType": "Task", "for": {"reference": "http://h/fhir/Patient/1/_history/2"}}
    assert select("Task.for.where(resolve() is Patient)", task) == [task["for"]]
    for reference in ("XPatient/1", "Group/1", "Patient"):
        assert select("Task.for.where(resolve() is Patient)", {**task, "for": {"reference": reference}}) == []


def test_extension_by_url_returns_every_match() -> None:
    assert select("Patient.extension('http://e/1').value", PATIENT) == ["one", "uno"]


def test_index_and_boolean_expressions() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}, {}],
    }
    assert select("Bundle.entry[0].resource", bundle) == [{"resourceType": "Composition", "id": "c"}]
    deceased = "Patient.deceased.exists() and Patient.deceased != false"
    assert select(deceased, PATIENT) == [False]
    assert select(deceased, {"resourceType": "Patient", "deceasedBoolean": True}) == [True]
    assert select(deceased, {"resourceType": "Patient", "deceasedDateTime": "2020"}) == [True]
    assert select(deceased, {"resourceType": "Patient", "deceasedBoolean": False}) == [False]


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.select(given)",
        "Patient.identifier.where(system.startsWith('http://nphies.sa'))",
        "Patient.birthDate > @2000",
        "Patient.generalPractitioner.resolve()",
        "Patient.name.given + 'x'",
        "Patient.contained.name",
    ],
)
def test_what_the_compiler_does_not_translate(expression: str) -> None:
    with pytest.raises(NotCompilable):
        compile_accessor(expression, "Patient")


def test_untranslated_custom_expression_is_evaluated_by_fhirpathpy() -> None:
    registry = SearchRegistry()
    registry.add(
        {
            "resourceType": "SearchParameter",
            "code": "nphies-id",
            "base": ["Patient"],
            "type": "token",
            "expression": "Patient.identifier.where(system.startsWith('http://nphies.sa/'))",
        }
    )
    extractor = Extractor(registry)
    plan = next(plan for plan in extractor.plans("Patient") if plan.code == "nphies-id")
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "http://nphies.sa/identifier/iqama", "value": "2000000001"},
            {"system": "http://hospital/mrn", "value": "7"},
        ],
    }
    assert not plan.compiled
    assert extractor.extract(patient)["nphies-id"] == [
        TokenValue("http://nphies.sa/identifier/iqama", "2000000001")
    ]


def test_union_split_respects_parentheses_and_strings() -> None:
    assert split_union("A.b | (A.c as T) | A.d.where(x='p|q')") == ["A.b", "(A.c as T)", "A.d.where(x='p|q')"]
