"""Adjudicating a Claim (prior authorization or claim) into a ClaimResponse, by the simulator's rules."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .. import canonical
from ..fhirjson import code_of, extension_value, first_identifier, money, new_guid
from .catalog import RuleError, rejection_display
from .responses import coded_error, coding, today
from .responses import money as sar
from .settings import AdjudicationRules


@dataclass(frozen=True)
class Decision:
    """approved | partial | rejected, and the rejection reason of each rejected item (by sequence)."""

    outcome: str
    rejected: dict[int, str] = field(default_factory=dict)


def claim_kind(event: str, claim: dict) -> str:
    """`<event>/<claim type>`, the key of the per-kind rules (e.g. claim-request/professional)."""
    return f"{event}/{code_of(claim.get('type'), canonical.CLAIM_TYPE) or code_of(claim.get('type'))}"


def must_pend(claim: dict, rules: AdjudicationRules) -> bool:
    """Deferred priority, a follow-up of a prior request, or a large claim: answered queued, then by poll."""
    if code_of(claim.get("priority")) == "deferred":
        return True
    if rules.queue_related_prior and any(
        code_of((r or {}).get("relationship")) == "prior" for r in claim.get("related") or []
    ):
        return True
    return len(claim.get("item") or []) >= rules.large_claim_items


def decide(claim: dict, rules: AdjudicationRules, kind: str, deferred: bool) -> Decision:
    """Item rules first (rejected codes); a deferred request of a listed kind gets its listed final outcome."""
    sequences = [
        item.get("sequence") for item in claim.get("item") or [] if isinstance(item.get("sequence"), int)
    ]
    forced = rules.deferred_outcomes.get(kind) if deferred else None
    if forced == "rejected" or not sequences:
        return Decision("rejected", dict.fromkeys(sequences, rules.rejection_reason))
    rejected = {
        item["sequence"]: rules.rejected_codes[code]
        for item in claim.get("item") or []
        if (code := code_of(item.get("productOrService"))) in rules.rejected_codes and "sequence" in item
    }
    if forced == "partial" and not rejected and len(sequences) > 1:
        rejected = {sequences[-1]: rules.partial_reason}
    if forced == "approved":
        rejected = {}
    if not rejected:
        return Decision("approved")
    return Decision("rejected" if len(rejected) == len(sequences) else "partial", rejected)


@dataclass(frozen=True)
class Parties:
    """fullUrls, in the response, of what the ClaimResponse points to (the request's own entries)."""

    patient: str | None
    insurer: str | None
    requestor: str | None
    coverage: str | None


def claim_response(
    claim: dict,
    parties: Parties,
    payer_base: str,
    *,
    outcome: str,
    decision: Decision | None = None,
    errors: list[RuleError] | None = None,
    rules: AdjudicationRules | None = None,
) -> dict:
    """A ClaimResponse: outcome queued (pended), complete (with item adjudication) or error."""
    response: dict = {
        "resourceType": "ClaimResponse",
        "identifier": [{"system": f"{payer_base}/claimresponse", "value": new_guid()}],
        "status": "active",
        "type": claim.get("type") or coding(canonical.CLAIM_TYPE, "professional"),
        "use": claim.get("use") or "claim",
        "created": today(),
        "request": {"type": "Claim"},
        "outcome": outcome,
    }
    if claim.get("subType"):
        response["subType"] = claim["subType"]
    for element, url in (
        ("patient", parties.patient),
        ("insurer", parties.insurer),
        ("requestor", parties.requestor),
    ):
        if url:
            response[element] = {"reference": url}
    identifier = first_identifier(claim)
    if identifier:
        response["request"]["identifier"] = identifier.to_fhir()
    if outcome == "queued":
        response["extension"] = [_outcome_extension("pended")]
    if decision is not None and rules is not None:
        _adjudicate(response, claim, decision, rules)
    if errors:
        response["error"] = [coded_error(e) for e in errors]
    if parties.coverage:
        response["insurance"] = [{"sequence": 1, "focal": True, "coverage": {"reference": parties.coverage}}]
    return response


def _adjudicate(response: dict, claim: dict, decision: Decision, rules: AdjudicationRules) -> None:
    response["extension"] = [_outcome_extension(decision.outcome)]
    response["disposition"] = {
        "approved": "All items approved",
        "partial": "Some items were not approved",
        "rejected": "The request was rejected",
    }[decision.outcome]
    items = [
        _item(item, decision, rules)
        for item in claim.get("item") or []
        if isinstance(item.get("sequence"), int)
    ]
    response["item"] = items
    totals: dict[str, float] = {}
    for item in items:
        for adjudication in item["adjudication"]:
            if "amount" in adjudication:
                category = adjudication["category"]["coding"][0]["code"]
                totals[category] = totals.get(category, 0.0) + adjudication["amount"]["value"]
    response["total"] = [
        {"category": coding(canonical.ADJUDICATION, category), "amount": sar(amount)}
        for category, amount in totals.items()
    ]
    if response["use"] == "preauthorization" and decision.outcome != "rejected":
        start = datetime.now(UTC).date()
        response["preAuthRef"] = new_guid()
        response["preAuthPeriod"] = {
            "start": start.isoformat(),
            "end": (start + timedelta(days=rules.pre_auth_days)).isoformat(),
        }


def _item(item: dict, decision: Decision, rules: AdjudicationRules) -> dict:
    sequence = item["sequence"]
    # A Quantity's value reads as a Money's; one that is not a number counts as 1, as a missing one does.
    quantity = item["quantity"]["value"] if money(item.get("quantity")) is not None else 1
    net = money(item.get("net"))
    if net is None:
        net = (money(item.get("unitPrice")) or 0.0) * quantity
    reason = decision.rejected.get(sequence)
    copay = 0.0 if reason else round(net * rules.copay_percent / 100, 2)
    benefit: dict = {
        "category": coding(canonical.ADJUDICATION, "benefit"),
        "amount": sar(0.0 if reason else net - copay),
    }
    if reason:
        benefit["reason"] = coding(canonical.ADJUDICATION_REASON, reason, rejection_display(reason))
    return {
        "extension": [_outcome_extension("rejected" if reason else "approved")],
        "itemSequence": sequence,
        "adjudication": [
            {"category": coding(canonical.ADJUDICATION, "eligible"), "amount": sar(net)},
            {"category": coding(canonical.ADJUDICATION, "copay"), "amount": sar(copay)},
            benefit,
            {
                "category": coding(canonical.KSA_ADJUDICATION, "approved-quantity"),
                "value": 0 if reason else quantity,
            },
        ],
    }


def benefit_total(response: dict) -> float:
    """What the payer pays on a ClaimResponse (its benefit total)."""
    for total in response.get("total") or []:
        if code_of(total.get("category")) == "benefit":
            return money(total.get("amount")) or 0.0
    return 0.0


def adjudication_outcome(response: dict) -> str | None:
    return code_of(extension_value(response, canonical.ADJUDICATION_OUTCOME_EXT))


def _outcome_extension(outcome: str) -> dict:
    return {
        "url": canonical.ADJUDICATION_OUTCOME_EXT,
        "valueCodeableConcept": coding(canonical.ADJUDICATION_OUTCOME, outcome),
    }
