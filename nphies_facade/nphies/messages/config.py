"""ProviderConfig: who the provider is on NPHIES, used for every MessageHeader and Task it sends."""

from dataclasses import dataclass

from .. import canonical


@dataclass(frozen=True)
class ProviderConfig:
    """The provider's NPHIES identity and defaults for messages.

    provider_license: the CHI license NPHIES knows the provider by (MessageHeader.sender).
    payer_license: the default destination when the payer Organization carries no payer-license identifier.
    source_endpoint: MessageHeader.source.endpoint, a URL naming the sending system.
    identifier_system: namespace for the identifiers of the Tasks the builders create (poll, cancel, status).
    provider_type: code from provider-type (1 Hospital ... 9 Radiotherapy Center); added to the provider
        Organization when it lacks the extension (mandatory since profiles v5.2).
    """

    provider_license: str
    provider_name: str
    payer_license: str
    source_endpoint: str
    payer_name: str | None = None
    identifier_system: str | None = None
    provider_type: str | None = "1"
    nphies_endpoint: str = canonical.NPHIES_ENDPOINT

    @property
    def task_identifier_system(self) -> str:
        return self.identifier_system or f"{self.source_endpoint.rstrip('/')}/identifiers/task"

    def provider_organization(self) -> dict:
        """A provider Organization built from this config, for messages that only need the requester."""
        organization: dict = {
            "resourceType": "Organization",
            "id": f"provider-{self.provider_license}",
            "identifier": [{"system": canonical.PROVIDER_LICENSE, "value": self.provider_license}],
            "active": True,
            "type": [{"coding": [{"system": canonical.ORGANIZATION_TYPE, "code": "prov"}]}],
            "name": self.provider_name,
        }
        if self.provider_type:
            organization["extension"] = [provider_type_extension(self.provider_type)]
        return organization

    def payer_organization(self) -> dict:
        return {
            "resourceType": "Organization",
            "id": f"payer-{self.payer_license}",
            "identifier": [{"system": canonical.PAYER_LICENSE, "value": self.payer_license}],
            "active": True,
            "type": [{"coding": [{"system": canonical.ORGANIZATION_TYPE, "code": "ins"}]}],
            "name": self.payer_name or self.payer_license,
        }


def provider_type_extension(code: str) -> dict:
    return {
        "url": canonical.PROVIDER_TYPE_EXT,
        "valueCodeableConcept": {"coding": [{"system": canonical.PROVIDER_TYPE, "code": code}]},
    }
