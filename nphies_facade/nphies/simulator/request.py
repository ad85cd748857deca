"""A validated request as the payer reads it: its focus, the entries it references, and whom to answer."""

from dataclasses import dataclass
from typing import Any

from ..fhirjson import code_of, items
from .adjudication import Parties
from .responses import Addressee, Entry, Party, today
from .validation import Verdict


@dataclass(frozen=True)
class Reply:
    """What the simulator answers: HTTP status and body, and the event of the answer."""

    status: int
    body: dict
    event: str | None = None


class Request:
    """A message that passed validation, with lookups of the entries its focus references."""

    def __init__(self, verdict: Verdict, base_url: str):
        self.verdict = verdict
        self.base_url = base_url

    @property
    def focus(self) -> dict:
        return self.verdict.focus

    @property
    def event(self) -> str:
        return self.verdict.event or ""

    @property
    def sender(self) -> str:
        return self.verdict.sender or ""

    @property
    def header_id(self) -> str | None:
        return self.verdict.header.get("id")

    @property
    def focus_at(self) -> str:
        """The expression of the focus entry, e.g. `Bundle.entry[1].resource`."""
        return f"Bundle.entry[{self.verdict.focus_index}].resource"

    @property
    def addressee(self) -> Addressee:
        endpoint = (self.verdict.header.get("source") or {}).get("endpoint") or "http://provider"
        return Addressee(self.sender, endpoint)

    @property
    def payer(self) -> Party:
        """The payer the message is for, answering under its own license."""
        return Party.payer(self.verdict.receiver or "INS-FHIR", self.base_url)

    def entry(self, element: Any) -> Entry | None:
        """The request entry (fullUrl, resource) a Reference of the focus points to."""
        index = self.verdict.index
        reference = element.get("reference") if isinstance(element, dict) else None
        if not isinstance(reference, str) or index is None:
            return None
        position = index.resolve(reference, self.verdict.focus_index)
        return (
            None if position is None else (index.entries[position].get("fullUrl"), index.resource(position))
        )

    def entries(self, *elements: Any) -> list[Entry]:
        return [e for e in (self.entry(element) for element in elements) if e]

    def coverages(self) -> list[Entry]:
        return self.entries(
            *((i or {}).get("coverage") for i in items(self.focus.get("insurance")) if isinstance(i, dict))
        )

    def parties(self) -> Parties:
        """Where the focus's patient, insurer, provider and coverage are, for a ClaimResponse to point to."""
        coverages = self.coverages()
        return Parties(
            patient=_url(self.entry(self.focus.get("patient"))),
            insurer=_url(self.entry(self.focus.get("insurer"))),
            requestor=_url(self.entry(self.focus.get("provider"))),
            coverage=coverages[0][0] if coverages else None,
        )

    def party_entries(self) -> list[Entry]:
        focus = self.focus
        return (
            self.entries(focus.get("patient"), focus.get("provider"), focus.get("insurer")) + self.coverages()
        )

    def task_entries(self) -> list[Entry]:
        return self.entries(self.focus.get("requester"), self.focus.get("owner"))


def echo_task(task: dict, status: str) -> dict:
    """The answer Task of a Task-based request: the request's Task with a new status (outputs replaced)."""
    answer = {k: v for k, v in task.items() if k not in ("id", "meta", "output")}
    answer["status"] = status
    answer["lastModified"] = today()
    return answer


def task_input(task: dict, kind: str) -> list[Any]:
    """The values of the Task inputs of one type (include-message-type, count ...)."""
    found = []
    for item in task.get("input") or []:
        if code_of(item.get("type")) == kind:
            found += [
                v.strip() if isinstance(v, str) else v for k, v in item.items() if k.startswith("value")
            ]
    return found


def _url(entry: Entry | None) -> str | None:
    return entry[0] if entry else None
