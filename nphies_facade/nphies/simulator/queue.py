"""The per-provider queue of messages waiting to be polled (first in, first out), in memory."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..fhirjson import Identifier


@dataclass
class Queued:
    """A message for a provider, deliverable from `release_at` (monotonic seconds) on."""

    provider: str
    event: str
    bundle: dict
    release_at: float
    about: Identifier | None = None  # the Claim the message is about, for Task.focus filters and cancels
    sequence: int = 0


@dataclass
class MessageQueue:
    clock: Callable[[], float]
    _items: list[Queued] = field(default_factory=list)
    _sequence: int = 0

    def put(self, item: Queued) -> None:
        self._sequence += 1
        item.sequence = self._sequence
        self._items.append(item)

    def take(
        self,
        provider: str,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        about: Identifier | None = None,
        count: int = 1,
    ) -> list[Queued]:
        """Removes and returns up to `count` released messages matching the poll filters, oldest first."""
        matching = [
            item for item in self._released(provider) if _matches(item, set(include), set(exclude), about)
        ]
        taken = matching[:count]
        for item in taken:
            self._items.remove(item)
        return taken

    def pending(self, provider: str) -> int:
        """Released messages still waiting for this provider (drives the queued-messages tag)."""
        return sum(1 for _ in self._released(provider))

    def drop_about(self, about: Identifier) -> int:
        """Removes every message about one claim (it was cancelled); returns how many."""
        before = len(self._items)
        self._items = [item for item in self._items if not _same(item.about, about)]
        return before - len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def _released(self, provider: str) -> list[Queued]:
        now = self.clock()
        return [item for item in self._items if item.provider == provider and item.release_at <= now]


def _matches(item: Queued, include: set[str], exclude: set[str], about: Identifier | None) -> bool:
    if include and item.event not in include:
        return False
    if item.event in exclude:
        return False
    return about is None or _same(item.about, about)


def _same(found: Identifier | None, wanted: Identifier) -> bool:
    if found is None or found.value != wanted.value:
        return False
    return found.system is None or wanted.system is None or found.system == wanted.system
