"""The simulator's message validation: the main NPHIES rules, staged as NPHIES applies them.

Stage 1 (unreadable or unroutable: bare OperationOutcome), stage 2 (structure, profiles, references: the
business response carries the errors), stage 3 (message-level business rules, only once stage 2 passes).
A resource whose profile is not valid is not checked further, as NPHIES does (RE-00170 alone).
"""

import re
from dataclasses import dataclass, field

from .. import canonical
from ..events import (
    ADDRESSED_TO_NPHIES,
    ALL_EVENTS,
    CLAIM_USE,
    FOCAL_TYPE,
    PROVIDER_EVENTS,
    TASK_CODES,
    Event,
)
from ..fhirjson import code_of, extensions, is_guid
from ..references import BundleIndex, is_local, iter_references
from .catalog import RuleError, error, meta_profile_rule, reference_rule, valid_profiles
from .shape import bundle_shape_errors, resource_shape_errors

_URL = re.compile(r"^https?://\S+$")
_INDEX = re.compile(r"\[\d+\]")
_TASK_CODE_RULE = {
    Event.POLL_REQUEST: "IB-00291",
    Event.CANCEL_REQUEST: "IB-00308",
    Event.STATUS_CHECK: "IB-00377",
}
# Where the provider (requester) and the payer sit in each kind of focus.
_PROVIDER_ELEMENT = {"Claim": "provider", "CoverageEligibilityRequest": "provider", "Task": "requester"}
_PAYER_ELEMENT = {"Claim": "insurer", "CoverageEligibilityRequest": "insurer", "Task": "owner"}


@dataclass
class Verdict:
    """What validation found, and what the payer needs of the request to answer it."""

    bundle: dict
    fatal: list[RuleError] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    index: BundleIndex | None = None
    event: str | None = None
    sender: str | None = None
    receiver: str | None = None
    focus_index: int | None = None

    @property
    def header(self) -> dict:
        return self.index.resource(0) if self.index and self.index.entries else {}

    @property
    def focus(self) -> dict:
        return self.index.resource(self.focus_index) if self.index and self.focus_index is not None else {}


def validate_message(
    bundle: object,
    payer_licenses: tuple[str, ...] | None = None,
    provider_licenses: tuple[str, ...] | None = None,
) -> Verdict:
    """Validates one $process-message body."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return Verdict({}, fatal=[error("DT-01319", "Bundle.resourceType")])
    shape = bundle_shape_errors(bundle)
    if shape:
        return Verdict(bundle, fatal=shape)
    verdict = Verdict(bundle, index=BundleIndex(bundle))
    verdict.fatal = _stage_one(verdict, provider_licenses)
    if verdict.fatal:
        return verdict
    verdict.errors = resource_shape_errors(bundle, verdict.focus_index) or _stage_two(verdict, payer_licenses)
    if not verdict.errors:
        verdict.errors = _stage_three(verdict)
    return verdict


def _stage_one(verdict: Verdict, provider_licenses: tuple[str, ...] | None) -> list[RuleError]:
    bundle, index = verdict.bundle, verdict.index
    assert index is not None
    if bundle.get("type") != "message":
        return [error("BV-00130", "Bundle.type")]
    if not index.entries or index.resource(0).get("resourceType") != "MessageHeader":
        return [error("BV-00126", "Bundle.entry[0]")]
    header = index.resource(0)
    verdict.event = code_of(header.get("eventCoding"))
    if not verdict.event:
        return [error("IC-00377", "Bundle.entry[0].resource.eventCoding")]
    if verdict.event not in ALL_EVENTS:
        return [error("IB-00250", "Bundle.entry[0].resource.eventCoding")]
    if verdict.event not in PROVIDER_EVENTS:
        return [error("BV-00545", "Bundle.entry[0].resource.eventCoding")]
    sender = (header.get("sender") or {}).get("identifier") or {}
    if not header.get("sender"):
        return [error("IC-00226", "Bundle.entry[0].resource.sender")]
    verdict.sender = sender.get("value")
    if sender.get("system") != canonical.PROVIDER_LICENSE or not verdict.sender:
        return [error("BV-00176", "Bundle.entry[0].resource.sender")]
    if provider_licenses is not None and verdict.sender not in provider_licenses:
        return [error("BV-00176", "Bundle.entry[0].resource.sender")]
    destination = next(iter(header.get("destination") or []), {})
    verdict.receiver = ((destination.get("receiver") or {}).get("identifier") or {}).get("value")
    focus = next(iter(header.get("focus") or []), None)
    reference = focus.get("reference") if isinstance(focus, dict) else None
    verdict.focus_index = index.resolve(reference, 0) if isinstance(reference, str) else None
    focus_type = verdict.focus.get("resourceType")
    if verdict.focus_index is not None and focus_type != FOCAL_TYPE.get(verdict.event):
        return [error("BV-00167", "Bundle.entry[0].resource.focus[0]")]
    return []


def _stage_two(verdict: Verdict, payer_licenses: tuple[str, ...] | None) -> list[RuleError]:
    errors = _bundle_errors(verdict.bundle) + _header_errors(verdict)
    valid = _entries_with_valid_profiles(verdict, errors)
    errors += _focus_errors(verdict, valid)
    for position in sorted(valid):
        errors += _reference_errors(verdict.index, position)
        errors += _organization_errors(verdict.index.resource(position), position)
    if verdict.focus_index in valid:
        errors += _task_code_errors(verdict)
        errors += _license_errors(verdict)
    if payer_licenses is not None and verdict.event not in ADDRESSED_TO_NPHIES:
        if verdict.receiver not in payer_licenses:
            errors.append(error("GE-00010", "Bundle.entry[0].resource.destination[0].receiver"))
    return errors


def _bundle_errors(bundle: dict) -> list[RuleError]:
    errors = []
    if not bundle.get("id"):
        errors.append(error("IC-00326", "Bundle.id"))
    elif not is_guid(bundle["id"]):
        errors.append(error("BV-00341", "Bundle.id"))
    if not (bundle.get("meta") or {}).get("profile"):
        errors.append(error("IC-00009", "Bundle.meta.profile"))
    if not bundle.get("timestamp"):
        errors.append(error("IC-00010", "Bundle.timestamp"))
    seen: set[str] = set()
    for position, entry in enumerate(bundle.get("entry") or []):
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if not isinstance(full_url, str) or not full_url:
            errors.append(error("DT-00003", f"Bundle.entry[{position}].fullUrl"))
        elif full_url in seen:
            errors.append(error("FR-00007", f"Bundle.entry[{position}].fullUrl"))
        else:
            seen.add(full_url)
    return errors


def _header_errors(verdict: Verdict) -> list[RuleError]:
    header, at = verdict.header, "Bundle.entry[0].resource"
    errors = []
    if not header.get("id"):
        errors.append(error("IC-00380", f"{at}.id"))
    elif not is_guid(header["id"]):
        errors.append(error("BV-00168", f"{at}.id"))
    if not (header.get("meta") or {}).get("profile"):
        errors.append(error("IC-00223", f"{at}.meta.profile"))
    endpoint = (header.get("source") or {}).get("endpoint")
    if not endpoint:
        errors.append(error("IC-00228", f"{at}.source.endpoint"))
    elif not _URL.match(endpoint):
        errors.append(error("BV-00177", f"{at}.source.endpoint"))
    destinations = header.get("destination") or []
    if len(destinations) != 1:
        errors.append(error("IC-00375", f"{at}.destination"))
    for position, destination in enumerate(destinations):
        if not destination.get("receiver"):
            errors.append(error("IC-00218", f"{at}.destination[{position}].receiver"))
        if not destination.get("endpoint"):
            errors.append(error("IC-00217", f"{at}.destination[{position}].endpoint"))
        elif not _URL.match(destination["endpoint"]):
            errors.append(error("BV-00218", f"{at}.destination[{position}].endpoint"))
    response = header.get("response")
    if isinstance(response, dict):
        if not response.get("code"):
            errors.append(error("IC-00224", f"{at}.response.code"))
        if not response.get("identifier"):
            errors.append(error("IC-00225", f"{at}.response.identifier"))
    return errors


def _entries_with_valid_profiles(verdict: Verdict, errors: list[RuleError]) -> set[int]:
    """Positions of entries whose profiles are valid NPHIES profiles of their type; errors for the others."""
    valid = set()
    index = verdict.index
    for position in range(len(index.entries)):
        resource = index.resource(position)
        resource_type = str(resource.get("resourceType"))
        at = f"Bundle.entry[{position}].resource"
        profiles = [p for p in (resource.get("meta") or {}).get("profile") or [] if isinstance(p, str)]
        if not profiles:
            errors.append(error(meta_profile_rule(resource_type), f"{at}.meta.profile"))
            continue
        if any("|" not in p for p in profiles):
            errors.append(error("BV-00225", f"{at}.meta.profile"))
            continue
        ids = {canonical.profile_id(p) for p in profiles}
        if not ids <= valid_profiles(resource_type):
            errors.append(error("RE-00170", at))
            continue
        valid.add(position)
    return valid


def _focus_errors(verdict: Verdict, valid: set[int]) -> list[RuleError]:
    focus = verdict.header.get("focus") or []
    if not focus:
        return [error("IC-00379", "Bundle.entry[0].resource.focus")]
    errors = []
    for position, element in enumerate(focus):
        reference = element.get("reference") if isinstance(element, dict) else None
        target = verdict.index.resolve(reference, 0) if isinstance(reference, str) else None
        if target is None or target not in valid:
            errors.append(error("RE-00100", f"Bundle.entry[0].resource.focus[{position}]"))
    return errors


def _reference_errors(index: BundleIndex, position: int) -> list[RuleError]:
    resource = index.resource(position)
    errors = []
    for found in iter_references(resource):
        if is_local(found.reference) or index.resolve(found.reference, position) is not None:
            continue
        element = f"{resource.get('resourceType')}.{_INDEX.sub('', found.path)}"
        errors.append(error(reference_rule(element), f"Bundle.entry[{position}].resource.{found.path}"))
    return errors


def _organization_errors(resource: dict, position: int) -> list[RuleError]:
    """providerType is mandatory on provider Organizations (profiles v5.2); NPHIES reports it twice."""
    profiles = {canonical.profile_id(p) for p in (resource.get("meta") or {}).get("profile") or []}
    if "provider-organization" not in profiles or extensions(resource, canonical.PROVIDER_TYPE_EXT):
        return []
    at = f"Bundle.entry[{position}].resource"
    return [error("IC-01428", f"{at}.extension"), error("IC-01574", f"{at}.extension[0].providerType")]


def _task_code_errors(verdict: Verdict) -> list[RuleError]:
    expected = TASK_CODES.get(verdict.event or "")
    if expected is None or code_of(verdict.focus.get("code")) in expected:
        return []
    return [error(_TASK_CODE_RULE[verdict.event], f"Bundle.entry[{verdict.focus_index}].resource.code")]


def _license_errors(verdict: Verdict) -> list[RuleError]:
    """GE-00031 / GE-00034: the licenses in the MessageHeader match the provider and payer Organizations."""
    focus, index, errors = verdict.focus, verdict.index, []
    provider = _organization(
        index, verdict.focus_index, focus.get(_PROVIDER_ELEMENT.get(focus.get("resourceType"), ""))
    )
    provider_license = _license(provider, canonical.PROVIDER_LICENSE)
    if provider_license and provider_license != verdict.sender:
        errors.append(error("GE-00031", "Bundle.entry[0].resource.sender"))
    if verdict.event not in ADDRESSED_TO_NPHIES:
        payer = _organization(
            index, verdict.focus_index, focus.get(_PAYER_ELEMENT.get(focus.get("resourceType"), ""))
        )
        payer_license = _license(payer, canonical.PAYER_LICENSE)
        if payer_license and payer_license != verdict.receiver:
            errors.append(error("GE-00034", "Bundle.entry[0].resource.destination[0].receiver"))
    return errors


def _organization(index: BundleIndex, from_position: int | None, element: object) -> dict | None:
    reference = element.get("reference") if isinstance(element, dict) else None
    return index.resolve_resource(reference, from_position) if isinstance(reference, str) else None


def _license(organization: dict | None, system: str) -> str | None:
    for identifier in (organization or {}).get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            return identifier.get("value")
    return None


def _stage_three(verdict: Verdict) -> list[RuleError]:
    header, event, focus = verdict.header, verdict.event, verdict.focus
    errors = []
    if len(header.get("focus") or []) > 1 and event != Event.BATCH_REQUEST:
        errors.append(error("BV-00221", "Bundle.entry[0].resource.focus"))
    if event in CLAIM_USE and focus.get("use") != CLAIM_USE[event]:
        errors.append(error("BV-00165", f"Bundle.entry[{verdict.focus_index}].resource.use"))
    if event in ADDRESSED_TO_NPHIES and verdict.receiver != canonical.NPHIES_ID:
        errors.append(error("BV-00456", "Bundle.entry[0].resource.destination[0].receiver"))
    if event == Event.CANCEL_REQUEST and not focus.get("reasonCode"):
        errors.append(error("BV-00071", f"Bundle.entry[{verdict.focus_index}].resource.reasonCode"))
    if event in (Event.CANCEL_REQUEST, Event.STATUS_CHECK) and not (focus.get("focus") or {}).get(
        "identifier"
    ):
        rule = "IC-00398" if event == Event.CANCEL_REQUEST else "IC-00401"
        errors.append(error(rule, f"Bundle.entry[{verdict.focus_index}].resource.focus"))
    return errors
