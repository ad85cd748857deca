"""FHIR errors: exceptions that carry an HTTP status and become OperationOutcome resources."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Issue:
    code: str
    diagnostics: str
    severity: str = "error"
    expression: str | None = None

    def as_json(self) -> dict:
        issue: dict = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
            issue["location"] = [self.expression]
        return issue


def operation_outcome(issues: list[Issue]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.as_json() for i in issues]}


@dataclass
class FhirError(Exception):
    """An error the client must see as an OperationOutcome with the given HTTP status."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(i.diagnostics for i in self.issues)

    def outcome(self) -> dict:
        return operation_outcome(self.issues)


def error(status: int, code: str, diagnostics: str, expression: str | None = None) -> FhirError:
    return FhirError(status, [Issue(code, diagnostics, expression=expression)])


def bad_request(diagnostics: str, expression: str | None = None, code: str = "invalid") -> FhirError:
    return error(400, code, diagnostics, expression)


def not_found(diagnostics: str) -> FhirError:
    return error(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return error(410, "deleted", diagnostics)


def conflict(diagnostics: str) -> FhirError:
    return error(409, "conflict", diagnostics)


def precondition_failed(diagnostics: str) -> FhirError:
    return error(412, "conflict", diagnostics)
