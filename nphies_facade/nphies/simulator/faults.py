"""Fault injection: which requests get latency, an HTTP error, a hung connection or a malformed body."""

import random
from dataclasses import dataclass, field

from .settings import FaultRule


@dataclass
class FaultInjector:
    """Counts matching requests per rule and says which fault (if any) applies to the next one."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    _seen: dict[int, int] = field(default_factory=dict)
    _fired: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def replace(self, rules: list[FaultRule]) -> None:
        self.rules = list(rules)
        self._seen.clear()
        self._fired.clear()

    def pick(self, event: str | None, sender: str | None) -> list[FaultRule]:
        """The faults for one request: every matching rule whose turn (every Nth / chance) it is."""
        chosen = []
        for number, rule in enumerate(self.rules):
            if rule.events is not None and event not in rule.events:
                continue
            if rule.sender is not None and sender != rule.sender:
                continue
            if rule.limit is not None and self._fired.get(number, 0) >= rule.limit:
                continue
            self._seen[number] = self._seen.get(number, 0) + 1
            if self._fires(rule, self._seen[number]):
                self._fired[number] = self._fired.get(number, 0) + 1
                chosen.append(rule)
        return chosen

    def _fires(self, rule: FaultRule, seen: int) -> bool:
        if rule.every_nth is not None:
            return seen % rule.every_nth == 0
        if rule.probability is not None:
            return self._random.random() < rule.probability
        return True
