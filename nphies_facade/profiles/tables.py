"""The vendored profile data (see SOURCES.md): element rules per profile, terminology, NPHIES rule codes."""

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class ElementRule:
    """One row of a profile table that the checks use."""

    path: str
    min: int
    max: str
    fixed: str | None = None
    value_set: str | None = None
    extension: str | None = None
    slice: str | None = None
    # other element names that satisfy the same requirement (a choice such as valueQuantity | valueMoney)
    alternatives: tuple[str, ...] = field(default=())

    @property
    def segments(self) -> list[str]:
        return self.path.split(".")[1:]


@dataclass(frozen=True)
class Profile:
    id: str
    resource_type: str
    rules: tuple[ElementRule, ...]


@cache
def profiles() -> dict[str, Profile]:
    raw = json.loads((DATA / "elements.json").read_text())
    return {pid: Profile(pid, p["resourceType"], _with_choices(p["elements"])) for pid, p in raw.items()}


@cache
def terminology() -> dict:
    return json.loads((DATA / "terminology.json").read_text())


@cache
def rule_codes() -> dict:
    return json.loads((DATA / "rules.json").read_text())


def _with_choices(elements: list[dict]) -> tuple[ElementRule, ...]:
    """Rules, where required siblings value* of one parent become one rule with alternatives."""
    rules = [
        ElementRule(
            path=e["path"],
            min=e["min"],
            max=e["max"],
            fixed=e.get("fixed"),
            value_set=e.get("valueSet"),
            extension=e.get("extension"),
            slice=e.get("slice"),
        )
        for e in elements
    ]
    choices: dict[str, list[ElementRule]] = {}
    for rule in rules:
        parent, _, name = rule.path.rpartition(".")
        if rule.min and not rule.extension and name.startswith("value") and name != "value":
            choices.setdefault(parent, []).append(rule)
    merged = []
    for rule in rules:
        group = choices.get(rule.path.rpartition(".")[0], [])
        if len(group) > 1 and rule in group:
            if rule is group[0]:
                names = tuple(r.path.rpartition(".")[2] for r in group[1:])
                merged.append(ElementRule(rule.path, rule.min, rule.max, alternatives=names))
            continue
        merged.append(rule)
    return tuple(merged)
