"""Response message Bundles as NPHIES and the pseudo-payer shape them (see the samples in ../shared)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from .. import canonical
from ..fhirjson import new_guid
from .catalog import RuleError

Entry = tuple[str, dict]  # (fullUrl, resource)
NPHIES_BASE = "http://nphies.sa"


@dataclass(frozen=True)
class Party:
    """Who sends a response: the payer (by license) or NPHIES itself."""

    system: str
    value: str
    endpoint: str
    base_url: str

    @classmethod
    def payer(cls, license_id: str, base_url: str) -> "Party":
        return cls(canonical.PAYER_LICENSE, license_id, base_url, base_url)

    @classmethod
    def nphies(cls) -> "Party":
        return cls(canonical.NPHIES_LICENSE, canonical.NPHIES_ID, f"{NPHIES_BASE}/", NPHIES_BASE)

    def new_entry(self, resource: dict, profile: str | None = None) -> Entry:
        """Gives a resource this party creates an id, its profile, and its fullUrl."""
        resource["id"] = resource.get("id") or new_guid()
        if profile:
            resource["meta"] = {"profile": [canonical.profile_url(profile)]}
            if self.value == canonical.NPHIES_ID:
                resource["meta"]["tag"] = [dict(canonical.NPHIES_GENERATED_TAG)]
        return f"{self.base_url}/{resource['resourceType']}/{resource['id']}", resource


@dataclass(frozen=True)
class Addressee:
    """The provider a response goes to: its license and the endpoint it named as source."""

    license: str
    endpoint: str


def now_instant() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def message(
    event: str,
    sender: Party,
    to: Addressee,
    focus: Entry | None,
    entries: list[Entry],
    *,
    response_to: str | None = None,
    response_code: str = "ok",
    details: str | None = None,
    queued_messages: bool = False,
) -> dict:
    """A message Bundle: MessageHeader, then the focus, then the other entries (each fullUrl once)."""
    header: dict = {
        "resourceType": "MessageHeader",
        "id": new_guid(),
        "meta": {"profile": [canonical.profile_url("message-header")]},
        "eventCoding": {"system": canonical.MESSAGE_EVENTS, "code": event},
        "destination": [
            {
                "endpoint": to.endpoint,
                "receiver": {
                    "type": "Organization",
                    "identifier": {"system": canonical.PROVIDER_LICENSE, "value": to.license},
                },
            }
        ],
        "sender": {"type": "Organization", "identifier": {"system": sender.system, "value": sender.value}},
        "source": {"endpoint": sender.endpoint},
    }
    if queued_messages:
        header["meta"]["tag"] = [dict(canonical.QUEUED_MESSAGES_TAG)]
    if response_to:
        header["response"] = {"identifier": response_to, "code": response_code}
        if details:
            header["response"]["details"] = {"reference": details}
    if focus:
        header["focus"] = [{"reference": focus[0]}]
    body = [focus, *entries] if focus else list(entries)
    seen: set[str] = set()
    unique = [e for e in body if not (e[0] in seen or seen.add(e[0]))]
    return {
        "resourceType": "Bundle",
        "id": new_guid(),
        "meta": {"profile": [canonical.profile_url("bundle")]},
        "type": "message",
        "timestamp": now_instant(),
        "entry": [{"fullUrl": f"{sender.base_url}/MessageHeader/{header['id']}", "resource": header}]
        + [{"fullUrl": url, "resource": resource} for url, resource in unique],
    }


def coded_error(item: RuleError) -> dict:
    """An element of ClaimResponse.error / CoverageEligibilityResponse.error."""
    coding: dict = {"system": canonical.ADJUDICATION_ERROR, "code": item.code, "display": item.text}
    if item.expression:
        coding["extension"] = [{"url": canonical.ERROR_EXPRESSION, "valueString": item.expression}]
    return {"code": {"coding": [coding]}}


def error_output(item: RuleError) -> dict:
    """A Task.output of type error (status, cancel and poll responses)."""
    coding = coded_error(item)["code"]["coding"][0]
    return {
        "type": {"coding": [{"system": canonical.TASK_OUTPUT_TYPE_VS, "code": "error"}]},
        "valueCodeableConcept": {"coding": [coding]},
    }


def operation_outcome(errors: list[RuleError], issue_type: str = "business-rule") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "id": new_guid(),
        "meta": {"profile": [canonical.profile_url("operationoutcome")]},
        "issue": [
            {
                "severity": "error",
                "code": issue_type,
                "details": {
                    "coding": [{"system": canonical.ADJUDICATION_ERROR, "code": e.code, "display": e.text}]
                },
                **({"expression": [e.expression]} if e.expression else {}),
            }
            for e in errors
        ],
    }


def coding(system: str, code: str, display: str | None = None) -> dict:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return {"coding": [found]}


def money(value: float) -> dict:
    return {"value": round(value, 2), "currency": "SAR"}
