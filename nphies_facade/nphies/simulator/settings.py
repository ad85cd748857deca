"""Simulator settings: who it answers for, how it adjudicates, and which faults it injects."""

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

FaultKind = Literal["latency", "error", "timeout", "malformed"]


@dataclass(frozen=True)
class FaultRule:
    """A fault for matching requests.

    kind: latency (answer after `delay`), error (HTTP `status`), timeout (hold the connection `delay` seconds,
        then 504), malformed (a truncated, unparsable body with status 200).
    events / sender: only requests with one of these events / from this provider license (None: all).
    every_nth: deterministic, the Nth, 2Nth ... matching request; else `probability` (seeded), else always.
    after_processing: the message is processed first, so the payer acted on it though the answer is lost.
    limit: stop after this many injected faults.
    """

    kind: FaultKind
    events: tuple[str, ...] | None = None
    sender: str | None = None
    every_nth: int | None = None
    probability: float | None = None
    status: int = 503
    delay: float = 0.0
    after_processing: bool = False
    limit: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FaultRule":
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        if values.get("events") is not None:
            values["events"] = tuple(values["events"])
        return cls(**values)


@dataclass(frozen=True)
class AdjudicationRules:
    """How prior authorizations and claims are answered (defaults reproduce the INS-FHIR conformance cases).

    rejected_codes: productOrService code -> rejection reason; such items are rejected (Authorization TC5
        partial; not the unlisted 99999999999999, which Claims TC1 bills again and expects approved).
    deferred_outcomes: "<event>/<claim type>" -> approved | partial | rejected, the final answer to a
        deferred request (Claims TC2 and TC8 rejected, TC3 partial); others are adjudicated item by item.
    request_information: "<event>/<claim type>" for which a deferred request first gets a
        CommunicationRequest, and its final answer waits for the provider's Communication (Authorization
        TC2, Claims TC1).
    queue_related_prior: a request with Claim.related.relationship=prior is pended (Authorization TC6, TC7).
    large_claim_items: a claim with at least this many items is pended (Claims TC9).
    """

    rejected_codes: dict[str, str] = field(default_factory=lambda: {"06285096000798": "CV-4-5"})
    deferred_outcomes: dict[str, str] = field(
        default_factory=lambda: {
            "claim-request/professional": "rejected",
            "claim-request/vision": "rejected",
            "claim-request/institutional": "partial",
        }
    )
    request_information: tuple[str, ...] = ("priorauth-request/professional", "claim-request/pharmacy")
    queue_related_prior: bool = True
    large_claim_items: int = 300
    rejection_reason: str = "MN-1-1"
    partial_reason: str = "CV-1-4"
    copay_percent: float = 0.0
    pre_auth_days: int = 30
    pay_claims: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdjudicationRules":
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        if "request_information" in values:
            values["request_information"] = tuple(values["request_information"])
        return cls(**values)


@dataclass(frozen=True)
class SimulatorSettings:
    """payer_licenses / provider_licenses: the onboarded payers and providers (None: any license).
    deferred_delay: seconds before a deferred answer (or payment) is released to poll.
    unknown_members_eligible: INS-FHIR treats any member id it does not know as eligible.
    members_file: member data (defaults to the vendored conformance members).
    """

    payer_licenses: tuple[str, ...] | None = None
    provider_licenses: tuple[str, ...] | None = None
    rules: AdjudicationRules = field(default_factory=AdjudicationRules)
    faults: tuple[FaultRule, ...] = ()
    deferred_delay: float = 0.0
    unknown_members_eligible: bool = True
    members_file: Path | None = None
    base_url: str = "http://pseudo-payer.com.sa"
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SimulatorSettings":
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        for name in ("payer_licenses", "provider_licenses"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        if "rules" in values:
            values["rules"] = AdjudicationRules.from_dict(values["rules"])
        if "faults" in values:
            values["faults"] = tuple(FaultRule.from_dict(f) for f in values["faults"])
        if values.get("members_file"):
            values["members_file"] = Path(values["members_file"])
        return cls(**values)

    @classmethod
    def from_file(cls, path: Path) -> "SimulatorSettings":
        return cls.from_dict(json.loads(path.read_text()))
