"""The answers to batch and transaction entries: response entries, and failures that name their entry."""

import dataclasses
from dataclasses import dataclass
from http import HTTPStatus

import orjson

from .errors import FhirError, Issue, operation_outcome
from .store import StoredVersion

RETURN_CHOICES = frozenset({"minimal", "representation", "operationoutcome"})


@dataclass(slots=True)
class EntryResult:
    """What one entry did. `body` is what a read returns (stored JSON, or a Bundle for history/search)."""

    status: int
    version: StoredVersion | None = None
    body: bytes | dict | None = None
    outcome: dict | None = None
    written: bool = False


class EntryFailed(Exception):
    """An entry's FhirError, with where it happened."""

    def __init__(self, index: int, full_url: str | None, resource_type: str | None, cause: FhirError) -> None:
        super().__init__(str(cause))
        self.index = index
        self.full_url = full_url
        self.resource_type = resource_type
        self.cause = cause

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"

    def issues(self) -> list[Issue]:
        """The cause's issues, their expressions rooted at this entry (`Patient.name` -> `...resource.name`)."""
        return [self._rooted(issue) for issue in self.cause.issues]

    def _rooted(self, issue: Issue) -> Issue:
        where = issue.expression
        if not where or where.startswith("Bundle."):
            return issue
        if where == "resource" or where.startswith(("request.", "resource.")):
            return dataclasses.replace(issue, expression=f"{self.path}.{where}")
        if where == "resourceType":
            return dataclasses.replace(issue, expression=f"{self.path}.resource.resourceType")
        kind = self.resource_type
        if kind and (where == kind or where.startswith((f"{kind}.", f"{kind}["))):
            return dataclasses.replace(issue, expression=f"{self.path}.resource{where[len(kind) :]}")
        return issue

    def for_transaction(self) -> FhirError:
        """The whole transaction's answer: the entry's status, an issue naming it, then the cause's issues."""
        named = f"{self.path} (fullUrl {self.full_url})" if self.full_url else self.path
        first = self.cause.issues[0] if self.cause.issues else Issue("processing", "failed")
        lead = Issue(
            first.code,
            f"{named} failed with {status_line(self.cause.status)}: {first.diagnostics}. "
            "The transaction was rolled back; nothing was written",
            expression=self.path,
        )
        return FhirError(self.cause.status, [lead, *self.issues()])


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def informational(text: str) -> dict:
    return operation_outcome([Issue("informational", text, severity="information")])


def response_entry(result: EntryResult, base: str, prefer: str, head: bool = False) -> dict:
    """A transaction-response or batch-response entry."""
    response: dict = {"status": status_line(result.status)}
    entry: dict = {}
    version = result.version
    if version is not None:
        reference = f"{version.resource_type}/{version.id}"
        if not version.deleted:
            entry["fullUrl"] = f"{base}/{reference}"
        if result.written:
            response["location"] = f"{base}/{reference}/_history/{version.version}"
        response["etag"] = f'W/"{version.version}"'
        response["lastModified"] = version.last_updated
    if result.outcome is not None:
        response["outcome"] = result.outcome
    elif result.written and prefer == "operationoutcome" and version is not None:
        response["outcome"] = informational(
            f"{version.resource_type}/{version.id} is at version {version.version}"
        )
    body = _body(result, prefer, head)
    if body is not None:
        entry["resource"] = orjson.Fragment(body) if isinstance(body, bytes) else body
    entry["response"] = response
    return entry


def _body(result: EntryResult, prefer: str, head: bool) -> bytes | dict | None:
    if head:
        return None
    if result.body is not None:
        return result.body
    if result.written and prefer == "representation" and result.version is not None:
        return result.version.body
    return None


def failed_entry(failure: EntryFailed) -> dict:
    return {
        "response": {
            "status": status_line(failure.cause.status),
            "outcome": operation_outcome(failure.issues()),
        }
    }
