"""$validate, type level (`POST /[type]/$validate`) and instance level (`POST /[type]/[id]/$validate`).

Answers an OperationOutcome listing every issue a write of the resource would meet: structure (the
validation every write runs), references (form, target types, conditional references that must match
one resource, and, under strict referential integrity, targets that must exist), the NPHIES profiles
asked for (`profile`) or claimed in `meta.profile`; `mode=delete` lists the resources that still refer to
the one named. Nothing is stored. The body is the resource, or a Parameters with `resource`, `mode`
(create | update | delete) and `profile`.
"""

from ..nphies.fhirjson import copy_json
from ..profiles.checks import PROFILE_BASE, check_resource
from ..profiles.issues import Issue, operation_outcome
from ..profiles.tables import profiles
from ..resources.access import Interaction
from ..resources.context import RequestContext
from ..resources.errors import FhirError, bad_request
from ..resources.errors import Issue as FhirIssue
from ..resources.integrity import MAX_NAMED
from ..resources.reference_walk import walk_references
from ..resources.service import FhirService, parse_criteria
from ..resources.validation import require_resource, validate_resource

MODES = ("create", "update", "delete")
# Validating needs what the write would: the caller learns what a write would (targets that exist).
MODE_INTERACTIONS = {"create": Interaction.CREATE, "update": Interaction.UPDATE, "delete": Interaction.DELETE}
R4_PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"
ALL_OK = "All OK"


def read_validate_parameters(
    body: object, resource_type: str
) -> tuple[object | None, str | None, str | None]:
    """(resource, mode, profile) of a $validate body: the resource itself, or Parameters."""
    if (
        not isinstance(body, dict)
        or body.get("resourceType") != "Parameters"
        or resource_type == "Parameters"
    ):
        return body, None, None
    resource = mode = profile = None
    for index, parameter in enumerate(body.get("parameter") or []):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise bad_request("Every parameter needs a name", where, "structure")
        name = parameter["name"]
        if name == "resource":
            resource = parameter.get("resource")
        elif name == "mode":
            mode = parameter.get("valueCode")
            if mode not in MODES:
                raise bad_request(f"mode is one of {', '.join(MODES)}, not {mode!r}", f"{where}.valueCode")
        elif name == "profile":
            profile = parameter.get("valueUri", parameter.get("valueCanonical"))
            if not isinstance(profile, str):
                raise bad_request("profile is a canonical URL (valueUri or valueCanonical)", where)
        else:
            raise bad_request(f"$validate takes resource, mode and profile, not {name!r}", f"{where}.name")
    return resource, mode, profile


class Validation:
    """Runs $validate against a FhirService: its validation, its store for references, never a write."""

    def __init__(self, service: FhirService) -> None:
        self.service = service

    async def validate(
        self, ctx: RequestContext, resource_type: str, resource_id: str | None, body: object
    ) -> dict:
        resource, mode, profile = read_validate_parameters(body, resource_type)
        await self.service.authorize(ctx, MODE_INTERACTIONS[mode or "create"], resource_type)
        if mode == "delete":
            issues = await self._delete_issues(resource_type, resource_id)
        elif resource is None:
            raise bad_request("$validate needs a resource: the body, or the Parameters' resource", "resource")
        else:
            issues = await self._resource_issues(resource_type, resource_id, copy_json(resource), mode)
            if not issues and profile is not None:
                issues = _profile_issues(resource, profile)
            if not issues:
                issues = _claimed_profile_issues(resource)
        if not issues:
            outcome = operation_outcome([])
            outcome["issue"][0]["diagnostics"] = ALL_OK
            return outcome
        return operation_outcome(issues)

    async def _resource_issues(
        self, resource_type: str, resource_id: str | None, resource: object, mode: str | None
    ) -> list[Issue]:
        try:
            require_resource(resource)
            if resource["resourceType"] != resource_type:
                raise bad_request(
                    f"The resource is a {resource['resourceType']} but the URL names {resource_type}",
                    "resourceType",
                )
            if resource_id is not None and resource.get("id") not in (None, resource_id):
                raise bad_request(
                    f"The resource's id {resource.get('id')!r} is not the id in the URL {resource_id!r}",
                    f"{resource_type}.id",
                )
            if mode == "update" and resource_id is None and not resource.get("id"):
                raise bad_request("An update needs the resource's id", f"{resource_type}.id")
            validate_resource(resource)
        except FhirError as exc:
            return _issues(exc.issues, resource_type)
        walked = walk_references(resource)
        issues = _issues(walked.issues, resource_type)
        for node, where in walked.conditional:
            issues += await self._conditional_issues(node["reference"], where)
        if self.service.integrity.strict:
            for target, where in dict(reversed(walked.local)).items():
                kind, _, target_id = target.partition("/")
                stored = await self.service.store.read(kind, target_id)
                if stored is None or stored.deleted:
                    message = (
                        f"{where} refers to {target}, which does not exist on this server (or was deleted)"
                    )
                    issues.append(Issue("error", "not-found", where, message))
        return issues

    async def _conditional_issues(self, value: str, where: str) -> list[Issue]:
        kind, _, query = value.partition("?")
        try:
            ids = await self.service.find_ids(kind, parse_criteria(query))
        except FhirError as exc:
            return _issues(exc.issues, where)
        if len(ids) == 1:
            return []
        message = f"The conditional reference {value} matches {len(ids)} resources; it must match exactly one"
        return [Issue("error", "not-found" if not ids else "multiple-matches", where, message)]

    async def _delete_issues(self, resource_type: str, resource_id: str | None) -> list[Issue]:
        if resource_id is None:
            raise bad_request("mode=delete validates an instance: POST [type]/[id]/$validate", "mode")
        stored = await self.service.store.read(resource_type, resource_id)
        if stored is None or stored.deleted:
            message = f"{resource_type}/{resource_id} is not known (or already deleted)"
            return [Issue("error", "not-found", resource_type, message)]
        integrity = self.service.integrity
        if not integrity.strict:
            return []
        params = integrity.params_naming(resource_type)
        async with self.service.store.transaction() as tx:
            found = await tx.referrers([(resource_type, resource_id)], params, MAX_NAMED + 1)
        referrers = [referrer for _, referrer in found if referrer != f"{resource_type}/{resource_id}"]
        if not referrers:
            return []
        named = ", ".join(referrers[:MAX_NAMED]) + (" and more" if len(referrers) > MAX_NAMED else "")
        message = f"{resource_type}/{resource_id} cannot be deleted: it is referred to by {named}"
        return [Issue("error", "conflict", resource_type, message)]


def _issues(issues: list[FhirIssue], where: str) -> list[Issue]:
    return [Issue(i.severity, i.code, i.expression or where, i.diagnostics) for i in issues]


def _profile_issues(resource: dict, profile: str) -> list[Issue]:
    resource_type = resource["resourceType"]
    canonical = profile.split("|")[0]
    if canonical.startswith(PROFILE_BASE) and canonical[len(PROFILE_BASE) :] in profiles():
        return check_resource(resource, canonical[len(PROFILE_BASE) :], resource_type)
    if canonical == R4_PROFILE_BASE + resource_type:
        return []  # the R4 definition of the type, which every write is validated against
    message = (
        f"The profile {profile} is not known here: NPHIES profiles ({PROFILE_BASE}...) and the R4 types are"
    )
    return [Issue("error", "not-supported", "profile", message)]


def _claimed_profile_issues(resource: dict) -> list[Issue]:
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    issues: list[Issue] = []
    for profile in claimed if isinstance(claimed, list) else []:
        canonical = profile.split("|")[0] if isinstance(profile, str) else ""
        if canonical.startswith(PROFILE_BASE) and canonical[len(PROFILE_BASE) :] in profiles():
            issues += check_resource(resource, canonical[len(PROFILE_BASE) :], resource["resourceType"])
    return issues
