"""The injectable clock: all time the server records comes from here, so tests can control it."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def fhir_instant(moment: datetime) -> str:
    """An R4 instant with millisecond precision in UTC, e.g. 2026-11-25T20:05:50.123+00:00."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")
