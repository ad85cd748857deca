"""Reading an operation's input Parameters resource (the optional body of a POST)."""

import re
from datetime import date

from ..resources.errors import bad_request

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VALUE_KEYS = ("valueCode", "valueString", "valueDate", "valueBoolean", "valueInteger", "valueUri")


def read_parameters(body: object | None) -> list[tuple[str, object]]:
    """(name, value) of each parameter of a Parameters body; no body is no parameters."""
    if body is None:
        return []
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request("The body of an operation is a Parameters resource", "resourceType", "structure")
    found = []
    for index, parameter in enumerate(body.get("parameter") or []):
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise bad_request("Every parameter needs a name", f"Parameters.parameter[{index}]", "structure")
        values = [parameter[k] for k in VALUE_KEYS if k in parameter]
        found.append((parameter["name"], values[0] if values else None))
    return found


def check_names(parameters: list[tuple[str, object]], allowed: set[str], operation: str) -> None:
    unknown = sorted({name for name, _ in parameters} - allowed)
    if unknown:
        raise bad_request(
            f"{operation} takes the parameters {', '.join(sorted(allowed))}, not {', '.join(unknown)}",
            "Parameters.parameter.name",
        )


def codes(
    parameters: list[tuple[str, object]], name: str, allowed: frozenset[str], default: tuple[str, ...]
) -> tuple[str, ...]:
    """The distinct values of a repeatable code parameter, sorted; `default` when absent."""
    values = [value for key, value in parameters if key == name]
    for value in values:
        if value not in allowed:
            raise bad_request(
                f"{name} is one of {', '.join(sorted(allowed))}, not {value!r}",
                f"Parameters.parameter[{name}]",
            )
    return tuple(sorted(set(values))) if values else default  # type: ignore[arg-type]


def single(parameters: list[tuple[str, object]], name: str) -> object | None:
    values = [value for key, value in parameters if key == name]
    if len(values) > 1:
        raise bad_request(f"{name} may be given once", f"Parameters.parameter[{name}]")
    return values[0] if values else None


def a_date(parameters: list[tuple[str, object]], name: str) -> str | None:
    value = single(parameters, name)
    if value is None:
        return None
    if not isinstance(value, str) or not DATE.match(value) or not _real_date(value):
        raise bad_request(f"{name} is a date like 2024-05-01, not {value!r}", f"Parameters.parameter[{name}]")
    return value


def _real_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
