"""The live Subscriptions by resource type, so a change is matched only against those on its type."""

from .criteria import SubscriptionSpec


class SubscriptionIndex:
    def __init__(self) -> None:
        self._by_id: dict[str, SubscriptionSpec] = {}
        self._by_type: dict[str, dict[str, SubscriptionSpec]] = {}
        self._codes: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, subscription_id: str) -> SubscriptionSpec | None:
        return self._by_id.get(subscription_id)

    def all(self) -> list[SubscriptionSpec]:
        return list(self._by_id.values())

    def put(self, spec: SubscriptionSpec) -> None:
        self.remove(spec.id)
        self._by_id[spec.id] = spec
        self._by_type.setdefault(spec.resource_type, {})[spec.id] = spec
        self._codes.pop(spec.resource_type, None)

    def remove(self, subscription_id: str) -> None:
        spec = self._by_id.pop(subscription_id, None)
        if spec is None:
            return
        on_type = self._by_type[spec.resource_type]
        del on_type[subscription_id]
        if not on_type:
            del self._by_type[spec.resource_type]
        self._codes.pop(spec.resource_type, None)

    def for_type(self, resource_type: str) -> list[SubscriptionSpec]:
        on_type = self._by_type.get(resource_type)
        return list(on_type.values()) if on_type else []

    def has_type(self, resource_type: str) -> bool:
        return resource_type in self._by_type

    def codes_for(self, resource_type: str) -> frozenset[str]:
        """The search parameters any Subscription on this type reads (only those are extracted)."""
        codes = self._codes.get(resource_type)
        if codes is None:
            specs = self._by_type.get(resource_type, {}).values()
            codes = self._codes[resource_type] = frozenset().union(*(s.codes for s in specs))
        return codes
