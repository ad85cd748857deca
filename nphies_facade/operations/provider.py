"""The provider's own Organization in the store: the one eligibility requests name as provider."""

import asyncio

from ..nphies import canonical
from ..nphies.messages import ProviderConfig
from ..resources.context import RequestContext
from ..resources.service import FhirService


class ProviderOrganization:
    """Finds the Organization with the provider license of the settings, creating it the first time."""

    def __init__(self, service: FhirService, config: ProviderConfig) -> None:
        self._service = service
        self._config = config
        self._reference: str | None = None
        self._lock = asyncio.Lock()

    @property
    def criteria(self) -> str:
        return f"identifier={canonical.PROVIDER_LICENSE}|{self._config.provider_license}"

    async def reference(self, ctx: RequestContext) -> str:
        """`Organization/{id}` of the provider (found by license, or created)."""
        if self._reference is None:
            async with self._lock:
                if self._reference is None:
                    self._reference = await self._find_or_create(ctx)
        return self._reference

    async def _find_or_create(self, ctx: RequestContext) -> str:
        license_id = f"{canonical.PROVIDER_LICENSE}|{self._config.provider_license}"
        found = await self._service.find_ids("Organization", [("identifier", license_id)])
        if found:
            return f"Organization/{sorted(found)[0]}"
        organization = self._config.provider_organization()
        organization.pop("id")
        result = await self._service.create(ctx, organization, if_none_exist=self.criteria)
        assert result.version is not None
        return f"Organization/{result.version.id}"

    def forget(self) -> None:
        """Looks the Organization up again next time (it was deleted, or the store changed)."""
        self._reference = None
