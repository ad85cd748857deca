"""Messages the payer starts: a CommunicationRequest, a PaymentReconciliation, an advanced authorization."""

from .. import canonical
from ..events import Event
from ..fhirjson import Identifier, first_identifier, new_guid
from .adjudication import benefit_total
from .request import Request
from .responses import Addressee, Party, coding, message, today
from .responses import money as sar


def information_request(request: Request, about: Identifier) -> tuple[dict, Identifier]:
    """A communication-request asking the provider for supporting information about a claim."""
    payer, focus = request.payer, request.focus
    patient, provider, insurer = (request.entry(focus.get(e)) for e in ("patient", "provider", "insurer"))
    identifier = Identifier(f"{payer.base_url}/communicationrequest", new_guid())
    resource: dict = {
        "resourceType": "CommunicationRequest",
        "identifier": [identifier.to_fhir()],
        "status": "active",
        "category": [coding(canonical.COMMUNICATION_CATEGORY, "instruction")],
        "priority": "routine",
        "about": [{"type": "Claim", "identifier": about.to_fhir()}],
        "reasonCode": [coding(canonical.COMMUNICATION_REASON, "missing-info")],
        "payload": [{"contentString": "Please provide the supporting documents for this request."}],
        "authoredOn": today(),
    }
    if patient:
        resource["subject"] = {"reference": patient[0]}
    if insurer:
        resource["sender"] = {"reference": insurer[0]}
    if provider:
        resource["recipient"] = [{"reference": provider[0]}]
    entry = payer.new_entry(resource, "communication-request")
    entries = [e for e in (patient, provider, insurer) if e]
    return message(Event.COMMUNICATION_REQUEST, payer, request.addressee, entry, entries), identifier


def payment_reconciliation(request: Request, claim: Identifier, response: dict) -> tuple[dict, Identifier]:
    """The payment of an adjudicated claim (its benefit total), as the payer reconciles it."""
    payer, focus = request.payer, request.focus
    provider, insurer = request.entry(focus.get("provider")), request.entry(focus.get("insurer"))
    amount = benefit_total(response)
    identifier = Identifier(f"{payer.base_url}/paymentreconciliation", new_guid())
    detail: dict = {
        "type": coding(canonical.PAYMENT_TYPE, "payment"),
        "request": {"identifier": claim.to_fhir()},
        "date": today(),
        "amount": sar(amount),
    }
    response_id = first_identifier(response)
    if response_id:
        detail["response"] = {"identifier": response_id.to_fhir()}
    resource: dict = {
        "resourceType": "PaymentReconciliation",
        "identifier": [identifier.to_fhir()],
        "status": "active",
        "created": today(),
        "paymentIdentifier": [
            {
                "type": coding(canonical.PAYMENT_METHOD, "eft"),
                "system": f"{payer.base_url}/eft",
                "value": new_guid(),
            }
        ],
        "outcome": "complete",
        "disposition": "Payment of adjudicated claims",
        "paymentDate": today(),
        "paymentAmount": sar(amount),
        "detail": [detail],
    }
    if insurer:
        resource["paymentIssuer"] = {"reference": insurer[0]}
    if provider:
        resource["requestor"] = {"reference": provider[0]}
        detail["submitter"] = detail["payee"] = {"reference": provider[0]}
    entry = payer.new_entry(resource, "payment-reconciliation")
    entries = [e for e in (provider, insurer) if e]
    return message(Event.PAYMENT_RECONCILIATION, payer, request.addressee, entry, entries), identifier


def advanced_authorization(provider: str, payer_license: str, base_url: str) -> tuple[dict, Identifier]:
    """An advanced prior authorization (APA, reason referral) the payer issues to a provider unasked."""
    payer = Party.payer(payer_license, base_url)
    patient = payer.new_entry(
        {"resourceType": "Patient", "active": True, "name": [{"text": "APA patient"}]}, "patient"
    )
    insurer = payer.new_entry(
        {
            "resourceType": "Organization",
            "identifier": [{"system": canonical.PAYER_LICENSE, "value": payer_license}],
            "active": True,
            "type": [coding(canonical.ORGANIZATION_TYPE, "ins")],
        },
        "insurer-organization",
    )
    identifier = Identifier(f"{base_url}/claimresponse", new_guid())
    reason = coding("http://nphies.sa/terminology/CodeSystem/advancedAuth-reason", "referral")
    apa = {
        "resourceType": "ClaimResponse",
        "identifier": [identifier.to_fhir()],
        "extension": [
            {"url": canonical.extension_url("advancedAuth-reason"), "valueCodeableConcept": reason}
        ],
        "status": "active",
        "type": coding(canonical.CLAIM_TYPE, "institutional"),
        "use": "preauthorization",
        "patient": {"reference": patient[0]},
        "created": today(),
        "insurer": {"reference": insurer[0]},
        "request": {
            "type": "Claim",
            "identifier": {
                "system": f"{base_url}/Authorization",
                "value": f"APA_{payer_license}_{provider}_{new_guid()}",
            },
        },
        "outcome": "complete",
        "preAuthRef": new_guid(),
    }
    entry = payer.new_entry(apa, "advanced-authorization")
    bundle = message(
        Event.ADVANCED_AUTHORIZATION, payer, Addressee(provider, "http://provider"), entry, [patient, insurer]
    )
    return bundle, identifier
