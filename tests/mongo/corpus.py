"""Real resources (the official R4 examples in ../shared/fhir-examples) plus generated ones, and search
queries derived from the values they index: every kind of criterion, modifier and prefix."""

import json
from datetime import UTC, datetime
from pathlib import Path

from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.search.values import (
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)
from nphies_facade.resources.types import is_supported

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-examples"
SAMPLES_PER_PARAMETER = 2
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"


def official_examples() -> list[dict]:
    resources = []
    for path in sorted(EXAMPLES.glob("*.json")):
        resource = json.loads(path.read_text())
        if resource.get("id") and is_supported(resource.get("resourceType", "")):
            resources.append(resource)
    return resources


def generated() -> list[dict]:
    """Observations with quantities and components (composites), and patients pointing at each other."""
    resources: list[dict] = []
    for n, (code, value, unit, when) in enumerate(
        [
            ("8867-4", 72, "/min", "2024-01-01"),
            ("8867-4", 90.5, "/min", "2024-02-01T10:30:00Z"),
            ("29463-7", 80, "kg", "2024-03"),
            ("29463-7", 95.25, "kg", "2023"),
        ]
    ):
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"gen-obs-{n}",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": code}], "text": f"Vital sign {code}"},
                "subject": {"reference": f"Patient/gen-pat-{n % 2}"},
                "effectiveDateTime": when,
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                        "valueQuantity": {
                            "value": 100 + n * 10,
                            "unit": "mm[Hg]",
                            "system": UCUM,
                            "code": "mm[Hg]",
                        },
                    }
                ],
            }
        )
    for n, (family, born) in enumerate([("Ali", "1980-05-01"), ("Ålvarez  de la Cruz", "1990")]):
        resources.append(
            {
                "resourceType": "Patient",
                "id": f"gen-pat-{n}",
                "meta": {
                    "profile": [f"http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/patient|1.0.{n}"]
                },
                "name": [{"family": family, "given": ["Sára", "Lee"]}],
                "birthDate": born,
                "gender": ["male", "female"][n],
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                            ]
                        },
                        "system": "http://hospital.example/mrn",
                        "value": f"MRN-{n}",
                    }
                ],
                "generalPractitioner": [{"reference": "http://other.example/fhir/Practitioner/77"}],
                "link": [{"other": {"reference": f"Patient/gen-pat-{1 - n}"}, "type": "seealso"}],
            }
        )
    for n, factor in enumerate([0.8, 1.25, 3]):
        resources.append(
            {
                "resourceType": "ChargeItem",
                "id": f"gen-charge-{n}",
                "status": "billable",
                "code": {"coding": [{"system": "http://example.org/charges", "code": f"C{n}"}]},
                "subject": {"reference": f"Patient/gen-pat-{n % 2}"},
                "factorOverride": factor,
            }
        )
    for n, probability in enumerate([0.02, 0.5]):
        resources.append(
            {
                "resourceType": "RiskAssessment",
                "id": f"gen-risk-{n}",
                "status": "final",
                "subject": {"reference": f"Patient/gen-pat-{n}"},
                "prediction": [{"probabilityDecimal": probability}],
            }
        )
    return resources


def corpus() -> list[dict]:
    return official_examples() + generated()


def _date(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _token_queries(code: str, v: TokenValue) -> list[tuple[str, str]]:
    queries = []
    if v.code:
        queries += [(code, v.code), (f"{code}:not", v.code)]
        queries.append((code, f"{v.system}|{v.code}" if v.system else f"|{v.code}"))
    if v.system:
        queries.append((code, f"{v.system}|"))
    if v.text:
        queries.append((f"{code}:text", v.text[:4]))
    if v.type_code and v.code:
        queries.append((f"{code}:of-type", f"{v.type_system or ''}|{v.type_code}|{v.code}"))
    return queries


def _range_queries(code: str, value: float, suffix: str = "") -> list[tuple[str, str]]:
    text = f"{value:g}"
    return [(code, f"{prefix}{text}{suffix}") for prefix in ("", "ne", "gt", "lt", "ge", "le", "ap")]


def queries_for(code: str, value: object) -> list[tuple[str, str]]:
    match value:
        case StringValue():
            return [
                (code, value.norm[:3]),
                (f"{code}:exact", value.exact),
                (f"{code}:contains", value.norm[1:4]),
            ]
        case TokenValue():
            return _token_queries(code, value)
        case ReferenceValue():
            queries = [(code, value.url)]
            if value.type and value.id:
                queries += [(code, value.id), (f"{code}:{value.type}", value.id)]
            return queries
        case UriValue():
            return [(code, value.uri), (f"{code}:below", value.uri[:12]), (f"{code}:above", value.uri + "/x")]
        case DateValue():
            day = _date(value.lo)
            return [
                (code, f"{prefix}{day}") for prefix in ("", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
            ] + [(code, day[:4])]
        case QuantityValue():
            queries = _range_queries(code, value.value)
            if value.code:
                queries.append((code, f"{value.value:g}|{value.system or ''}|{value.code}"))
                queries.append((code, f"gt{value.value:g}||{value.code}"))
            return queries
        case NumberValue():
            return _range_queries(code, value.value)
    return []


def derived_queries(resources: list[dict], extractor: Extractor) -> list[tuple[str, list[tuple[str, str]]]]:
    """(type, params) pairs: for each parameter with values in the corpus, queries built from a few of
    them, and `:missing` both ways."""
    samples: dict[tuple[str, str], list] = {}
    for resource in resources:
        for code, values in extractor.extract(resource).items():
            kept = samples.setdefault((resource["resourceType"], code), [])
            for value in values:
                if len(kept) < SAMPLES_PER_PARAMETER and value not in kept:
                    kept.append(value)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for (resource_type, code), values in sorted(samples.items(), key=lambda item: item[0]):
        out += [(resource_type, [(f"{code}:missing", flag)]) for flag in ("true", "false")]
        for value in values:
            out += [(resource_type, [query]) for query in queries_for(code, value)]
    return out


HANDWRITTEN: list[tuple[str, list[tuple[str, str]]]] = [
    ("Observation", [("code-value-quantity", "8867-4$gt80")]),
    ("Observation", [("code-value-quantity", f"{LOINC}|29463-7$le80|{UCUM}|kg")]),
    ("Observation", [("component-code-value-quantity", "8480-6$ge110")]),
    ("Observation", [("subject:Patient.name", "ali")]),
    ("Observation", [("subject:Patient.birthdate", "lt1985")]),
    ("Patient", [("_has:Observation:subject:code", "29463-7")]),
    ("Patient", [("_has:Observation:subject:value-quantity", "gt85")]),
    ("Patient", [("link:Patient.gender", "female")]),
    ("Patient", [("_id", "gen-pat-0,example")]),
    ("Patient", [("gender", "male,female"), ("birthdate", "ge1985")]),
    ("Patient", [("name", "alv"), ("given", "sara")]),
    ("Task", [("status:not", "completed"), ("_has:Task:part-of:status", "completed")]),
    ("Claim", [("patient:Patient.name", "pet")]),
]
