"""Test material from ../shared/nphies: the example messages, turned into stored resources and scenarios."""

import copy
import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nphies_facade.nphies import canonical
from nphies_facade.nphies.fhirjson import code_of, extensions
from nphies_facade.nphies.messages import (
    Message,
    ProviderConfig,
    build_claim_message,
    build_eligibility_request,
)
from nphies_facade.nphies.references import BundleIndex, iter_references

SHARED = Path(__file__).resolve().parents[3] / "shared" / "nphies"
EXAMPLES = SHARED / "examples"
CONFORMANCE = SHARED / "conformance-tests"

# The official sample of each request kind (Claims: no official professional claim, so the real one of pair D).
REQUEST_SAMPLES = {
    ("eligibility-request", "validation"): "official_eligibility-request_benefits-validation.json",
    ("eligibility-request", "discovery"): "official_eligibility-request_discovery.json",
    ("priorauth-request", "institutional"): "official_priorauth-request_institutional.json",
    ("priorauth-request", "professional"): "official_priorauth-request_professional.json",
    ("priorauth-request", "pharmacy"): "official_priorauth-request_pharmacy.json",
    ("priorauth-request", "oral"): "official_priorauth-request_oral_first.json",
    ("priorauth-request", "vision"): "official_priorauth-request_vision.json",
    ("claim-request", "institutional"): "official_claim-request_institutional.json",
    ("claim-request", "professional"): "oba_claim-request_pair-D.json",
    ("claim-request", "pharmacy"): "official_claim-request_pharmacy.json",
    ("claim-request", "oral"): "official_claim-request_oral.json",
    ("claim-request", "vision"): "official_claim-request_vision.json",
}


@cache
def _load(name: str) -> str:
    return (EXAMPLES / name).read_text()


def example(name: str) -> dict:
    return json.loads(_load(name))


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.json"))


def stored_resources(bundle: dict) -> dict[str, dict]:
    """The bundle's resources as a FHIR server would store them: keyed and referenced as `Type/id`."""
    index = BundleIndex(bundle)
    store = {}
    for position in range(len(index.entries)):
        resource = copy.deepcopy(index.resource(position))
        for found in iter_references(resource):
            target = index.resolve(found.reference, position)
            if target is not None:
                found.element["reference"] = (
                    f"{index.resource(target)['resourceType']}/{index.resource(target)['id']}"
                )
        store[f"{resource['resourceType']}/{resource['id']}"] = resource
    return store


def focus_key(bundle: dict) -> str:
    index = BundleIndex(bundle)
    target = index.resolve(index.resource(0)["focus"][0]["reference"], 0)
    resource = index.resource(target)
    return f"{resource['resourceType']}/{resource['id']}"


def upgrade_to_v52(store: dict[str, dict]) -> None:
    """Adds what profiles v5.2 (2023) made mandatory and the 2021 official samples lack (see Update.csv)."""
    for resource in store.values():
        kind = resource["resourceType"]
        if kind == "Patient":
            if not extensions(resource, canonical.extension_url("occupation")):
                occupation = _coded(
                    canonical.extension_url("occupation"),
                    "http://nphies.sa/terminology/CodeSystem/occupation",
                    "others",
                )
                resource.setdefault("extension", []).append(occupation)
            resource.setdefault(
                "maritalStatus",
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "U"}
                    ]
                },
            )
        elif kind == "Coverage":
            resource.setdefault("policyHolder", resource.get("beneficiary") or resource.get("subscriber"))
        elif kind == "Claim":
            _upgrade_claim(resource)
        elif kind == "Organization" and code_of((resource.get("type") or [{}])[0]) == "prov":
            if not extensions(resource, canonical.PROVIDER_TYPE_EXT):
                resource.setdefault("extension", []).append(
                    _coded(canonical.PROVIDER_TYPE_EXT, canonical.PROVIDER_TYPE, "1")
                )


def _upgrade_claim(claim: dict) -> None:
    maternity = canonical.extension_url("maternity")
    for item in claim.get("item") or []:
        if not extensions(item, maternity):
            item.setdefault("extension", []).append({"url": maternity, "valueBoolean": False})
    if claim.get("use") == "claim" and code_of(claim.get("type")) == "institutional":
        onset = canonical.extension_url("condition-onset")
        for diagnosis in claim.get("diagnosis") or []:
            if not extensions(diagnosis, onset):
                diagnosis.setdefault("extension", []).append(
                    _coded(onset, "http://nphies.sa/terminology/CodeSystem/condition-onset", "NR")
                )
    if "subType" not in claim:
        claim["subType"] = {"coding": [{"system": canonical.CLAIM_SUBTYPE, "code": "op"}]}


def _coded(url: str, system: str, code: str) -> dict:
    return {"url": url, "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


def license_of(organization: dict, system: str) -> str | None:
    return next((i["value"] for i in organization.get("identifier") or [] if i.get("system") == system), None)


@dataclass
class Scenario:
    """Stored resources from an example, a focus among them, and the provider's config."""

    store: dict[str, dict]
    focus: dict
    config: ProviderConfig

    def resolve(self, reference: str) -> dict | None:
        return self.store.get(reference)

    def organization(self, role: str) -> dict:
        return self.store[self.focus[role]["reference"]]

    def patient(self) -> dict:
        return self.store[self.focus["patient"]["reference"]]

    def message(self) -> Message:
        if self.focus["resourceType"] == "CoverageEligibilityRequest":
            return build_eligibility_request(self.focus, self.resolve, self.config)
        return build_claim_message(self.focus, self.resolve, self.config)


def scenario(
    sample: str,
    *,
    provider: str | None = None,
    member: str | None = None,
    priority: str | None = None,
    item_codes: tuple[str, ...] | None = None,
    item_count: int | None = None,
    related_prior: bool = False,
    upgrade: bool = True,
) -> Scenario:
    """A scenario from an example request, with a fresh business identifier and the given changes."""
    bundle = example(sample)
    store = stored_resources(bundle)
    if upgrade:
        upgrade_to_v52(store)
    focus = store[focus_key(bundle)]
    focus["identifier"] = [
        {"system": "http://provider.test/identifiers/request", "value": f"req-{uuid.uuid4()}"}
    ]
    provider_org = store[focus["provider"]["reference"]]
    if provider:
        provider_org["identifier"] = [{"system": canonical.PROVIDER_LICENSE, "value": provider}]
    payer_org = store[focus["insurer"]["reference"]]
    config = ProviderConfig(
        provider_license=license_of(provider_org, canonical.PROVIDER_LICENSE) or "PR-FHIR",
        provider_name=provider_org.get("name", "provider"),
        payer_license=license_of(payer_org, canonical.PAYER_LICENSE) or "INS-FHIR",
        source_endpoint="http://provider.test",
    )
    if member:
        patient = store[focus["patient"]["reference"]]
        patient["identifier"][0]["value"] = member
    if priority:
        focus["priority"] = {"coding": [{"system": canonical.PROCESS_PRIORITY, "code": priority}]}
    if item_codes is not None or item_count is not None:
        _set_items(focus, item_codes, item_count)
    if related_prior:
        focus["related"] = [
            {
                "claim": {
                    "identifier": {
                        "system": "http://provider.test/identifiers/request",
                        "value": "req-previous",
                    }
                },
                "relationship": {
                    "coding": [
                        {
                            "system": "http://nphies.sa/terminology/CodeSystem/related-claim-relationship",
                            "code": "prior",
                        }
                    ]
                },
            }
        ]
    return Scenario(store, focus, config)


def _set_items(claim: dict, codes: tuple[str, ...] | None, count: int | None) -> None:
    template = claim["item"][0]
    wanted = list(codes) if codes else [code_of(template["productOrService"]) or "x"] * (count or 1)
    items = []
    for sequence, code in enumerate(wanted, start=1):
        item = copy.deepcopy(template)
        item["sequence"] = sequence
        item["productOrService"]["coding"][0]["code"] = code
        items.append(item)
    claim["item"] = items
