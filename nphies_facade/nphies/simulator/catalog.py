"""The vendored NPHIES data the simulator answers with: rule texts, members, valid profiles."""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class RuleError:
    """An NPHIES error to report: rule code, its display and where in the request (Bundle.entry[i]...)."""

    code: str
    expression: str | None = None
    display: str | None = None

    @property
    def text(self) -> str:
        return (
            self.display
            or rules()["display"].get(self.code)
            or rules()["payer_errors"].get(self.code, self.code)
        )


@cache
def rules() -> dict:
    return json.loads((DATA / "rules.json").read_text())


def error(code: str, expression: str | None = None) -> RuleError:
    return RuleError(code, expression)


def valid_profiles(resource_type: str) -> frozenset[str]:
    return frozenset(rules()["profiles"].get(resource_type, ()))


def reference_rule(element: str) -> str:
    """The RE rule of a reference element (e.g. Claim.insurance.coverage -> RE-00007), else RE-00169."""
    return rules()["references"].get(element, "RE-00169")


def data_type_rule(element: str) -> str:
    """The DT rule of an element with a wrong JSON type (e.g. MessageHeader.destination -> DT-00851)."""
    return rules()["data_types"].get(element, "GE-00035")


def meta_profile_rule(resource_type: str) -> str:
    return rules()["meta_profile"].get(resource_type, "IC-01428")


def rejection_display(code: str) -> str:
    return rules()["rejection_reasons"].get(code, code)


@dataclass(frozen=True)
class Member:
    identifier: str | None
    status: str  # eligible | not-active | not-found | out-network
    policies: int = 1
    error: str | None = None


class Members:
    """The payer's members, matched by any identifier value of the patient or the coverage member id."""

    def __init__(self, data: dict, unknown_eligible: bool = True):
        self._by_id = {
            m["identifier"]: Member(m["identifier"], m["status"], m.get("policies", 1), m.get("error"))
            for m in data.get("members", [])
        }
        default = data.get("default", {"status": "eligible"})
        self._default = (
            Member(None, default["status"]) if unknown_eligible else Member(None, "not-found", error="1658")
        )
        self.benefits: list[dict] = data.get("benefits", [])

    @classmethod
    def load(cls, path: Path | None = None, unknown_eligible: bool = True) -> "Members":
        return cls(json.loads((path or DATA / "members.json").read_text()), unknown_eligible)

    def find(self, identifiers: list[str]) -> Member:
        for value in identifiers:
            if value in self._by_id:
                return self._by_id[value]
        return self._default
