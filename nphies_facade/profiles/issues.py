"""Profile check issues and their OperationOutcome form."""

from dataclasses import dataclass

ADJUDICATION_ERROR = "http://nphies.sa/terminology/CodeSystem/adjudication-error"


@dataclass(frozen=True)
class Issue:
    """One finding: FHIR issue severity and type, where (FHIRPath-like), what, and the NPHIES rule if known."""

    severity: str
    code: str
    expression: str
    message: str
    rule: str | None = None

    def to_fhir(self) -> dict:
        issue: dict = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.message,
            "expression": [self.expression],
        }
        if self.rule:
            issue["details"] = {
                "coding": [{"system": ADJUDICATION_ERROR, "code": self.rule}],
                "text": self.message,
            }
        return issue


def operation_outcome(issues: list[Issue]) -> dict:
    """An OperationOutcome listing the issues (an `information` issue when there are none)."""
    if not issues:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": "no issues found"}],
        }
    return {"resourceType": "OperationOutcome", "issue": [issue.to_fhir() for issue in issues]}


def has_errors(issues: list[Issue]) -> bool:
    return any(issue.severity in ("error", "fatal") for issue in issues)
