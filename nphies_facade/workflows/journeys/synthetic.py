"""Synthetic registrations and claims that meet the NPHIES profiles, for the demo, the simulation harness,
the benchmarks and the tests. The simulator's test payer answers them by member id: any id it does not
list is eligible, NOT_ACTIVE is a member whose policy is not in force (Eligibility conformance cases)."""

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from ...nphies import canonical

NOT_ACTIVE, NOT_FOUND, OUT_OF_NETWORK = "2555555550", "2333333333", "2666666660"
LISTED = frozenset({"2555555559", NOT_ACTIVE, NOT_FOUND, OUT_OF_NETWORK})
REJECTED_DRUG = "06285096000798"  # a drug the test payer rejects (Authorization conformance case 5)
PROCEDURES = "http://nphies.sa/terminology/CodeSystem/procedures"
MEDICATIONS = "http://nphies.sa/terminology/CodeSystem/medication-codes"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
EXT = "http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/extension-"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def _coded(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _sar(value: float) -> dict:
    return {"value": round(value, 2), "currency": "SAR"}


@dataclass
class Item:
    code: str
    price: float
    system: str = PROCEDURES
    quantity: int = 1
    served: date | None = None


@dataclass
class Parties:
    """The provider, the payer and a practitioner: stored once, shared by every synthetic journey."""

    provider_license: str = "PR-FHIR"
    payer_license: str = "INS-FHIR"

    @property
    def provider(self) -> str:
        return f"Organization/provider-{self.provider_license}"

    @property
    def payer(self) -> str:
        return f"Organization/payer-{self.payer_license}"

    @property
    def practitioner(self) -> str:
        return "Practitioner/synthetic-practitioner"

    def resources(self) -> list[dict]:
        provider = {
            "resourceType": "Organization",
            "id": self.provider.split("/")[1],
            "extension": [
                {
                    "url": canonical.PROVIDER_TYPE_EXT,
                    "valueCodeableConcept": _coded(canonical.PROVIDER_TYPE, "1", "Hospital"),
                }
            ],
            "identifier": [{"system": canonical.PROVIDER_LICENSE, "value": self.provider_license}],
            "active": True,
            "type": [_coded(canonical.ORGANIZATION_TYPE, "prov")],
            "name": "Synthetic General Hospital",
        }
        payer = {
            "resourceType": "Organization",
            "id": self.payer.split("/")[1],
            "identifier": [
                {
                    "use": "official",
                    "type": _coded(V2_0203, "NII"),
                    "system": canonical.PAYER_LICENSE,
                    "value": self.payer_license,
                }
            ],
            "active": True,
            "type": [_coded(canonical.ORGANIZATION_TYPE, "ins", "Insurance Company")],
            "name": "Test Payer",
        }
        practitioner = {
            "resourceType": "Practitioner",
            "id": self.practitioner.split("/")[1],
            "identifier": [
                {
                    "type": _coded(V2_0203, "MD"),
                    "system": "http://nphies.sa/license/practitioner-license",
                    "value": "PRACT-SYNTH-1",
                }
            ],
            "active": True,
            "name": [{"use": "official", "text": "Synthetic Practitioner", "family": "Practitioner"}],
            "qualification": [
                {"code": _coded("http://nphies.sa/terminology/CodeSystem/practice-codes", "08.00")}
            ],
        }
        return [provider, payer, practitioner]


def iqama(rng: random.Random) -> str:
    """A resident card number (ten digits starting with 2) the test payer has no special case for."""
    while True:
        value = "2" + "".join(rng.choice("0123456789") for _ in range(9))
        if value not in LISTED:
            return value


@dataclass
class Registration:
    """A Patient, their Coverage with the payer, and (unless left out) a Consent to share with it."""

    parties: Parties
    today: date
    member_id: str | None = None
    consent: bool = True
    rng: random.Random = field(default_factory=random.Random)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def patient(self) -> str:
        return f"Patient/patient-{self.suffix}"

    @property
    def coverage(self) -> str:
        return f"Coverage/coverage-{self.suffix}"

    def resources(self) -> list[dict]:
        """Patient, Consent and Coverage, in the order an EMR would write them (the Coverage starts the journey)."""
        number = self.member_id or iqama(self.rng)
        patient = {
            "resourceType": "Patient",
            "id": self.patient.split("/")[1],
            "extension": [
                {
                    "url": f"{EXT}occupation",
                    "valueCodeableConcept": _coded(
                        "http://nphies.sa/terminology/CodeSystem/occupation", "others"
                    ),
                }
            ],
            "identifier": [
                {
                    "type": _coded(V2_0203, "PRC", "Permanent Resident Card"),
                    "system": "http://nphies.sa/identifier/iqama",
                    "value": number,
                }
            ],
            "active": True,
            "name": [
                {"use": "official", "text": "Synthetic Patient", "family": "Patient", "given": ["Synthetic"]}
            ],
            "gender": "male",
            "_gender": {
                "extension": [
                    {
                        "url": f"{EXT}ksa-administrative-gender",
                        "valueCodeableConcept": _coded(
                            "http://nphies.sa/terminology/CodeSystem/ksa-administrative-gender", "male"
                        ),
                    }
                ]
            },
            "birthDate": "1990-05-17",
            "maritalStatus": _coded("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M"),
        }
        coverage = {
            "resourceType": "Coverage",
            "id": self.coverage.split("/")[1],
            "identifier": [{"system": "http://payer.example/memberid", "value": number}],
            "status": "active",
            "type": _coded(canonical.COVERAGE_TYPE, "EHCPOL", "Extended healthcare"),
            "policyHolder": {"reference": self.patient},
            "subscriber": {"reference": self.patient},
            "beneficiary": {"reference": self.patient},
            "relationship": _coded("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self"),
            "period": {
                "start": (self.today - timedelta(days=365)).isoformat(),
                "end": (self.today + timedelta(days=365)).isoformat(),
            },
            "payor": [{"reference": self.parties.payer}],
            "class": [
                {
                    "type": _coded("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"),
                    "value": "gold",
                    "name": "Gold plan",
                }
            ],
        }
        resources = [patient]
        if self.consent:
            resources.append(self.consent_resource())
        return [*resources, coverage]

    def consent_resource(self) -> dict:
        """An active Consent that permits sharing the patient's data with the payer for payment."""
        return {
            "resourceType": "Consent",
            "id": f"consent-{self.suffix}",
            "status": "active",
            "scope": _coded("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
            "category": [_coded("http://loinc.org", "59284-0")],
            "patient": {"reference": self.patient},
            "policyRule": _coded("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN"),
            "provision": {
                "type": "permit",
                "purpose": [{"system": ACT_REASON, "code": "HPAYMT"}],
                "actor": [
                    {
                        "role": _coded("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                        "reference": {"reference": self.parties.payer},
                    }
                ],
            },
        }

    def claim(
        self, items: list[Item] | None = None, deferred: bool = False, total: float | None = None
    ) -> dict:
        """A professional outpatient Claim for this patient (normal priority is adjudicated at once;
        deferred is queued and answered by poll)."""
        items = items or [Item("30571-00-00", 250.0)]
        suffix = uuid.uuid4().hex[:16]
        return {
            "resourceType": "Claim",
            "id": f"claim-{suffix}",
            "extension": [
                {
                    "url": f"{EXT}episode",
                    "valueIdentifier": {"system": "http://provider.example/episode", "value": f"EP-{suffix}"},
                },
                {"url": f"{EXT}accountingPeriod", "valueDate": self.today.replace(day=1).isoformat()},
            ],
            "identifier": [{"system": "http://provider.example/identifiers/claim", "value": f"CLM-{suffix}"}],
            "status": "active",
            "type": _coded(canonical.CLAIM_TYPE, "professional"),
            "subType": _coded(canonical.CLAIM_SUBTYPE, "op"),
            "use": "claim",
            "patient": {"reference": self.patient},
            "created": self.today.isoformat(),
            "insurer": {"reference": self.parties.payer},
            "provider": {"reference": self.parties.provider},
            "priority": _coded(
                "http://terminology.hl7.org/CodeSystem/processpriority", "deferred" if deferred else "normal"
            ),
            "payee": {"type": _coded("http://terminology.hl7.org/CodeSystem/payeetype", "provider")},
            "careTeam": [
                {
                    "sequence": 1,
                    "provider": {"reference": self.parties.practitioner},
                    "role": _coded("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary"),
                    "qualification": _coded(
                        "http://nphies.sa/terminology/CodeSystem/practice-codes", "08.00"
                    ),
                }
            ],
            "diagnosis": [
                {
                    "sequence": 1,
                    "diagnosisCodeableConcept": _coded("http://hl7.org/fhir/sid/icd-10-am", "J06.9"),
                    "type": [_coded("http://nphies.sa/terminology/CodeSystem/diagnosis-type", "principal")],
                }
            ],
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": self.coverage}}],
            "item": [self._item(n, item, suffix) for n, item in enumerate(items, start=1)],
            "total": _sar(sum(i.price * i.quantity for i in items) if total is None else total),
        }

    def _item(self, sequence: int, item: Item, suffix: str) -> dict:
        return {
            "extension": [
                {"url": f"{EXT}patient-share", "valueMoney": _sar(0)},
                {
                    "url": f"{EXT}patientInvoice",
                    "valueIdentifier": {
                        "system": "http://provider.example/invoice",
                        "value": f"INV-{suffix}",
                    },
                },
                {"url": f"{EXT}maternity", "valueBoolean": False},
            ],
            "sequence": sequence,
            "careTeamSequence": [1],
            "diagnosisSequence": [1],
            "productOrService": _coded(item.system, item.code),
            "servicedDate": (item.served or self.today).isoformat(),
            "quantity": {"value": item.quantity},
            "unitPrice": _sar(item.price),
            "net": _sar(item.price * item.quantity),
        }


def transaction(resources: list[dict]) -> dict:
    """A transaction Bundle that stores the resources under their ids (PUT), as an EMR would post them."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
