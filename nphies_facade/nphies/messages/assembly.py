"""Assembling a message Bundle: MessageHeader, focus, and every resource they reference, by urn:uuid."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .. import canonical
from ..events import ADDRESSED_TO_NPHIES
from ..fhirjson import copy_json, extensions, new_guid
from ..references import iter_references
from .closure import Collected, Resolver, collect, in_guide_order, resource_key
from .config import ProviderConfig, provider_type_extension
from .profiles import profile_for

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Receiver:
    """MessageHeader.destination: whom the message is for."""

    system: str
    value: str
    endpoint: str

    @classmethod
    def payer(cls, license_id: str) -> "Receiver":
        return cls(canonical.PAYER_LICENSE, license_id, canonical.payer_endpoint(license_id))

    @classmethod
    def nphies(cls, endpoint: str = canonical.NPHIES_ENDPOINT) -> "Receiver":
        return cls(canonical.NPHIES_LICENSE, canonical.NPHIES_ID, endpoint)


@dataclass(frozen=True)
class Message:
    """A built message: the Bundle plus what callers need to file and correlate it."""

    bundle: dict
    event: str
    header_id: str
    focus: dict
    # "Type/id" of each stored resource -> its fullUrl in the bundle
    full_urls: dict[str, str] = field(default_factory=dict)

    @property
    def bundle_id(self) -> str:
        return self.bundle["id"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def instant(moment: datetime) -> str:
    """An instant to the millisecond with its time zone, as NPHIES requires of Bundle.timestamp."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def assemble(
    event: str,
    focus: dict,
    resolve: Resolver,
    config: ProviderConfig,
    receiver: Receiver,
    clock: Clock = utc_now,
) -> Message:
    """The message Bundle for `focus` and the closure of its references, as fetched through `resolve`."""
    collected = in_guide_order(collect(focus, resolve))
    guids = [new_guid() for _ in collected.resources]
    full_urls = [f"urn:uuid:{guid}" for guid in guids]
    rewritten = [
        _rewrite(resource, guid, collected, full_urls, config)
        for resource, guid in zip(collected.resources, guids, strict=True)
    ]
    header = _header(event, config, receiver, full_urls[0])
    bundle = {
        "resourceType": "Bundle",
        "id": new_guid(),
        "meta": {"profile": [canonical.profile_url("bundle")]},
        "type": "message",
        "timestamp": instant(clock()),
        "entry": [{"fullUrl": f"urn:uuid:{header['id']}", "resource": header}]
        + [{"fullUrl": url, "resource": r} for url, r in zip(full_urls, rewritten, strict=True)],
    }
    sources = {key: full_urls[i] for key, i in collected.index_by_key.items()}
    return Message(bundle, event, header["id"], rewritten[0], sources)


def _rewrite(
    resource: dict, guid: str, collected: Collected, full_urls: list[str], config: ProviderConfig
) -> dict:
    index = collected.index_by_key[resource_key(resource)]
    copied = copy_json(resource)
    copied["id"] = guid
    profile = profile_for(resource, collected.roles[index])
    meta = {"profile": [canonical.profile_url(profile)]} if profile else _kept_profiles(resource)
    copied["meta"] = meta
    for found in iter_references(copied):
        target = collected.index_by_reference.get(found.reference)
        if target is not None:
            found.element["reference"] = full_urls[target]
    if profile == "provider-organization":
        _complete_provider(copied, config)
    return copied


def _kept_profiles(resource: dict) -> dict:
    profiles = (resource.get("meta") or {}).get("profile")
    return {"profile": list(profiles)} if profiles else {}


def _complete_provider(organization: dict, config: ProviderConfig) -> None:
    """Adds the provider-type extension from config to the provider's own Organization when it lacks one."""
    licenses = {i.get("value") for i in organization.get("identifier") or [] if isinstance(i, dict)}
    if config.provider_type and config.provider_license in licenses:
        if not extensions(organization, canonical.PROVIDER_TYPE_EXT):
            organization.setdefault("extension", []).insert(0, provider_type_extension(config.provider_type))


def _header(event: str, config: ProviderConfig, receiver: Receiver, focus_url: str) -> dict:
    guid = new_guid()
    return {
        "resourceType": "MessageHeader",
        "id": guid,
        "meta": {"profile": [canonical.profile_url("message-header")]},
        "eventCoding": {"system": canonical.MESSAGE_EVENTS, "code": event},
        "destination": [
            {
                "endpoint": receiver.endpoint,
                "receiver": {
                    "type": "Organization",
                    "identifier": {"system": receiver.system, "value": receiver.value},
                },
            }
        ],
        "sender": {
            "type": "Organization",
            "identifier": {"system": canonical.PROVIDER_LICENSE, "value": config.provider_license},
        },
        "source": {"endpoint": config.source_endpoint},
        "focus": [{"reference": focus_url}],
    }


def payer_receiver(organization: dict | None, config: ProviderConfig) -> Receiver:
    """The receiver named by a payer Organization's license identifier, else the configured payer."""
    for identifier in (organization or {}).get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == canonical.PAYER_LICENSE:
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return Receiver.payer(value)
    return Receiver.payer(config.payer_license)


def receiver_for(event: str, payer: dict | None, config: ProviderConfig) -> Receiver:
    if event in ADDRESSED_TO_NPHIES:
        return Receiver.nphies(config.nphies_endpoint)
    return payer_receiver(payer, config)
