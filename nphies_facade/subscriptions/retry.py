"""The retry policy of deliveries and jobs: exponential backoff, capped, for a limited window."""

from dataclasses import dataclass


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the `attempts`th failed attempt: initial, doubled each time, capped."""
    return min(initial * 2.0 ** min(max(attempts - 1, 0), 62), maximum)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 1.0
    maximum: float = 3600.0
    window: float = 86_400.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`th failed attempt (1 s, 2 s, 4 s ... by default)."""
        return backoff(attempts, self.initial, self.maximum)

    def gives_up(self, first_recorded: float, now: float) -> bool:
        """True once the window since the event (or job) was recorded has passed: it becomes dead."""
        return now - first_recorded >= self.window
