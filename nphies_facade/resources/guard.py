"""What FhirService asks and records around every interaction: authorisation (the access port) and audit.

The service calls the guard at fixed points: before loading anything (`admit_type`), on the resource it
loaded or is about to write (`admit`), and after the interaction (`seen`, `changed`, `listed`), so the
decision and its audit record never depend on which route, bundle entry or worker made the call. A denial
is audited even when the transaction it happened in rolls back.
"""

from .. import exact_json
from .access import AUDIT_ACTION, AccessControl, Interaction
from .audit import MINOR_FAILURE, AuditEntry, Auditor
from .context import RequestContext
from .errors import FhirError
from .operations_access import OperationDeclaration
from .store import StoredVersion, StoreTransaction


def _reference(resource_type: str | None, resource_id: str | None) -> str | None:
    if resource_type and resource_id:
        return f"{resource_type}/{resource_id}"
    return resource_type


class Guard:
    def __init__(self, access: AccessControl, auditor: Auditor) -> None:
        self.access = access
        self.audit = auditor

    async def _denied(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        entity: str | None,
        resource: dict | None,
        exc: FhirError,
        tx: StoreTransaction | None,
    ) -> None:
        reason = exc.issues[0].diagnostics if exc.issues else "forbidden"
        entry = self.audit.entry(
            AUDIT_ACTION[interaction], interaction.value, entity, resource, MINOR_FAILURE, {"reason": reason}
        )
        await self.audit.record_failure(ctx, entry, tx)

    async def denied(
        self, ctx: RequestContext, interaction: Interaction, entity: str | None, exc: FhirError
    ) -> None:
        """Audits a refusal decided outside the access port (a search criterion that reaches too far)."""
        await self._denied(ctx, interaction, entity, None, exc, None)

    async def admit_type(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> None:
        try:
            await self.access.check_type(ctx, interaction, resource_type)
        except FhirError as exc:
            await self._denied(ctx, interaction, resource_type, None, exc, None)
            raise

    async def admit_operation(self, ctx: RequestContext, operation: OperationDeclaration) -> None:
        """Before an operation runs: administration, and each interaction it causes on its type."""
        if operation.admin:
            try:
                await self.access.check_admin(ctx)
            except FhirError as exc:
                await self._denied(ctx, Interaction.OPERATION, operation.resource_type, None, exc, None)
                raise
        for need in operation.parsed:
            await self.admit_type(ctx, need.interaction, need.resource_type)

    async def admit(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource_id: str | None,
        resource: dict | None,
        tx: StoreTransaction | None = None,
    ) -> None:
        try:
            await self.access.check(ctx, interaction, resource_type, resource, tx)
        except FhirError as exc:
            await self._denied(ctx, interaction, _reference(resource_type, resource_id), resource, exc, tx)
            raise

    async def visible(self, ctx: RequestContext, interaction: Interaction, version: StoredVersion) -> bool:
        """Whether one version may appear in a history or search result (no audit: the listing is)."""
        resource = None
        if version.body is not None and self.access.needs_resource(ctx, interaction, version.resource_type):
            resource = exact_json.loads(version.body)
        return await self.access.permits(ctx, interaction, version.resource_type, resource)

    async def visible_versions(
        self, ctx: RequestContext, interaction: Interaction, versions: list[StoredVersion]
    ) -> list[StoredVersion]:
        """The versions that may appear in a result. Where the rules decide on the type alone, they are
        asked once per type, and no body is parsed."""
        by_type: dict[str, bool] = {}
        kept = []
        for version in versions:
            resource_type = version.resource_type
            verdict = by_type.get(resource_type)
            if verdict is None:
                if self.access.needs_resource(ctx, interaction, resource_type):
                    if await self.visible(ctx, interaction, version):
                        kept.append(version)
                    continue
                verdict = by_type[resource_type] = await self.access.permits(
                    ctx, interaction, resource_type, None
                )
            if verdict:
                kept.append(version)
        return kept

    async def seen(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        stored: StoredVersion,
        resource: dict,
        tx: StoreTransaction | None = None,
    ) -> None:
        entity = f"{stored.resource_type}/{stored.id}"
        detail = {"version": stored.version}
        entry = self.audit.entry(
            AUDIT_ACTION[interaction], interaction.value, entity, resource, detail=detail
        )
        await self.audit.record(ctx, entry, tx)

    async def changed(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        stored: StoredVersion,
        resource: dict | None,
        tx: StoreTransaction,
    ) -> None:
        entity = f"{stored.resource_type}/{stored.id}"
        detail = {"version": stored.version}
        entry = self.audit.entry(
            AUDIT_ACTION[interaction], interaction.value, entity, resource, detail=detail
        )
        await self.audit.record(ctx, entry, tx)

    async def listed(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str | None,
        resource_id: str | None,
        count: int,
        detail: dict | None = None,
        tx: StoreTransaction | None = None,
    ) -> None:
        entry = AuditEntry(
            AUDIT_ACTION[interaction],
            interaction.value,
            entity=_reference(resource_type, resource_id),
            patient=ctx.patient,
            detail={"returned": count, **(detail or {})},
        )
        await self.audit.record(ctx, entry, tx)
