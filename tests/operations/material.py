"""Test material: resources from the official NPHIES samples, stored in the server under fresh ids."""

import copy
import uuid
from dataclasses import dataclass

import httpx

from nphies_facade.nphies.references import iter_references

from ..nphies.samples import scenario

PROVIDER = "PR-FHIR"
ELIGIBILITY = "official_eligibility-request_benefits-validation.json"
INSTITUTIONAL_PA = "official_priorauth-request_institutional.json"
PHARMACY_PA = "official_priorauth-request_pharmacy.json"
VISION_PA = "official_priorauth-request_vision.json"
ORAL_CLAIM = "official_claim-request_oral.json"
VISION_CLAIM = "official_claim-request_vision.json"
REJECTED_DRUG = "06285096000798"

NOT_ACTIVE, UNKNOWN, OUT_OF_NETWORK = "2555555550", "2333333333", "2666666660"


@dataclass
class Material:
    """Resources to store (`Type/id` -> resource) and the focus of the sample (a Claim, or for
    eligibility the CoverageEligibilityRequest, which is not stored)."""

    resources: dict[str, dict]
    focus: dict

    @property
    def coverage(self) -> str:
        return next(key for key in self.resources if key.startswith("Coverage/"))

    @property
    def claim(self) -> str:
        return f"Claim/{self.focus['id']}"


def material(sample: str, **changes) -> Material:
    """A sample's resources (the scenario changes applied), every id made unique."""
    case = scenario(sample, provider=PROVIDER, **changes)
    suffix = uuid.uuid4().hex[:10]
    renamed = {key: f"{key.split('/')[0]}/{key.split('/')[1][:50]}-{suffix}" for key in case.store}
    resources = {}
    for key, resource in case.store.items():
        if resource["resourceType"] == "MessageHeader":
            continue
        copied = copy.deepcopy(resource)
        copied["id"] = renamed[key].split("/")[1]
        copied.pop("meta", None)
        for found in iter_references(copied):
            if found.reference in renamed:
                found.element["reference"] = renamed[found.reference]
        resources[renamed[key]] = copied
    focus_key = renamed[f"{case.focus['resourceType']}/{case.focus['id']}"]
    focus = resources.pop(focus_key) if case.focus["resourceType"] != "Claim" else resources[focus_key]
    return Material(resources, focus)


async def store(client: httpx.AsyncClient, found: Material) -> None:
    """One transaction of PUTs: the resources refer to each other (referential integrity holds at its end)."""
    entries = [
        {"resource": resource, "request": {"method": "PUT", "url": key}}
        for key, resource in found.resources.items()
    ]
    response = await client.post(
        "/", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    assert response.status_code == 200, response.text


def parameters(**values: str) -> dict:
    kinds = {"servicedDate": "valueDate", "nullify": "valueBoolean"}
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, kinds.get(name, "valueCode"): value} for name, value in values.items()],
    }
