"""Extract search-index values from a resource: for each parameter of its type, the typed values it holds.

Per resource type the extractor builds, once, a plan of (code, accessor, converter): the accessor is a
compiled Python function when the compiler can translate the (rewritten) expression and a fhirpathpy
evaluation otherwise; the converter turns what the accessor selects into IndexValues.
"""

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nphies_facade.resources.search.compiler import (
    Accessor,
    NotCompilable,
    RelativeAccessor,
    compile_accessor,
    compile_branches,
    compile_relative,
)
from nphies_facade.resources.search.converters import CONVERTERS, Converter
from nphies_facade.resources.search.definitions import SearchParam, SearchRegistry
from nphies_facade.resources.search.fallback import fallback_accessor, fallback_items, fallback_relative
from nphies_facade.resources.search.rewrites import rewrite
from nphies_facade.resources.search.values import CompositeValue, IndexValue

logger = logging.getLogger(__name__)

ValuesOf = Callable[[dict], list[IndexValue]]


@dataclass(frozen=True, slots=True)
class ParamPlan:
    """How one parameter is extracted from resources of one type."""

    code: str
    param: SearchParam
    expression: str  # after rewrites
    compiled: bool  # False: evaluated with fhirpathpy
    values: ValuesOf


@dataclass(frozen=True, slots=True)
class _Part:
    """One component of a composite parameter, as evaluated on one item of the composite's base."""

    code: str
    accessor: RelativeAccessor
    convert: Converter


class Extractor:
    """Index values of resources, per the parameters a SearchRegistry defines.

    `use_compiler=False` evaluates every expression with fhirpathpy (the reference the compiler is tested
    against, and the benchmark's baseline). With the compiler, plans for every type are built up front.
    """

    def __init__(self, registry: SearchRegistry, *, use_compiler: bool = True) -> None:
        self.registry = registry
        self.use_compiler = use_compiler
        self._plans: dict[str, tuple[ParamPlan, ...]] = {}
        self._skipped: dict[str, tuple[str, ...]] = {}
        self._registry_version = registry.version
        if use_compiler:
            self.warm(registry.resource_types())

    def warm(self, resource_types: Iterable[str]) -> None:
        for resource_type in resource_types:
            self.plans(resource_type)

    def extract(self, resource: dict) -> dict[str, list[IndexValue]]:
        """{param code: values} for the parameters of the resource's type that have values."""
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            raise ValueError("resource has no resourceType")
        out: dict[str, list[IndexValue]] = {}
        for plan in self.plans(resource_type):
            try:
                values = plan.values(resource)
            except Exception as error:  # bad data must not fail a write; log without resource content
                logger.warning("search parameter %s on %s failed: %s", plan.code, resource_type, type(error))
                continue
            if values:
                out[plan.code] = values
        return out

    def plans(self, resource_type: str) -> tuple[ParamPlan, ...]:
        if self.registry.version != self._registry_version:
            self._plans.clear()
            self._skipped.clear()
            self._registry_version = self.registry.version
        plans = self._plans.get(resource_type)
        if plans is None:
            plans = self._plans[resource_type] = self._build_plans(resource_type)
        return plans

    def skipped(self, resource_type: str) -> tuple[str, ...]:
        """Codes of parameters that are not extracted at all (composites whose parts are unknown)."""
        self.plans(resource_type)
        return self._skipped.get(resource_type, ())

    def _build_plans(self, resource_type: str) -> tuple[ParamPlan, ...]:
        plans: list[ParamPlan] = []
        skipped: list[str] = []
        for code, param in self.registry.params_for(resource_type).items():
            plan = self._plan(param, resource_type)
            if plan is None:
                skipped.append(code)
            else:
                plans.append(plan)
        self._skipped[resource_type] = tuple(skipped)
        return tuple(plans)

    def _plan(self, param: SearchParam, resource_type: str) -> ParamPlan | None:
        expression = rewrite(param.expression, resource_type)
        if param.type == "composite":
            return self._composite_plan(param, expression, resource_type)
        convert = CONVERTERS[param.type]
        if self.use_compiler:
            try:
                accessor = compile_accessor(expression, resource_type)
                return ParamPlan(param.code, param, expression, True, _simple_values(accessor, convert))
            except NotCompilable:
                pass
        accessor = fallback_accessor(expression)
        return ParamPlan(param.code, param, expression, False, _simple_values(accessor, convert))

    def _composite_plan(self, param: SearchParam, expression: str, resource_type: str) -> ParamPlan | None:
        components = self._component_params(param)
        if components is None:
            return None
        if self.use_compiler:
            try:
                branches = [
                    (items, self._compiled_parts(components, resource_type, path))
                    for items, path in compile_branches(expression, resource_type)
                ]
                return ParamPlan(param.code, param, expression, True, _composite_values(branches))
            except NotCompilable:
                pass
        parts = [
            _Part(code, fallback_relative(rewrite(part_expression, resource_type)), convert)
            for code, part_expression, convert in components
        ]
        values = _composite_values([(fallback_items(expression), parts)])
        return ParamPlan(param.code, param, expression, False, values)

    def _component_params(self, param: SearchParam) -> list[tuple[str, str, Converter]] | None:
        """(code, expression, converter) per component; None when a component's definition is unknown."""
        components = []
        for definition_url, part_expression in param.components:
            definition = self.registry.by_url(definition_url)
            if definition is None or definition.type not in CONVERTERS:
                return None
            components.append((definition.code, part_expression, CONVERTERS[definition.type]))
        return components

    @staticmethod
    def _compiled_parts(
        components: list[tuple[str, str, Converter]], resource_type: str, path: str
    ) -> list[_Part]:
        return [
            _Part(
                code, compile_relative(rewrite(part_expression, resource_type), resource_type, path), convert
            )
            for code, part_expression, convert in components
        ]


def _unique(values: list[IndexValue]) -> list[IndexValue]:
    return values if len(values) < 2 else list(dict.fromkeys(values))


def _simple_values(accessor: Accessor, convert: Converter) -> ValuesOf:
    def values(resource: dict) -> list[IndexValue]:
        out: list[IndexValue] = []
        for element in accessor(resource):
            out.extend(convert(element))
        return _unique(out)

    return values


def _part_values(part: _Part, item: object, resource: dict) -> list[tuple[str, IndexValue]]:
    converted: list[IndexValue] = []
    for element in part.accessor(item, resource):
        converted.extend(part.convert(element))
    return [(part.code, value) for value in _unique(converted)]


def _composite_values(branches: list[tuple[Accessor, list[_Part]]]) -> ValuesOf:
    """Per item of the base expression, every combination of its components' values. The last component
    (the value of code-value-[x]) is the one most often absent, so components are read last first and
    the reading stops at the first without values."""

    def values(resource: dict) -> list[IndexValue]:
        out: list[IndexValue] = []
        for items, parts in branches:
            for item in items(resource):
                per_part: list[list[tuple[str, IndexValue]]] = []
                for part in reversed(parts):
                    found = _part_values(part, item, resource)
                    if not found:
                        break
                    per_part.append(found)
                else:
                    per_part.reverse()
                    out.extend(CompositeValue(combination) for combination in itertools.product(*per_part))
        return _unique(out)

    return values
