"""Search-parameter definitions: the official R4 set (vendored) plus SearchParameter resources added at run time.

Each definition is split per base type: the official expressions are unions over many bases (`Account.subject
| Claim.patient | ...`), and a type gets only its own branches, so `params_for("Claim")["patient"]` has the
expression `Claim.patient`.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import orjson

from nphies_facade.resources.search.expressions import FhirPathSyntaxError, split_union
from nphies_facade.resources.search.rewrites import rewrite

DATA_FILE = Path(__file__).with_name("data") / "search-parameters.json"
PARAM_TYPES = frozenset({"number", "date", "string", "token", "reference", "composite", "quantity", "uri"})
COMMON_BASES = ("Resource", "DomainResource")
# Resources that are not DomainResources, so do not get the DomainResource parameters.
NOT_DOMAIN_RESOURCES = frozenset({"Bundle", "Binary", "Parameters"})
_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-.]*")
_BRANCH_ROOT = re.compile(r"\(*\s*([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class SearchParam:
    """A search parameter as it applies to one base type (`base` is that one type)."""

    code: str
    url: str
    type: str
    base: tuple[str, ...]
    expression: str
    targets: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()  # (definition url, expression)
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    multiple_or: bool | None = None
    multiple_and: bool | None = None


@cache
def official_definitions() -> tuple[dict, ...]:
    """The vendored R4 definitions (read once per process)."""
    return tuple(orjson.loads(DATA_FILE.read_bytes()))


def branches_by_base(expression: str, bases: Iterable[str]) -> dict[str, str]:
    """The union branches of `expression` that belong to each base, re-joined with ' | '.

    A branch belongs to the base its root names (`Claim.patient`, `(Claim.x as T)`); a branch rooted
    at `Resource`/`DomainResource`, or at an element name (`name | alias`), belongs to every base.
    """
    bases = tuple(bases)
    grouped: dict[str, list[str]] = {base: [] for base in bases}
    for branch in split_union(expression):
        match = _BRANCH_ROOT.match(branch)
        root = match.group(1) if match else ""
        for base in bases:
            if root == base or root in COMMON_BASES or not root[:1].isupper():
                grouped[base].append(branch)
    return {base: " | ".join(found) for base, found in grouped.items() if found}


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _optional_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _components(definition: dict) -> tuple[tuple[str, str], ...]:
    return tuple((c["definition"], c["expression"]) for c in definition.get("component") or ())


def params_from_definition(definition: dict) -> list[SearchParam]:
    """One SearchParam per base that has branches in the expression."""
    per_base = branches_by_base(definition["expression"], definition["base"])
    shared = {
        "code": definition["code"],
        "url": definition.get("url")
        or f"urn:search-parameter:{'-'.join(definition['base'])}-{definition['code']}",
        "type": definition["type"],
        "targets": _strings(definition.get("target")),
        "components": _components(definition),
        "modifiers": _strings(definition.get("modifier")),
        "comparators": _strings(definition.get("comparator")),
        "multiple_or": _optional_bool(definition.get("multipleOr")),
        "multiple_and": _optional_bool(definition.get("multipleAnd")),
    }
    return [
        SearchParam(base=(base,), expression=expression, **shared) for base, expression in per_base.items()
    ]


def is_extractable(definition: dict) -> bool:
    """Special parameters and those without an expression (_text, _content, _query, near) are not."""
    return bool(definition.get("expression")) and definition.get("type") in PARAM_TYPES


def validate_search_parameter(resource: dict) -> None:
    """Raise ValueError saying what is wrong with a SearchParameter resource we are asked to register."""
    if not isinstance(resource, dict):
        raise ValueError("a SearchParameter must be a JSON object")
    if resource.get("resourceType", "SearchParameter") != "SearchParameter":
        raise ValueError(f"expected resourceType SearchParameter, got {resource.get('resourceType')!r}")
    code = resource.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"SearchParameter.code must be a name like 'member-id', got {code!r}")
    base = resource.get("base")
    if not isinstance(base, list) or not base or not all(isinstance(b, str) and b for b in base):
        raise ValueError(f"SearchParameter.base must be a non-empty list of resource types, got {base!r}")
    param_type = resource.get("type")
    if param_type not in PARAM_TYPES:
        raise ValueError(f"SearchParameter.type must be one of {sorted(PARAM_TYPES)}, got {param_type!r}")
    expression = resource.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("SearchParameter.expression must be a non-empty FHIRPath expression")
    _validate_components(resource)
    try:
        per_base = branches_by_base(expression, base)
    except FhirPathSyntaxError as error:
        raise ValueError(f"SearchParameter.expression is not valid FHIRPath: {error}") from error
    if not per_base:
        raise ValueError(f"SearchParameter.expression {expression!r} has no branch for base {base}")
    if "resolve()" in rewrite(expression, base[0]):
        raise ValueError(
            "resolve() can only be used as where(resolve() is <Type>): extraction sees one resource"
        )


def _validate_components(resource: dict) -> None:
    components = resource.get("component")
    if resource["type"] != "composite":
        return
    if not isinstance(components, list) or len(components) < 2:
        raise ValueError("a composite SearchParameter needs at least two components")
    for component in components:
        if not (
            isinstance(component, dict)
            and isinstance(component.get("definition"), str)
            and isinstance(component.get("expression"), str)
        ):
            raise ValueError("each SearchParameter.component needs a definition and an expression")


class SearchRegistry:
    """The search parameters known for each resource type."""

    def __init__(self, definitions: Iterable[dict] | None = None) -> None:
        self._by_base: dict[str, dict[str, SearchParam]] = {}
        self._by_url: dict[str, SearchParam] = {}
        self._merged: dict[str, dict[str, SearchParam]] = {}
        self.version = 0  # bumped by add(), so extractors know to rebuild their plans
        for definition in official_definitions() if definitions is None else definitions:
            if is_extractable(definition):
                self._register(params_from_definition(definition))

    def _register(self, params: list[SearchParam]) -> None:
        for param in params:
            self._by_base.setdefault(param.base[0], {})[param.code] = param
            self._by_url.setdefault(param.url, param)
        self._merged.clear()

    def add(self, search_parameter: dict) -> list[SearchParam]:
        """Register a SearchParameter resource; it replaces a parameter with the same code and base."""
        validate_search_parameter(search_parameter)
        for component in search_parameter.get("component") or ():
            if component["definition"] not in self._by_url:
                raise ValueError(f"component definition {component['definition']!r} is not a known parameter")
        params = params_from_definition(search_parameter)
        for param in params:
            self._by_url.pop(param.url, None)
        self._register(params)
        self.version += 1
        return params

    def remove(self, url: str) -> None:
        """Unregister what add() registered under this url; official parameters it replaced come back."""
        removed = [
            (base, code)
            for base, params in self._by_base.items()
            for code, p in params.items()
            if p.url == url
        ]
        for base, code in removed:
            del self._by_base[base][code]
        self._by_url.pop(url, None)
        for definition in official_definitions():
            if definition["code"] in {code for _, code in removed} and is_extractable(definition):
                self._register(
                    [p for p in params_from_definition(definition) if (p.base[0], p.code) in removed]
                )
        self._merged.clear()
        self.version += 1

    def params_for(self, resource_type: str) -> dict[str, SearchParam]:
        """Every parameter that applies to the type, the Resource/DomainResource ones included."""
        merged = self._merged.get(resource_type)
        if merged is None:
            merged = self._merged[resource_type] = self._merge(resource_type)
        return dict(merged)

    def _merge(self, resource_type: str) -> dict[str, SearchParam]:
        merged: dict[str, SearchParam] = {}
        bases = ("Resource",) if resource_type in NOT_DOMAIN_RESOURCES else COMMON_BASES
        for base in (*bases, resource_type):
            for code, param in self._by_base.get(base, {}).items():
                merged[code] = param if base == resource_type else replace(param, base=(resource_type,))
        return merged

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        merged = self._merged.get(resource_type)
        if merged is None:
            merged = self._merged[resource_type] = self._merge(resource_type)
        return merged.get(code)

    def by_url(self, url: str) -> SearchParam | None:
        """The definition with that canonical url (for a multi-base one, as it applies to one base)."""
        return self._by_url.get(url)

    def resource_types(self) -> list[str]:
        """The types that have parameters of their own."""
        return sorted(base for base in self._by_base if base not in COMMON_BASES)
