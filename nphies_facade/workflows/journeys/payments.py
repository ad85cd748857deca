"""Collecting the payer's payments: a poll-request for payment-reconciliation messages about a claim,
each PaymentReconciliation stored with its details matched to our Claims (by Claim.identifier).

The poll, the exchange record and the stored payments are written together, so a payment NPHIES handed
over is never lost between the answer and the store.
"""

from dataclasses import dataclass

from ...nphies.events import Event
from ...nphies.fhirjson import Identifier, first_identifier
from ...nphies.gateway import Outcome
from ...nphies.messages import build_poll_request
from ...nphies.parsing import PaymentReconciliationResult, PollResponse, focus_of
from ...operations.answers import localize
from ...operations.exchanges import ExchangeRecorder
from ...operations.transactions import in_transaction
from ...resources.store import StoreTransaction
from ..context import StepContext


@dataclass(frozen=True)
class Payment:
    reference: str
    amount: float


class PollFailed(Exception):
    """NPHIES gave no usable poll-response; the step is tried again."""


async def collect(step: StepContext, claim: dict) -> list[Payment]:
    """The payments of `claim` NPHIES had queued (empty when none yet); every payment that came is stored."""
    identifier = first_identifier(claim)
    if identifier is None:
        return []
    operations = step.operations
    message = build_poll_request(
        operations.config.provider,
        include=(Event.PAYMENT_RECONCILIATION.value,),
        focus=identifier,
        count=10,
    )
    exchange = await operations.gateway.send(message)
    parsed = exchange.parsed()
    answered = exchange.outcome is Outcome.ANSWERED and isinstance(parsed, PollResponse)
    payments = [m for m in parsed.messages if isinstance(m, PaymentReconciliationResult)] if answered else []
    recorder = ExchangeRecorder(step.service, step.ctx)
    subject = f"Task/{step.task['id']}"

    async def write(tx: StoreTransaction) -> list[Payment]:
        await recorder.finished(exchange, subject, message.full_urls, tx, patient=claim.get("patient"))
        ours = []
        for payment in payments:
            stored, amount = await _store(step, payment, identifier, f"Claim/{claim['id']}", tx)
            if stored is not None:
                ours.append(Payment(stored, amount))
        return ours

    collected = await in_transaction(step.service, write)
    if not answered:
        raise PollFailed(f"poll-request: {exchange.outcome.value} ({exchange.error or exchange.status_code})")
    return collected


async def _store(
    step: StepContext,
    payment: PaymentReconciliationResult,
    ours: Identifier,
    claim: str,
    tx: StoreTransaction,
) -> tuple[str | None, float]:
    """Stores one PaymentReconciliation, each detail pointing at the Claim it pays when we hold it;
    returns its reference and the amount it pays on `claim` when it pays that claim."""
    focus = focus_of(payment.bundle)
    if focus is None or focus.get("resourceType") != "PaymentReconciliation":
        return None, 0.0
    resource = localize(focus, payment.bundle, {})
    if isinstance(resource.get("paymentIdentifier"), list):  # NPHIES sends an array; R4 allows one
        resource["paymentIdentifier"] = (resource["paymentIdentifier"] or [None])[0]
        if resource["paymentIdentifier"] is None:
            resource.pop("paymentIdentifier")
    amount, pays_ours = 0.0, False
    for detail in resource.get("detail") or []:
        request = Identifier.from_fhir((detail.get("request") or {}).get("identifier"))
        if request is None:
            continue
        if request.value == ours.value:
            detail["request"]["reference"] = claim
            amount += float((detail.get("amount") or {}).get("value") or 0.0)
            pays_ours = True
        else:
            matched = await step.service.find_ids("Claim", [("identifier", _token(request))], tx)
            if matched:
                detail["request"]["reference"] = f"Claim/{matched[0]}"
    created = await step.service.create(step.ctx, resource, tx=tx)
    assert created.version is not None
    return (f"PaymentReconciliation/{created.version.id}" if pays_ours else None), amount


def _token(identifier: Identifier) -> str:
    return f"{identifier.system}|{identifier.value}" if identifier.system else identifier.value
