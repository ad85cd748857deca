"""The NPHIES conformance cases against the pseudo-payer INS-FHIR, as a table the tests replay.

Derived by hand from ../shared/nphies/conformance-tests/*.txt (the official PDFs as text): for each case the
request the provider sends, the real-time answer INS-FHIR gives, and the steps that follow (polls,
communications, cancel, status check, payment notice) with their expected answers.

Answers: eligible | eligible x2 (two active policies) | not-active | error <code> for eligibility;
approved | partial | rejected | queued | error <code> for prior authorizations and claims.
Steps: "communication" (unsolicited, acknowledged), "poll communication-request", "reply" (solicited
communication to the last CommunicationRequest), "poll <approved|partial|rejected>" (the final answer comes by
poll), "poll payment-reconciliation", "payment-notice", "cancel", "status <value>", "poll advanced-authorization".
"""

from dataclasses import dataclass, field

ELIGIBILITY_TXT = "Eligibility Test cases - V4.0 3.txt"
AUTHORIZATION_TXT = "Authorization test cases - V6.0 3.txt"
CLAIMS_TXT = "Claims test cases - V4.0 3.txt"
PAYMENT_TXT = "Payment Transaction test case - V3.0 3.txt"

PHARMACY_DRUGS = ("06285097000056", "06285096000798", "99999999999999")


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    title: str
    sample: str
    answer: str
    steps: tuple[str, ...] = ()
    member: str | None = None
    purposes: tuple[str, ...] | None = None
    priority: str | None = None
    item_codes: tuple[str, ...] | None = None
    item_count: int | None = None
    related_prior: bool = False
    newborn: bool = False
    transfer: bool = False
    supported: bool = True
    note: str = field(default="")


CASES = [
    # --- eligibility ---------------------------------------------------------------------------------
    Case(
        "ELIG-1",
        f"{ELIGIBILITY_TXT} #1",
        "validation, any member ID",
        "official_eligibility-request_benefits-validation.json",
        "eligible",
        purposes=("validation",),
    ),
    Case(
        "ELIG-2",
        f"{ELIGIBILITY_TXT} #2",
        "discovery + benefits, Iqama 2555555559, no Coverage, transfer",
        "official_eligibility-request_discovery.json",
        "eligible x2",
        member="2555555559",
        purposes=("discovery", "benefits"),
        transfer=True,
    ),
    Case(
        "ELIG-3",
        f"{ELIGIBILITY_TXT} #3",
        "validation + benefits for a newborn (MRN), any member ID",
        "official_eligibility-request_benefits-validation.json",
        "eligible",
        purposes=("validation", "benefits"),
        newborn=True,
    ),
    Case(
        "ELIG-4",
        f"{ELIGIBILITY_TXT} #4",
        "validation + benefits, Iqama 2555555550",
        "official_eligibility-request_benefits-validation.json",
        "not-active",
        member="2555555550",
        purposes=("validation", "benefits"),
    ),
    Case(
        "ELIG-5",
        f"{ELIGIBILITY_TXT} #5",
        "any purpose, Iqama 2333333333",
        "official_eligibility-request_discovery.json",
        "error 1658",
        member="2333333333",
    ),
    # --- prior authorization -------------------------------------------------------------------------
    Case(
        "AUTH-1",
        f"{AUTHORIZATION_TXT} #1",
        "institutional, deferred, 4 items, unsolicited communication",
        "official_priorauth-request_institutional.json",
        "queued",
        ("communication", "poll approved"),
        priority="deferred",
        item_count=4,
    ),
    Case(
        "AUTH-2",
        f"{AUTHORIZATION_TXT} #2",
        "professional, deferred, solicited communication",
        "official_priorauth-request_professional.json",
        "queued",
        ("poll communication-request", "reply", "poll approved"),
        priority="deferred",
    ),
    Case(
        "AUTH-3",
        f"{AUTHORIZATION_TXT} #3",
        "dental, normal, then cancelled",
        "official_priorauth-request_oral_first.json",
        "approved",
        ("cancel",),
        priority="normal",
    ),
    Case(
        "AUTH-4",
        f"{AUTHORIZATION_TXT} #4",
        "optical with VisionPrescription, normal",
        "official_priorauth-request_vision.json",
        "approved",
        priority="normal",
    ),
    Case(
        "AUTH-5",
        f"{AUTHORIZATION_TXT} #5",
        "pharmacy, normal, partial rejection",
        "official_priorauth-request_pharmacy.json",
        "partial",
        priority="normal",
        item_codes=PHARMACY_DRUGS,
    ),
    Case(
        "AUTH-6",
        f"{AUTHORIZATION_TXT} #6",
        "resubmission (related prior) of a rejected pharmacy authorization",
        "official_priorauth-request_pharmacy.json",
        "queued",
        ("poll approved",),
        related_prior=True,
        item_codes=("06285097000056",),
    ),
    Case(
        "AUTH-7",
        f"{AUTHORIZATION_TXT} #7",
        "institutional follow-up (related prior, 5 items), normal",
        "official_priorauth-request_institutional.json",
        "queued",
        ("poll approved",),
        priority="normal",
        related_prior=True,
        item_count=5,
    ),
    Case(
        "AUTH-8",
        f"{AUTHORIZATION_TXT} #8",
        "newborn, deferred",
        "official_priorauth-request_institutional.json",
        "queued",
        ("poll approved",),
        priority="deferred",
        newborn=True,
    ),
    Case(
        "AUTH-9",
        f"{AUTHORIZATION_TXT} #9",
        "referral (transfer), deferred",
        "official_priorauth-request_institutional.json",
        "queued",
        ("poll approved",),
        priority="deferred",
        transfer=True,
    ),
    Case(
        "AUTH-10",
        f"{AUTHORIZATION_TXT} #10",
        "advanced prior authorization (APA) sent by the payer, polled",
        "official_priorauth-request_institutional.json",
        "apa",
        ("poll advanced-authorization",),
        note="the payer's CommunicationRequest and cancellation of the APA are not simulated",
    ),
    # --- claims --------------------------------------------------------------------------------------
    Case(
        "CLAIM-1",
        f"{CLAIMS_TXT} #1",
        "pharmacy, deferred, solicited communication, final approved",
        "official_claim-request_pharmacy.json",
        "queued",
        ("poll communication-request", "reply", "poll approved"),
        priority="deferred",
        item_codes=("06285097000056", "99999999999999"),
    ),
    Case(
        "CLAIM-2",
        f"{CLAIMS_TXT} #2",
        "professional, deferred, unsolicited communication, final rejected",
        "oba_claim-request_pair-D.json",
        "queued",
        ("communication", "poll rejected"),
        priority="deferred",
    ),
    Case(
        "CLAIM-3",
        f"{CLAIMS_TXT} #3",
        "institutional, deferred, final partially approved, status check complete",
        "official_claim-request_institutional.json",
        "queued",
        ("poll partial", "status complete"),
        priority="deferred",
        item_count=3,
    ),
    Case(
        "CLAIM-4",
        f"{CLAIMS_TXT} #4",
        "dental, normal, then cancelled",
        "official_claim-request_oral.json",
        "approved",
        ("cancel",),
        priority="normal",
    ),
    Case(
        "CLAIM-5",
        f"{CLAIMS_TXT} #5",
        "claim without references, Iqama 2333333333",
        "official_claim-request_oral.json",
        "error 1658",
        member="2333333333",
        priority="normal",
    ),
    Case(
        "CLAIM-6",
        f"{CLAIMS_TXT} #6",
        "newborn, deferred, final approved",
        "official_claim-request_oral.json",
        "queued",
        ("poll approved",),
        priority="deferred",
        newborn=True,
    ),
    Case(
        "CLAIM-7",
        f"{CLAIMS_TXT} #7",
        "batch of claims (optional)",
        "official_batch-request.json",
        "queued",
        supported=False,
        note="batch-request is not simulated",
    ),
    Case(
        "CLAIM-8",
        f"{CLAIMS_TXT} #8",
        "optical, deferred, final rejected",
        "official_claim-request_vision.json",
        "queued",
        ("poll rejected",),
        priority="deferred",
    ),
    Case(
        "CLAIM-9",
        f"{CLAIMS_TXT} #9",
        "institutional with 300 items, normal, queued then completed",
        "official_claim-request_institutional.json",
        "queued",
        ("poll approved",),
        priority="normal",
        item_count=300,
    ),
    # --- payment -------------------------------------------------------------------------------------
    Case(
        "PAY-1",
        f"{PAYMENT_TXT} #1",
        "claim approved, payment reconciliation polled, payment notice sent",
        "official_claim-request_oral.json",
        "approved",
        ("poll payment-reconciliation", "payment-notice"),
        priority="normal",
    ),
]
