"""The operations' errors as OperationOutcomes: refused messages (422), NPHIES unreachable (502/504)."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..nphies.canonical import ADJUDICATION_ERROR
from ..nphies.gateway import Exchange
from ..nphies.parsing import NphiesError
from ..profiles import Issue as ProfileIssue
from ..profiles import operation_outcome as profile_outcome
from ..resources.errors import FhirError

GATEWAY_TIMEOUT_STATUSES = frozenset({504})


@dataclass
class OutcomeError(FhirError):
    """A FhirError whose OperationOutcome is given whole (NPHIES rule codes in issue.details)."""

    body: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(i.get("diagnostics", "") for i in self.body.get("issue", []))

    def outcome(self) -> dict:
        return self.body


def refused_by_profiles(issues: list[ProfileIssue]) -> OutcomeError:
    """422: the message would break NPHIES profiles, so it was not sent."""
    body = profile_outcome([i for i in issues if i.severity in ("error", "fatal")])
    body["issue"].insert(
        0, _issue("processing", "The NPHIES message was not sent: it breaks NPHIES profiles")
    )
    return OutcomeError(422, body=body)


def unbuildable(reason: str) -> OutcomeError:
    """422: the stored resources cannot make an NPHIES message (a reference that cannot be resolved ...)."""
    return OutcomeError(
        422, body=outcome([_issue("processing", f"No NPHIES message can be built: {reason}")])
    )


def timed_out(exchange: Exchange) -> bool:
    last = exchange.attempts[-1] if exchange.attempts else None
    text = (exchange.error or "") + (last.error or "" if last else "")
    return "Timeout" in text or exchange.status_code in GATEWAY_TIMEOUT_STATUSES


def unreachable(exchange: Exchange) -> OutcomeError:
    """504 when NPHIES did not answer in time, else 502: no usable answer came back."""
    status = 504 if timed_out(exchange) else 502
    what = "did not answer in time" if status == 504 else "gave no usable answer"
    detail = f"NPHIES {what} ({exchange.outcome.value} after {len(exchange.attempts)} attempt(s)"
    detail += f": {exchange.error})" if exchange.error else ")"
    issues = [_issue("timeout" if status == 504 else "transient", detail)]
    return OutcomeError(status, body=outcome(issues + nphies_issues(_errors_of(exchange))))


def refused_by_nphies(errors: Sequence[NphiesError], status: int | None) -> OutcomeError:
    """502: NPHIES could not read or route the message (it answered HTTP 4xx with these errors)."""
    issues = [_issue("processing", f"NPHIES refused the message (HTTP {status})")]
    return OutcomeError(502, body=outcome(issues + nphies_issues(errors)))


def nphies_issues(errors: Sequence[NphiesError]) -> list[dict]:
    return [nphies_issue(e) for e in errors]


def nphies_issue(error: NphiesError) -> dict:
    issue = _issue(
        "processing", f"NPHIES error {error.code}" + (f": {error.display}" if error.display else "")
    )
    issue["severity"] = "error" if error.severity not in ("warning", "information") else error.severity
    issue["details"] = {"coding": [{"system": ADJUDICATION_ERROR, "code": error.code}]}
    if error.display:
        issue["details"]["coding"][0]["display"] = error.display
    if error.expression:
        issue["expression"] = [error.expression]
    return issue


def outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def _issue(code: str, diagnostics: str, severity: str = "error") -> dict:
    return {"severity": severity, "code": code, "diagnostics": diagnostics}


def _errors_of(exchange: Exchange) -> tuple[NphiesError, ...]:
    parsed = exchange.parsed()
    return tuple(parsed.errors) if parsed is not None else ()
