"""Implicit precision ranges of FHIR dates and decimals (R4 search spec, 3.1.1.4.2 and 3.1.1.4.3)."""

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_MS_PER_DAY = 86_400_000
_MS_PER_MINUTE = 60_000
_FIVE = Decimal(5)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; no datetime objects)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _offset_ms(zone: str | None) -> int:
    if zone is None or zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(zone[1:3]) * 60 + int(zone[4:6])) * _MS_PER_MINUTE


def _fraction_range(fraction: str) -> tuple[int, int]:
    """Milliseconds a fraction of a second adds, and the width of its precision (at least 1 ms)."""
    digits = len(fraction)
    start = int(fraction[:3].ljust(3, "0"))
    return start, 10 ** (3 - digits) if digits < 3 else 1


@lru_cache(maxsize=8192)  # the same dates recur: several parameters, resources of one encounter
def date_range(text: str) -> tuple[int, int] | None:
    """[lo, hi) in epoch ms of a date, dateTime or instant string; None if it is not one.

    A value without a time zone is taken as UTC.
    """
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, zone = match.groups()
    year = int(year_s)
    month = int(month_s) if month_s else 1
    day = int(day_s) if day_s else 1
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    if month_s is None:
        return days_from_civil(year, 1, 1) * _MS_PER_DAY, days_from_civil(year + 1, 1, 1) * _MS_PER_DAY
    if day_s is None:
        next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
        return (
            days_from_civil(year, month, 1) * _MS_PER_DAY,
            days_from_civil(next_year, next_month, 1) * _MS_PER_DAY,
        )
    start = days_from_civil(year, month, day) * _MS_PER_DAY
    if hour_s is None:
        return start, start + _MS_PER_DAY
    hour, minute = int(hour_s), int(minute_s)
    if hour > 23 or minute > 59:
        return None
    start += (hour * 60 + minute) * _MS_PER_MINUTE - _offset_ms(zone)
    if second_s is None:
        return start, start + _MS_PER_MINUTE
    second = int(second_s)
    if second > 60:
        return None
    start += second * 1000
    if fraction is None:
        return start, start + 1000
    extra, width = _fraction_range(fraction)
    return start + extra, start + extra + width


def as_decimal(value: object) -> Decimal | None:
    """A JSON number (int, float, or the Decimal fhirpathpy produces) as a finite Decimal; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def number_range(number: Decimal) -> tuple[float, float, float]:
    """(value, lo, hi): the value and the half-unit-of-last-digit range around it; 1.5 -> [1.45, 1.55)."""
    half = _FIVE.scaleb(number.as_tuple().exponent - 1)
    return float(number), float(number - half), float(number + half)


def value_range(value: object) -> tuple[float, float, float] | None:
    """number_range of a JSON number (or a Decimal); None for anything else."""
    if type(value) is int or type(value) is float:
        return _json_number_range(value)
    number = as_decimal(value)
    return number_range(number) if number is not None else None


@lru_cache(maxsize=8192, typed=True)  # typed: 1 and 1.0 have different precisions
def _json_number_range(value: int | float) -> tuple[float, float, float] | None:
    number = as_decimal(value)
    return number_range(number) if number is not None else None
