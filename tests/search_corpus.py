"""The search test corpus: the official R4 examples plus hand-made resources whose values sit on the
edges each parameter type has (precision, time zones, accents, escapes, absolute references ...)."""

import json

from .conftest import FHIR_EXAMPLES

NID = "http://nphies.sa/identifier/nationalid"
IQAMA = "http://nphies.sa/identifier/iqama"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
WF = "http://nphies-facade/workflow"
BS = "http://nphies-facade/business-status"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PROFILE = "http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/patient"

SKIPPED_EXAMPLES = ("Bundle-searchParams.json",)


def examples() -> list[dict]:
    """The official examples, each under its own id (they refer to each other that way)."""
    if not FHIR_EXAMPLES.is_dir():
        return []
    found = []
    for path in sorted(FHIR_EXAMPLES.glob("*.json")):
        if path.name not in SKIPPED_EXAMPLES:
            found.append(json.loads(path.read_text()))
    return found


def patients() -> list[dict]:
    return [
        {
            "resourceType": "Patient",
            "id": "p1",
            "meta": {
                "profile": [PROFILE],
                "tag": [{"system": "urn:tags", "code": "vip"}],
                "source": "urn:emr:alpha",
            },
            "active": True,
            "identifier": [
                {
                    "type": {"coding": [{"system": V2, "code": "NI"}]},
                    "system": NID,
                    "value": "1000000001",
                }
            ],
            "name": [{"family": "Al-Qahtani", "given": ["Ahmed"]}],
            "telecom": [{"system": "phone", "value": "+966500000001"}],
            "gender": "male",
            "birthDate": "1980-05-01",
            "address": [{"city": "Riyadh", "country": "SA"}],
        },
        {
            "resourceType": "Patient",
            "id": "p2",
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
                ]
            },
            "identifier": [
                {"type": {"coding": [{"system": V2, "code": "PRC"}]}, "system": IQAMA, "value": "2000000002"}
            ],
            "name": [{"family": "Sára", "given": ["Noura", "Bint Ali"]}],
            "gender": "female",
            "birthDate": "1990",
            "address": [{"city": "Jeddah"}],
        },
        {
            "resourceType": "Patient",
            "id": "p3",
            "identifier": [{"system": NID, "value": "1000000003"}],
            "name": [{"family": "Saad", "given": ["Omar"]}],
            "gender": "male",
            "birthDate": "1990-01-15",
            "deceasedDateTime": "2020-03-04T10:00:00+03:00",
        },
        {
            "resourceType": "Patient",
            "id": "p4",
            "name": [{"family": "Zahrani", "given": ["Huda"]}],
            "birthDate": "1975-03",
            "managingOrganization": {"reference": "Organization/org1"},
            "link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}],
        },
        {
            "resourceType": "Patient",
            "id": "p5",
            "name": [{"family": "Ghost"}],
            "gender": "male",
            "birthDate": "1980-05-01",
        },
        {
            "resourceType": "Patient",
            "id": "p6",
            "name": [{"text": "Mohammed Bin Salman"}],
            "birthDate": "2001-12-31",
            "identifier": [{"system": "urn:x|y", "value": "12,34"}],
            "generalPractitioner": [{"reference": "Practitioner/example"}],
        },
    ]


def organizations() -> list[dict]:
    return [
        {"resourceType": "Organization", "id": "org1", "name": "King Faisal Specialist", "active": True},
        {
            "resourceType": "Organization",
            "id": "org2",
            "name": "Tawuniya Insurance",
            "partOf": {"reference": "Organization/org1"},
        },
    ]


def _claim(cid: str, patient: str, status: str, created: str) -> dict:
    return {
        "resourceType": "Claim",
        "id": cid,
        "identifier": [{"system": "http://provider.sa/claim", "value": f"CLM-{cid}"}],
        "status": status,
        "type": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}
            ]
        },
        "use": "claim",
        "patient": {"reference": patient},
        "created": created,
        "insurer": {"reference": "Organization/org2"},
        "provider": {"reference": "Organization/org1"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov1"}}],
    }


def claims() -> list[dict]:
    return [
        _claim("c1", "Patient/p1", "active", "2024-03-01"),
        _claim("c2", "Patient/p2", "cancelled", "2024-03-02T09:00:00+03:00"),
        _claim("c3", "Patient/p3", "active", "2024-02-28"),
    ]


def _task(tid: str, status: str, owner: str, focus: str, authored: str, **extra: object) -> dict:
    task = {
        "resourceType": "Task",
        "id": tid,
        "status": status,
        "intent": "order",
        "owner": {"reference": owner},
        "focus": {"reference": focus},
        "authoredOn": authored,
    }
    task.update(extra)
    return task


def tasks() -> list[dict]:
    return [
        _task(
            "t1",
            "requested",
            "Organization/org1",
            "Claim/c1",
            "2024-03-01T10:00:00+03:00",
            code={"coding": [{"system": WF, "code": "eligibility"}]},
            businessStatus={"coding": [{"system": BS, "code": "waiting"}], "text": "Waiting for payer"},
            executionPeriod={"start": "2024-03-01", "end": "2024-03-05"},
            **{"for": {"reference": "Patient/p1"}},
        ),
        _task(
            "t2",
            "in-progress",
            "Organization/org1",
            "Claim/c2",
            "2024-03-01T23:30:00Z",
            code={"coding": [{"system": WF, "code": "priorauth"}]},
            businessStatus={"coding": [{"system": BS, "code": "queued"}], "text": "Queued at NPHIES"},
            executionPeriod={"start": "2024-03-02"},
            partOf=[{"reference": "Task/t1"}],
            **{"for": {"reference": "Patient/p2"}},
        ),
        _task(
            "t3",
            "completed",
            "Organization/org2",
            "Coverage/cov1",
            "2024-03-02",
            code={"coding": [{"system": WF, "code": "eligibility"}]},
            partOf=[{"reference": "Task/t1"}],
            **{"for": {"reference": "Patient/p1"}},
        ),
        _task("t4", "requested", "Organization/org2", "Claim/c1", "2024-02-29T12:00:00-05:00"),
        _task(
            "t5",
            "cancelled",
            "Practitioner/pr1",
            "http://other.org/fhir/Claim/remote1",
            "2024-03-03T00:00:00+03:00",
            **{"for": {"reference": "Patient/p3"}},
        ),
        _task("t6", "requested", "Organization/org1", "Claim/c3", "2024-03-04"),
    ]


def _observation(
    oid: str, subject: str, code: str, value: float | None, unit: str, when: str, **extra
) -> dict:
    obs = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
    }
    if value is not None:
        obs["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    obs.update(extra)
    return obs


def observations() -> list[dict]:
    return [
        _observation("o1", "Patient/p1", "8867-4", 72, "/min", "2024-01-01"),
        _observation("o2", "Patient/p2", "8867-4", 90.0, "/min", "2024-02-01T08:00:00+03:00"),
        _observation("o3", "Patient/p1", "29463-7", 80.5, "kg", "2024-03-01"),
        _observation("o4", "Patient/p3", "29463-7", 100, "kg", "2024-04"),
        _observation("o5", "Patient/p2", "8480-6", None, "", "2024-05-01", valueString="Élevé"),
    ]


def risk_assessments() -> list[dict]:
    def risk(rid: str, probability: object) -> dict:
        prediction = (
            {"probabilityDecimal": probability}
            if not isinstance(probability, dict)
            else {"probabilityRange": probability}
        )
        return {
            "resourceType": "RiskAssessment",
            "id": rid,
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "prediction": [prediction],
        }

    several = risk("r5", 0.1)
    several["prediction"].append({"probabilityDecimal": 0.9})
    return [risk("r1", 0.02), risk("r2", 0.5), risk("r3", 100), risk("r4", 0.25), several]


def encounters() -> list[dict]:
    def encounter(eid: str, *periods: tuple[str, str]) -> dict:
        return {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"code": "AMB"},
            "location": [
                {"location": {"reference": f"Location/l{n}"}, "period": {"start": a, "end": b}}
                for n, (a, b) in enumerate(periods)
            ],
        }

    return [
        encounter("e1", ("2024-01-01", "2024-01-02"), ("2024-03-01", "2024-03-03")),
        encounter("e2", ("2024-02-10", "2024-02-20")),
        encounter("e3", ("2024-01-10", "2024-01-10")),
    ]


def generated() -> list[dict]:
    return (
        patients() + organizations() + claims() + tasks() + observations() + risk_assessments() + encounters()
    )


DELETED = (("Patient", "p5"), ("Task", "t6"))
