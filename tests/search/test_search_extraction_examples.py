"""Index values extracted from official R4 examples, checked by hand against the example files."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.search.values import (
    MAX_MS,
    CompositeValue,
    DateValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
)

EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fhir-examples"
PLUS_TEN = timezone(timedelta(hours=10))
UCUM = "http://unitsofmeasure.org"

needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/fhir-examples is not available")

EXTRACTOR = Extractor(SearchRegistry())


def ms(*fields: int, tz: timezone = UTC) -> int:
    return int(datetime(*fields, tzinfo=tz).timestamp() * 1000)


def example(name: str) -> dict:
    return orjson.loads((EXAMPLES / f"{name}.json").read_bytes())


def exacts(values: list) -> list[str]:
    return [value.exact for value in values]


@needs_examples
def test_patient_example() -> None:
    values = EXTRACTOR.extract(example("Patient-example"))

    assert exacts(values["family"]) == ["Chalmers", "Windsor"]
    assert exacts(values["given"]) == ["Peter", "James", "Jim"]
    assert exacts(values["name"]) == ["Chalmers", "Peter", "James", "Jim", "Windsor"]
    assert values["name"][0] == StringValue("chalmers", "Chalmers")
    assert values["birthdate"] == [DateValue(ms(1974, 12, 25), ms(1974, 12, 26))]
    assert values["identifier"] == [
        TokenValue(
            "urn:oid:1.2.36.146.595.217.0.1",
            "12345",
            None,
            "http://terminology.hl7.org/CodeSystem/v2-0203",
            "MR",
        )
    ]
    assert values["gender"] == [TokenValue(None, "male")]
    assert values["address-city"] == [StringValue("pleasantville", "PleasantVille")]
    assert values["address-postalcode"] == [StringValue("3999", "3999")]
    assert values["telecom"] == [
        TokenValue(None, "(03) 5555 6473"),
        TokenValue(None, "(03) 3410 5613"),
        TokenValue(None, "(03) 5555 8834"),
    ]
    assert values["phone"] == values["telecom"]
    assert "email" not in values
    assert values["active"] == [TokenValue(None, "true")]
    assert values["deceased"] == [TokenValue(None, "false")]
    assert "death-date" not in values
    assert values["organization"] == [ReferenceValue("Organization", "1", "Organization/1")]
    assert values["_id"] == [TokenValue(None, "example")]


@needs_examples
def test_claim_example() -> None:
    values = EXTRACTOR.extract(example("Claim-100150"))

    assert values["patient"] == [ReferenceValue("Patient", "1", "Patient/1")]
    assert values["status"] == [TokenValue(None, "active")]
    assert values["created"] == [DateValue(ms(2014, 8, 16), ms(2014, 8, 17))]
    assert values["identifier"] == [TokenValue("http://happyvalley.com/claim", "12345")]
    assert values["insurer"] == [ReferenceValue("Organization", "2", "Organization/2")]
    assert values["care-team"] == [ReferenceValue("Practitioner", "example", "Practitioner/example")]
    assert values["use"] == [TokenValue(None, "claim")]
    assert values["priority"] == [TokenValue(None, "normal")]


@needs_examples
def test_task_example() -> None:
    values = EXTRACTOR.extract(example("Task-example1"))

    assert values["owner"] == [
        ReferenceValue(
            "Organization",
            "1832473e-2fe0-452d-abe9-3cdb9879522f",
            "Organization/1832473e-2fe0-452d-abe9-3cdb9879522f",
        )
    ]
    assert values["status"] == [TokenValue(None, "in-progress")]
    assert values["focus"] == [ReferenceValue("ServiceRequest", "lipid", "ServiceRequest/lipid")]
    assert values["code"] == [TokenValue(None, None, "Lipid Panel")]
    assert values["business-status"] == [TokenValue(None, None, "waiting for specimen")]
    assert values["authored-on"] == [
        DateValue(ms(2016, 10, 31, 8, 25, 5, tz=PLUS_TEN), ms(2016, 10, 31, 8, 25, 6, tz=PLUS_TEN))
    ]
    assert values["period"] == [DateValue(ms(2016, 10, 31, 8, 25, 5, tz=PLUS_TEN), MAX_MS)]
    assert values["patient"] == [ReferenceValue("Patient", "example", "Patient/example")]
    assert values["subject"] == values["patient"]
    assert values["performer"] == [
        TokenValue("http://terminology.hl7.org/CodeSystem/task-performer-type", "performer", "Performer")
    ]


@needs_examples
def test_financial_task_with_identifier_only_references() -> None:
    values = EXTRACTOR.extract(example("Task-fm-example2"))

    assert values["code"] == [TokenValue("http://terminology.hl7.org/CodeSystem/financialtaskcode", "poll")]
    assert values["status"] == [TokenValue(None, "requested")]
    assert "owner" not in values  # Task.owner is an identifier-only reference
    assert values["requester"] == [ReferenceValue("Organization", "example", "Organization/example")]


@needs_examples
def test_coverage_absolute_reference_keeps_the_url() -> None:
    values = EXTRACTOR.extract(example("Coverage-9876B1"))

    assert values["policy-holder"] == [
        ReferenceValue("Organization", "CBI35", "http://benefitsinc.com/FHIR/Organization/CBI35")
    ]
    assert values["beneficiary"] == [ReferenceValue("Patient", "4", "Patient/4")]


@needs_examples
def test_encounter_length_is_a_quantity() -> None:
    values = EXTRACTOR.extract(example("Encounter-f001"))

    assert values["length"] == [QuantityValue(140.0, 139.5, 140.5, UCUM, "min", "min")]
    assert values["practitioner"] == [ReferenceValue("Practitioner", "f002", "Practitioner/f002")]


def test_choice_types_and_composites_of_an_observation() -> None:
    observation = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T10:30:00+03:00",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    }
    values = EXTRACTOR.extract(observation)

    plus_three = timezone(timedelta(hours=3))
    assert values["date"] == [
        DateValue(ms(2024, 5, 1, 10, 30, tz=plus_three), ms(2024, 5, 1, 10, 30, 1, tz=plus_three))
    ]
    assert values["patient"] == [ReferenceValue("Patient", "p1", "Patient/p1")]
    assert "value-quantity" not in values
    systolic = QuantityValue(120.0, 119.5, 120.5, UCUM, "mm[Hg]", "mmHg")
    assert values["component-value-quantity"][0] == systolic
    assert values["component-code-value-quantity"] == [
        CompositeValue(
            (
                ("component-code", TokenValue("http://loinc.org", "8480-6")),
                ("component-value-quantity", systolic),
            )
        ),
        CompositeValue(
            (
                ("component-code", TokenValue("http://loinc.org", "8462-4")),
                ("component-value-quantity", QuantityValue(80.0, 79.5, 80.5, UCUM, "mm[Hg]", "mmHg")),
            )
        ),
    ]
