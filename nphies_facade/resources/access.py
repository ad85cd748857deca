"""The authorisation port: what FhirService asks before every interaction (the server plugs in its Authorizer).

FhirService is the one point every path passes (HTTP, bundle entries, operations, workers), so it is the
one place that asks. `check_type` runs before anything is loaded (a caller without any scope for the type
learns nothing about what exists); `check` runs on the resource itself (compartment, scope restrictions,
attribute rules); `permits` is the same decision without raising, for filtering search and history results.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum

from .context import RequestContext
from .errors import FhirError, Issue
from .store import StoreTransaction


class Interaction(StrEnum):
    READ = "read"
    VREAD = "vread"
    SEARCH = "search-type"
    HISTORY_INSTANCE = "history-instance"
    HISTORY_TYPE = "history-type"
    HISTORY_SYSTEM = "history-system"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    OPERATION = "operation"


# SMART v2 permission letters each interaction needs (v1 `read` = rs, `write` = cud).
PERMISSION: dict[Interaction, str] = {
    Interaction.READ: "r",
    Interaction.VREAD: "r",
    Interaction.HISTORY_INSTANCE: "r",
    Interaction.SEARCH: "s",
    Interaction.HISTORY_TYPE: "s",
    Interaction.HISTORY_SYSTEM: "s",
    Interaction.CREATE: "c",
    Interaction.UPDATE: "u",
    Interaction.PATCH: "u",
    Interaction.DELETE: "d",
    Interaction.OPERATION: "r",
}

# The AuditEvent action code (C/R/U/D/E) an interaction is recorded with.
AUDIT_ACTION: dict[Interaction, str] = {
    Interaction.READ: "R",
    Interaction.VREAD: "R",
    Interaction.HISTORY_INSTANCE: "R",
    Interaction.SEARCH: "E",
    Interaction.HISTORY_TYPE: "E",
    Interaction.HISTORY_SYSTEM: "E",
    Interaction.CREATE: "C",
    Interaction.UPDATE: "U",
    Interaction.PATCH: "U",
    Interaction.DELETE: "D",
    Interaction.OPERATION: "E",
}


@dataclass(frozen=True, slots=True)
class Visibility:
    """What a caller may see of a type in a search, said as criteria the search can apply: the patient
    whose compartment it stays in, and the scope's `?param=value` restrictions (ANDed). `exact` is False
    when the rules also depend on each resource in a way criteria cannot say (attribute rules, or several
    conditional scopes that each admit other resources); `nothing` when no scope admits any resource."""

    patient: str | None = None
    restrictions: tuple[tuple[str, str], ...] = ()
    exact: bool = True
    nothing: bool = False

    @property
    def unrestricted(self) -> bool:
        return self.exact and not self.nothing and self.patient is None and not self.restrictions


UNRESTRICTED = Visibility()


def forbidden(diagnostics: str, rule: str | None = None) -> FhirError:
    """A 403 whose OperationOutcome names the rule that decided, never the data it looked at."""
    text = f"{diagnostics} (rule: {rule})" if rule else diagnostics
    return FhirError(403, [Issue("forbidden", text)])


class AccessControl(ABC):
    @abstractmethod
    async def check_type(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> None:
        """Raises a 403 FhirError when no scope lets ctx do `interaction` on this type (None: any type)."""

    @abstractmethod
    async def check(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource: dict | None,
        tx: StoreTransaction | None = None,
    ) -> None:
        """Raises a 403 FhirError when ctx may not do `interaction` on this resource (None: a deletion)."""

    async def permits(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource: dict | None,
        tx: StoreTransaction | None = None,
    ) -> bool:
        try:
            await self.check(ctx, interaction, resource_type, resource, tx)
        except FhirError as exc:
            if exc.status == 403:
                return False
            raise
        return True

    async def check_admin(self, ctx: RequestContext) -> None:
        """Raises a 403 FhirError unless ctx may run administration ($reindex ...); refuses by default."""
        raise forbidden("Administration is not permitted", "administration")

    def needs_resource(self, ctx: RequestContext, interaction: Interaction, resource_type: str) -> bool:
        """False when `check` decides on the type alone, so a caller may skip parsing the resource."""
        return True

    def compartment_patient(self, ctx: RequestContext, resource_type: str) -> str | None:
        """The patient ("Patient/1") whose compartment a search of this type must stay in, when only
        patient-level scopes grant it; a search planner can add this as a criterion up front."""
        return None

    def visibility(self, ctx: RequestContext, resource_type: str | None) -> Visibility:
        """What ctx may find of the type by search, as criteria (search_access.py applies them to the
        search and to every type its criteria reach)."""
        return UNRESTRICTED


class AllowAll(AccessControl):
    """No authorisation: for a service used without a server (tests, tools)."""

    def needs_resource(self, ctx: RequestContext, interaction: Interaction, resource_type: str) -> bool:
        return False

    async def check_admin(self, ctx: RequestContext) -> None:
        return None

    async def check_type(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> None:
        return None

    async def check(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource: dict | None,
        tx: StoreTransaction | None = None,
    ) -> None:
        return None
