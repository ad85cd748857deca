"""The ABAC policy engine: attribute rules on role, region, organization and care relationship, as data.

A policy file (JSON, or YAML when PyYAML is installed) holds a list of rules. Rules are constraints: every
rule that applies to the caller (by role), the interaction and the resource type must pass, after the
scopes allowed the interaction. A refusal names the rule and says why, never what the data held.

Checks:
  same-region        the resource's region tag equals the token's `region` claim
  resource-types     the resource type is one of `allow`
  same-organization  the token's `organization` is referenced at the type's `paths` (or tagged)
  care-relationship  an active Encounter, EpisodeOfCare or CareTeam (the `links`) refers to both the
                     token's `fhirUser` and the patient the resource belongs to
"""

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ...resources.access import Interaction
from ...resources.context import RequestContext
from ...resources.references import references_at

DEFAULT_POLICY = Path(__file__).with_name("data") / "default-policy.json"
REGION_TAG_SYSTEM = "urn:nphies-facade:region"
ORGANIZATION_TAG_SYSTEM = "urn:nphies-facade:organization"

INTERACTION_GROUPS = {
    "reads": {
        Interaction.READ,
        Interaction.VREAD,
        Interaction.SEARCH,
        Interaction.HISTORY_INSTANCE,
        Interaction.HISTORY_TYPE,
        Interaction.HISTORY_SYSTEM,
    },
    "writes": {Interaction.CREATE, Interaction.UPDATE, Interaction.PATCH, Interaction.DELETE},
}
TYPE_ONLY_CHECKS = frozenset({"resource-types"})


class PolicyError(ValueError):
    """The policy file cannot be used; the message says which rule and what is wrong."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str | None = None
    reason: str | None = None


ALLOW = Decision(True)


class PolicyData(Protocol):
    """What rules may look up in the store (committed state)."""

    def patients(self, resource: dict) -> set[str]: ...

    async def referring(self, resource_type: str, codes: list[str], reference: str) -> list[dict]: ...


@dataclass(frozen=True, slots=True)
class Link:
    """A resource type that relates a patient to an actor: the patient by search parameter, the actor by
    element path, counted only in the listed statuses."""

    resource_type: str
    patient_params: tuple[str, ...]
    actor_paths: tuple[str, ...]
    statuses: frozenset[str]


@dataclass(frozen=True)
class Rule:
    id: str
    check: str
    description: str = ""
    roles: frozenset[str] | None = None
    interactions: frozenset[str] | None = None
    resource_types: frozenset[str] | None = None
    options: dict = field(default_factory=dict)

    def applies(self, ctx: RequestContext, interaction: Interaction, resource_type: str | None) -> bool:
        if self.roles is not None and not self.roles.intersection(ctx.roles):
            return False
        if self.interactions is not None and interaction.value not in self.interactions:
            return False
        return self.resource_types is None or resource_type is None or resource_type in self.resource_types


def _strings(value: object, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return frozenset(value)


def _interactions(value: object, where: str) -> frozenset[str] | None:
    names = _strings(value, where)
    if names is None:
        return None
    expanded: set[str] = set()
    known = {i.value for i in Interaction}
    for name in names:
        if name in INTERACTION_GROUPS:
            expanded |= {i.value for i in INTERACTION_GROUPS[name]}
        elif name in known:
            expanded.add(name)
        else:
            raise PolicyError(f"{where}: unknown interaction {name!r} (use reads, writes or {sorted(known)})")
    return frozenset(expanded)


def _links(value: object, where: str) -> tuple[Link, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where} must be a non-empty list of links")
    links = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise PolicyError(f"{at} needs a resource `type`")
        links.append(
            Link(
                item["type"],
                tuple(_strings(item.get("patient_params"), f"{at}.patient_params") or ()),
                tuple(_strings(item.get("actor_paths"), f"{at}.actor_paths") or ()),
                _strings(item.get("statuses"), f"{at}.statuses") or frozenset(),
            )
        )
        if not links[-1].patient_params or not links[-1].actor_paths:
            raise PolicyError(f"{at} needs patient_params and actor_paths")
    return tuple(links)


def _options(check: str, raw: dict, where: str) -> dict:
    if check == "resource-types":
        return {"allow": _strings(raw.get("allow"), f"{where}.allow") or frozenset()}
    if check == "same-organization":
        paths = raw.get("paths", {})
        if not isinstance(paths, dict):
            raise PolicyError(f"{where}.paths must map resource types to element paths")
        return {
            "paths": {t: tuple(_strings(p, f"{where}.paths.{t}") or ()) for t, p in paths.items()},
            "tag_system": raw.get("tag_system", ORGANIZATION_TAG_SYSTEM),
        }
    if check == "same-region":
        return {
            "tag_system": raw.get("tag_system", REGION_TAG_SYSTEM),
            "untagged": raw.get("untagged", "allow"),
        }
    if check == "care-relationship":
        return {"links": _links(raw.get("links"), f"{where}.links")}
    raise PolicyError(f"{where}: unknown check {check!r}")


def parse_rule(raw: object, index: int) -> Rule:
    where = f"rules[{index}]"
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("id"), str)
        or not isinstance(raw.get("check"), str)
    ):
        raise PolicyError(f"{where} needs an `id` and a `check`")
    where = f"rule {raw['id']!r}"
    return Rule(
        id=raw["id"],
        check=raw["check"],
        description=str(raw.get("description", "")),
        roles=_strings(raw.get("roles"), f"{where}.roles"),
        interactions=_interactions(raw.get("interactions"), f"{where}.interactions"),
        resource_types=_strings(raw.get("resource_types"), f"{where}.resource_types"),
        options=_options(raw["check"], raw, where),
    )


def _load_document(path: Path) -> object:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise PolicyError(f"{path} is YAML; install PyYAML or write the policy as JSON") from None
        return yaml.safe_load(text)
    return json.loads(text)


def _tag_codes(resource: dict, system: str) -> set[str]:
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    tags = meta.get("tag") if isinstance(meta.get("tag"), list) else []
    return {t["code"] for t in tags if isinstance(t, dict) and t.get("system") == system and "code" in t}


def _reads_resource(rule: Rule, ctx: RequestContext) -> bool:
    if rule.check == "same-region":
        return ctx.region is not None
    if rule.check == "same-organization":
        return ctx.organization is not None
    return rule.check not in TYPE_ONLY_CHECKS


def _organization_id(reference: str) -> str:
    return reference.removeprefix("Organization/")


class Policy:
    def __init__(self, rules: list[Rule], source: str = "") -> None:
        ids = [rule.id for rule in rules]
        if len(set(ids)) != len(ids):
            raise PolicyError("rule ids must be unique")
        self.rules = rules
        self.source = source
        self._memo: OrderedDict[tuple, bool] = OrderedDict()
        self._applicable_memo: dict[tuple, tuple[Rule, ...]] = {}
        self._checks: dict[str, Callable[..., Awaitable[str | None]]] = {
            "same-region": self._same_region,
            "resource-types": self._resource_types,
            "same-organization": self._same_organization,
            "care-relationship": self._care_relationship,
        }

    @classmethod
    def load(cls, path: Path | None = None) -> "Policy":
        path = path or DEFAULT_POLICY
        try:
            document = _load_document(path)
        except (OSError, ValueError) as exc:
            raise PolicyError(f"cannot read the policy {path}: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
            raise PolicyError(f"{path}: a policy is an object with a `rules` list")
        return cls([parse_rule(raw, i) for i, raw in enumerate(document["rules"])], str(path))

    def _applicable(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> tuple[Rule, ...]:
        # Rules apply by role, interaction and type only; a request asks this several times.
        key = (ctx.roles, interaction, resource_type)
        rules = self._applicable_memo.get(key)
        if rules is None:
            if len(self._applicable_memo) >= 4096:
                self._applicable_memo.clear()
            rules = tuple(rule for rule in self.rules if rule.applies(ctx, interaction, resource_type))
            self._applicable_memo[key] = rules
        return rules

    def needs_resource(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> bool:
        """Whether a rule's answer for this caller can depend on the resource: region and organization
        checks cannot for a token without a region (always passes) or organization (always refused)."""
        return any(_reads_resource(r, ctx) for r in self._applicable(ctx, interaction, resource_type))

    async def decide_type(
        self, ctx: RequestContext, interaction: Interaction, resource_type: str | None
    ) -> Decision:
        """The rules that can decide on the type alone (a biller searching Patient is refused up front)."""
        if resource_type is None:
            return ALLOW
        for rule in self._applicable(ctx, interaction, resource_type):
            if rule.check in TYPE_ONLY_CHECKS:
                reason = await self._resource_types(rule, ctx, resource_type, None, None)
                if reason is not None:
                    return Decision(False, rule.id, reason)
        return ALLOW

    async def decide(
        self,
        ctx: RequestContext,
        interaction: Interaction,
        resource_type: str,
        resource: dict | None,
        data: PolicyData,
    ) -> Decision:
        for rule in self._applicable(ctx, interaction, resource_type):
            reason = await self._checks[rule.check](rule, ctx, resource_type, resource, data)
            if reason is not None:
                return Decision(False, rule.id, reason)
        return ALLOW

    # ----- checks: each returns why it refuses, or None -----

    async def _resource_types(
        self, rule: Rule, ctx: RequestContext, resource_type: str, resource: dict | None, data: object
    ) -> str | None:
        if resource_type in rule.options["allow"]:
            return None
        return f"the caller's role may not access {resource_type} resources"

    async def _same_region(
        self, rule: Rule, ctx: RequestContext, resource_type: str, resource: dict | None, data: object
    ) -> str | None:
        if ctx.region is None:
            return None
        if resource is None:
            return "a deleted version has no region to compare"
        regions = _tag_codes(resource, rule.options["tag_system"])
        if not regions:
            return None if rule.options["untagged"] == "allow" else "the resource carries no region"
        return None if ctx.region in regions else "the resource is outside the token's region"

    async def _same_organization(
        self, rule: Rule, ctx: RequestContext, resource_type: str, resource: dict | None, data: object
    ) -> str | None:
        if ctx.organization is None:
            return "the token names no organization"
        if resource is None:
            return "a deleted version has no organization to compare"
        own = _organization_id(ctx.organization)
        paths = rule.options["paths"].get(resource_type, ())
        referenced = {_organization_id(r) for path in paths for r in references_at(resource, path)}
        referenced |= {_organization_id(code) for code in _tag_codes(resource, rule.options["tag_system"])}
        return None if own in referenced else "the resource does not belong to the token's organization"

    async def _care_relationship(
        self, rule: Rule, ctx: RequestContext, resource_type: str, resource: dict | None, data: PolicyData
    ) -> str | None:
        if resource is None:
            return "a deleted version cannot be attributed to a patient"
        patients = data.patients(resource)
        if not patients:
            return None
        if ctx.fhir_user is None:
            return "the token has no fhirUser to relate to the patient"
        for patient in sorted(patients):
            if await self._related(rule, ctx, patient, data):
                return None
        kinds = ", ".join(link.resource_type for link in rule.options["links"])
        return f"no active {kinds} links the user to the patient"

    async def _related(self, rule: Rule, ctx: RequestContext, patient: str, data: PolicyData) -> bool:
        # Decided once per request (trace id): a search of many resources of one patient asks once.
        key = (ctx.trace_id, rule.id, ctx.fhir_user, patient)
        if key in self._memo:
            return self._memo[key]
        related = await self._find_relationship(rule, ctx.fhir_user or "", patient, data)
        self._memo[key] = related
        if len(self._memo) > 4096:
            self._memo.popitem(last=False)
        return related

    @staticmethod
    async def _find_relationship(rule: Rule, actor: str, patient: str, data: PolicyData) -> bool:
        for link in rule.options["links"]:
            for linking in await data.referring(link.resource_type, list(link.patient_params), patient):
                if link.statuses and linking.get("status") not in link.statuses:
                    continue
                if any(actor in references_at(linking, path) for path in link.actor_paths):
                    return True
        return False
