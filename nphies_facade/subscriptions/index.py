"""The live Subscriptions by resource type, so a change is matched only against those on its type, and
within a type by one equality value (a token code or a reference id) of their criteria, so a change is
evaluated only against the Subscriptions that can match it."""

from collections.abc import Iterable

from ..resources.search.query import Criterion, ReferenceMatch, TokenMatch
from ..resources.search.values import IndexValue, ReferenceValue, TokenValue
from .criteria import SubscriptionSpec

Key = tuple[str, str]  # (search parameter code, token code or reference id)


def _keys(spec: SubscriptionSpec) -> set[Key] | None:
    """Values one of which a matching resource must have; None when no criterion pins one down."""
    for criterion in spec.criteria:
        if not isinstance(criterion, Criterion) or criterion.modifier or criterion.chain is not None:
            continue
        if criterion.missing is not None or not criterion.values:
            continue
        kind = criterion.param.type
        if kind == "token" and all(isinstance(v, TokenMatch) and v.code for v in criterion.values):
            return {(criterion.param.code, v.code) for v in criterion.values}
        if kind == "reference" and all(isinstance(v, ReferenceMatch) and v.id for v in criterion.values):
            return {(criterion.param.code, v.id) for v in criterion.values}
    return None


def _value_key(value: IndexValue) -> str | None:
    if isinstance(value, TokenValue):
        return value.code
    if isinstance(value, ReferenceValue):
        return value.id
    return None


class _TypeIndex:
    def __init__(self) -> None:
        self.specs: dict[str, SubscriptionSpec] = {}
        self.keyed: dict[Key, set[str]] = {}
        self.unkeyed: set[str] = set()
        self.key_codes: dict[str, int] = {}  # parameter code -> how many keys use it
        self.codes: frozenset[str] | None = None

    def add(self, spec: SubscriptionSpec) -> None:
        self.specs[spec.id] = spec
        keys = _keys(spec)
        if keys is None:
            self.unkeyed.add(spec.id)
        for key in keys or ():
            self.keyed.setdefault(key, set()).add(spec.id)
            self.key_codes[key[0]] = self.key_codes.get(key[0], 0) + 1
        self.codes = None

    def remove(self, spec: SubscriptionSpec) -> None:
        del self.specs[spec.id]
        self.unkeyed.discard(spec.id)
        for key in _keys(spec) or ():
            ids = self.keyed[key]
            ids.discard(spec.id)
            if not ids:
                del self.keyed[key]
            self.key_codes[key[0]] -= 1
            if not self.key_codes[key[0]]:
                del self.key_codes[key[0]]
        self.codes = None

    def candidates(self, values: dict[str, list[IndexValue]]) -> Iterable[SubscriptionSpec]:
        ids = set(self.unkeyed)
        for code in self.key_codes:
            for value in values.get(code, ()):
                found = self.keyed.get((code, _value_key(value)))
                if found:
                    ids.update(found)
        return [self.specs[i] for i in ids]


class SubscriptionIndex:
    def __init__(self) -> None:
        self._by_id: dict[str, SubscriptionSpec] = {}
        self._by_type: dict[str, _TypeIndex] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, subscription_id: str) -> SubscriptionSpec | None:
        return self._by_id.get(subscription_id)

    def all(self) -> list[SubscriptionSpec]:
        return list(self._by_id.values())

    def put(self, spec: SubscriptionSpec) -> None:
        self.remove(spec.id)
        self._by_id[spec.id] = spec
        self._by_type.setdefault(spec.resource_type, _TypeIndex()).add(spec)

    def remove(self, subscription_id: str) -> None:
        spec = self._by_id.pop(subscription_id, None)
        if spec is None:
            return
        on_type = self._by_type[spec.resource_type]
        on_type.remove(spec)
        if not on_type.specs:
            del self._by_type[spec.resource_type]

    def for_type(self, resource_type: str) -> list[SubscriptionSpec]:
        on_type = self._by_type.get(resource_type)
        return list(on_type.specs.values()) if on_type else []

    def has_type(self, resource_type: str) -> bool:
        return resource_type in self._by_type

    def notifies_deletes(self, resource_type: str) -> bool:
        """Whether a Subscription on this type asks to hear of deletions."""
        on_type = self._by_type.get(resource_type)
        return on_type is not None and any(s.deletes for s in on_type.specs.values())

    def candidates(
        self, resource_type: str, values: dict[str, list[IndexValue]]
    ) -> Iterable[SubscriptionSpec]:
        """The Subscriptions on this type that the resource with these index values may match."""
        on_type = self._by_type.get(resource_type)
        return on_type.candidates(values) if on_type else ()

    def codes_for(self, resource_type: str) -> frozenset[str]:
        """The search parameters any Subscription on this type reads (only those are extracted)."""
        on_type = self._by_type.get(resource_type)
        if on_type is None:
            return frozenset()
        if on_type.codes is None:
            on_type.codes = frozenset().union(*(s.codes for s in on_type.specs.values()))
        return on_type.codes
