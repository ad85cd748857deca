"""The simulated NPHIES hub and test payer: answers each message and keeps claims and queues in memory."""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import canonical
from ..events import RESPONSE_TO, Event
from ..fhirjson import Identifier, code_of, first_identifier, new_guid
from .adjudication import (
    Decision,
    Parties,
    adjudication_outcome,
    benefit_total,
    claim_kind,
    claim_response,
    decide,
)
from .adjudication import must_pend
from .catalog import Member, Members, RuleError, error
from .eligibility import eligibility_response
from .queue import MessageQueue, Queued
from .responses import (
    Addressee,
    Entry,
    Party,
    coded_error,
    coding,
    error_output,
    message,
    operation_outcome,
    today,
)
from .responses import money as sar
from .settings import SimulatorSettings
from .validation import Verdict, validate_message


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict
    event: str | None = None


@dataclass
class ClaimRecord:
    """A prior authorization, claim or advanced authorization the payer has accepted."""

    identifier: Identifier
    event: str
    kind: str
    provider: str
    payer: str
    verdict: Verdict | None
    status: str = "queued"  # queued | awaiting-information | complete | cancelled
    outcome: str | None = None
    response_identifier: Identifier | None = None
    information_request: Identifier | None = None
    released_at: float = 0.0
    deferred: bool = False  # Claim.priority=deferred: the per-kind deferred outcome applies


class Payer:
    """Validates and answers messages like NPHIES with the pseudo-payer INS-FHIR behind it.

    All state (claims, queues, payments, seen bundles) lives in memory and is lost on restart.
    """

    def __init__(self, settings: SimulatorSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.members = Members.load(settings.members_file, settings.unknown_members_eligible)
        self.clock = clock
        self.queue = MessageQueue(clock)
        self.claims: dict[str, ClaimRecord] = {}
        self.payments: dict[str, str] = {}
        self.handled: Counter[str] = Counter()
        self._seen_bundles: dict[str, tuple[str, Reply]] = {}
        self._seen_headers: dict[str, str] = {}

    def reset(self) -> None:
        self.queue.clear()
        self.claims.clear()
        self.payments.clear()
        self.handled.clear()
        self._seen_bundles.clear()
        self._seen_headers.clear()

    def process(self, body: Any, digest: str) -> Reply:
        """The answer to one $process-message body (`digest` identifies its exact bytes, for resends)."""
        verdict = validate_message(body, self.settings.payer_licenses, self.settings.provider_licenses)
        if verdict.fatal:
            return Reply(400, operation_outcome(verdict.fatal, "structure"))
        replay = self._replay(verdict, digest)
        if replay is not None:
            return replay
        self.handled[verdict.event or "?"] += 1
        if verdict.errors:
            reply = self._reject(verdict, verdict.errors)
        else:
            reply = self._handlers()[verdict.event](verdict)
        self._remember(verdict, digest, reply)
        return reply

    # --- resends -------------------------------------------------------------------------------------

    def _replay(self, verdict: Verdict, digest: str) -> Reply | None:
        """The same bundle again gets the same answer; a reused id with other content is a duplicate."""
        bundle_id, header_id = verdict.bundle.get("id"), verdict.header.get("id")
        seen = self._seen_bundles.get(bundle_id) if isinstance(bundle_id, str) else None
        if seen is not None:
            return seen[1] if seen[0] == digest else self._reject(verdict, [error("BV-00533", "Bundle.id")])
        if isinstance(header_id, str) and header_id in self._seen_headers:
            return self._reject(verdict, [error("BV-00532", "Bundle.entry[0].resource.id")])
        return None

    def _remember(self, verdict: Verdict, digest: str, reply: Reply) -> None:
        bundle_id, header_id = verdict.bundle.get("id"), verdict.header.get("id")
        if isinstance(bundle_id, str):
            self._seen_bundles[bundle_id] = (digest, reply)
        if isinstance(header_id, str) and isinstance(bundle_id, str):
            self._seen_headers[header_id] = bundle_id

    def _handlers(self) -> dict[str, Callable[[Verdict], Reply]]:
        return {
            Event.ELIGIBILITY_REQUEST: self._eligibility,
            Event.PRIORAUTH_REQUEST: self._claim,
            Event.CLAIM_REQUEST: self._claim,
            Event.COMMUNICATION: self._communication,
            Event.PAYMENT_NOTICE: self._payment_notice,
            Event.CANCEL_REQUEST: self._cancel,
            Event.STATUS_CHECK: self._status,
            Event.POLL_REQUEST: self._poll,
            Event.BATCH_REQUEST: self._unsupported,
            Event.PRESCRIBER_REQUEST: self._unsupported,
        }

    # --- eligibility -------------------------------------------------------------------------------

    def _eligibility(self, v: Verdict) -> Reply:
        request = v.focus
        patient = self._entry(v, request.get("patient"))
        coverages = [self._entry(v, i.get("coverage")) for i in request.get("insurance") or []]
        coverages = [c for c in coverages if c]
        insurer = self._entry(v, request.get("insurer"))
        member = self._member(patient, [c[1] for c in coverages])
        payer = self._payer_party(v)
        response, added = eligibility_response(
            request,
            member,
            payer,
            patient[0] if patient else None,
            insurer[0] if insurer else None,
            [c[0] for c in coverages],
            self.members.benefits,
        )
        focus = payer.new_entry(response, "eligibility-response")
        entries = (
            [e for e in (patient, insurer, self._entry(v, request.get("provider"))) if e] + coverages + added
        )
        return self._answer(v, payer, focus, entries)

    # --- prior authorization and claims ------------------------------------------------------------

    def _claim(self, v: Verdict) -> Reply:
        claim, rules = v.focus, self.settings.rules
        identifier = first_identifier(claim)
        if identifier is None:
            return self._reject(v, [error("IC-01428", f"Bundle.entry[{v.focus_index}].resource.identifier")])
        if self._find(identifier) is not None:
            return self._reject(v, [error("BV-00163", f"Bundle.entry[{v.focus_index}].resource.identifier")])
        parties = self._parties(v)
        payer = self._payer_party(v)
        member = self._member(self._entry(v, claim.get("patient")), [self._coverage_of(v)])
        if member.status == "not-found":
            errors = [RuleError(member.error or "1658")]
            response = claim_response(claim, parties, payer.base_url, outcome="error", errors=errors)
            return self._answer(
                v, payer, payer.new_entry(response, _response_profile(claim)), self._party_entries(v)
            )
        record = ClaimRecord(
            identifier, v.event or "", claim_kind(v.event or "", claim), v.sender or "", payer.value, v
        )
        record.deferred = code_of(claim.get("priority")) == "deferred"
        self.claims[str(identifier)] = record
        if must_pend(claim, rules):
            response = claim_response(claim, parties, payer.base_url, outcome="queued")
            self._pend(record)
        else:
            decision = decide(claim, rules, record.kind, deferred=False)
            response = self._final_response(record, decision)
            self._complete(record, response, self.clock())
        record.response_identifier = first_identifier(response)
        focus = payer.new_entry(response, _response_profile(claim))
        return self._answer(v, payer, focus, self._party_entries(v))

    def _pend(self, record: ClaimRecord) -> None:
        release = self.clock() + self.settings.deferred_delay
        if record.kind in self.settings.rules.request_information:
            record.status = "awaiting-information"
            self._queue_information_request(record, release)
        else:
            self._release_final(record, release)

    def _release_final(self, record: ClaimRecord, release_at: float) -> None:
        """Adjudicates a pended request now and queues the answer to be polled from `release_at`."""
        assert record.verdict is not None
        decision = decide(record.verdict.focus, self.settings.rules, record.kind, deferred=record.deferred)
        response = self._final_response(record, decision)
        payer = self._payer_party(record.verdict)
        bundle = message(
            RESPONSE_TO[record.event],
            payer,
            self._addressee(record.verdict),
            payer.new_entry(response, _response_profile(record.verdict.focus)),
            self._party_entries(record.verdict),
            response_to=record.verdict.header.get("id"),
        )
        self.queue.put(
            Queued(record.provider, RESPONSE_TO[record.event], bundle, release_at, record.identifier)
        )
        self._complete(record, response, release_at)

    def _final_response(self, record: ClaimRecord, decision: Decision) -> dict:
        assert record.verdict is not None
        parties = self._parties(record.verdict)
        claim = record.verdict.focus
        return claim_response(
            claim,
            parties,
            self.settings.base_url,
            outcome="complete",
            decision=decision,
            rules=self.settings.rules,
        )

    def _complete(self, record: ClaimRecord, response: dict, released_at: float) -> None:
        record.status = "complete"
        record.outcome = adjudication_outcome(response)
        record.released_at = released_at
        if record.event == Event.CLAIM_REQUEST and record.outcome in ("approved", "partial"):
            if self.settings.rules.pay_claims:
                self._queue_payment(record, response, released_at)

    def _queue_information_request(self, record: ClaimRecord, release_at: float) -> None:
        assert record.verdict is not None
        v, payer = record.verdict, self._payer_party(record.verdict)
        patient = self._entry(v, v.focus.get("patient"))
        provider = self._entry(v, v.focus.get("provider"))
        insurer = self._entry(v, v.focus.get("insurer"))
        request_id = Identifier(f"{payer.base_url}/communicationrequest", new_guid())
        resource = {
            "resourceType": "CommunicationRequest",
            "identifier": [request_id.to_fhir()],
            "status": "active",
            "category": [coding(canonical.COMMUNICATION_CATEGORY, "instruction")],
            "priority": "routine",
            "about": [{"type": "Claim", "identifier": record.identifier.to_fhir()}],
            "reasonCode": [coding(canonical.COMMUNICATION_REASON, "missing-info")],
            "payload": [{"contentString": "Please provide the supporting documents for this request."}],
            "authoredOn": today(),
        }
        for element, entry in (("subject", patient), ("sender", insurer)):
            if entry:
                resource[element] = {"reference": entry[0]}
        if provider:
            resource["recipient"] = [{"reference": provider[0]}]
        focus = payer.new_entry(resource, "communication-request")
        entries = [e for e in (patient, provider, insurer) if e]
        bundle = message(Event.COMMUNICATION_REQUEST, payer, self._addressee(v), focus, entries)
        self.queue.put(
            Queued(record.provider, Event.COMMUNICATION_REQUEST, bundle, release_at, record.identifier)
        )
        record.information_request = request_id

    def _queue_payment(self, record: ClaimRecord, response: dict, release_at: float) -> None:
        assert record.verdict is not None
        v, payer = record.verdict, self._payer_party(record.verdict)
        provider = self._entry(v, v.focus.get("provider"))
        insurer = self._entry(v, v.focus.get("insurer"))
        amount = benefit_total(response)
        payment_id = Identifier(f"{payer.base_url}/paymentreconciliation", new_guid())
        detail: dict = {
            "type": coding(canonical.PAYMENT_TYPE, "payment"),
            "request": {"identifier": record.identifier.to_fhir()},
            "date": today(),
            "amount": sar(amount),
        }
        response_id = first_identifier(response)
        if response_id:
            detail["response"] = {"identifier": response_id.to_fhir()}
        resource: dict = {
            "resourceType": "PaymentReconciliation",
            "identifier": [payment_id.to_fhir()],
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
        focus = payer.new_entry(resource, "payment-reconciliation")
        entries = [e for e in (provider, insurer) if e]
        bundle = message(Event.PAYMENT_RECONCILIATION, payer, self._addressee(v), focus, entries)
        self.queue.put(
            Queued(record.provider, Event.PAYMENT_RECONCILIATION, bundle, release_at, record.identifier)
        )
        self.payments[str(payment_id)] = record.provider

    # --- communication and payment notice ----------------------------------------------------------

    def _communication(self, v: Verdict) -> Reply:
        communication = v.focus
        about = [Identifier.from_fhir((a or {}).get("identifier")) for a in communication.get("about") or []]
        based_on = [
            Identifier.from_fhir((b or {}).get("identifier")) for b in communication.get("basedOn") or []
        ]
        record = next((r for i in about + based_on if i and (r := self._find(i))), None)
        if record is None or record.status == "cancelled":
            return self._reject(
                v, [error("BV-00148", f"Bundle.entry[{v.focus_index}].resource.about[0].identifier")]
            )
        if record.status == "awaiting-information":
            record.status = "queued"
            self._release_final(record, self.clock() + self.settings.deferred_delay)
        return self._acknowledge(v)

    def _payment_notice(self, v: Verdict) -> Reply:
        payment = Identifier.from_fhir((v.focus.get("payment") or {}).get("identifier"))
        if payment is None or self.payments.get(str(payment)) != v.sender:
            return self._reject(v, [error("BV-00193", f"Bundle.entry[{v.focus_index}].resource.payment")])
        return self._acknowledge(v)

    def _acknowledge(self, v: Verdict) -> Reply:
        nphies = Party.nphies()
        body = message(
            Event.ACKNOWLEDGEMENT,
            nphies,
            self._addressee(v),
            None,
            [],
            response_to=v.header.get("id"),
            queued_messages=self.queue.pending(v.sender or "") > 0,
        )
        return Reply(200, body, Event.ACKNOWLEDGEMENT)

    # --- Task-based: cancel, status, poll ----------------------------------------------------------

    def _cancel(self, v: Verdict) -> Reply:
        task = v.focus
        target = Identifier.from_fhir((task.get("focus") or {}).get("identifier"))
        record = self._find(target) if target else None
        where = f"Bundle.entry[{v.focus_index}].resource.focus.identifier"
        if record is None or record.provider != v.sender:
            return self._reject(v, [error("BV-00222", where)])
        if record.status == "cancelled":
            return self._reject(v, [error("BV-00445", where)])
        record.status = "cancelled"
        self.queue.drop_about(record.identifier)
        return self._task_answer(v, "completed", [])

    def _status(self, v: Verdict) -> Reply:
        target = Identifier.from_fhir((v.focus.get("focus") or {}).get("identifier"))
        record = self._find(target) if target else None
        if record is None or record.provider != v.sender:
            where = f"Bundle.entry[{v.focus_index}].resource.focus.identifier"
            return self._reject(v, [error("BV-00459", where)])
        output = {
            "type": coding(canonical.TASK_OUTPUT_TYPE, "status"),
            "valueCode": self._claim_status(record),
        }
        return self._task_answer(v, "completed", [output])

    def _claim_status(self, record: ClaimRecord) -> str:
        if record.status == "cancelled":
            return "cancelled"
        if record.status == "complete" and record.released_at <= self.clock():
            return "complete"
        return "queued"

    def _poll(self, v: Verdict) -> Reply:
        task = v.focus
        inputs = task.get("input") or []
        include = [i.get("valueCode", "").strip() for i in inputs if _input_type(i) == "include-message-type"]
        exclude = [i.get("valueCode", "").strip() for i in inputs if _input_type(i) == "exclude-message-type"]
        count = next((i.get("valuePositiveInt") for i in inputs if _input_type(i) == "count"), 1)
        about = Identifier.from_fhir((task.get("focus") or {}).get("identifier"))
        taken = self.queue.take(v.sender or "", include, exclude, about, max(1, min(int(count), 100)))
        nphies = Party.nphies()
        nested = [(f"{nphies.base_url}/Bundle/{item.bundle['id']}", item.bundle) for item in taken]
        answer = _echo_task(task, "completed")
        answer["output"] = [
            {
                "type": coding(canonical.TASK_OUTPUT_TYPE_VS, "response"),
                "valueReference": {"reference": url},
            }
            for url, _ in nested
        ]
        focus = nphies.new_entry(answer, "task")
        requester = self._entry(v, task.get("requester"))
        body = message(
            Event.POLL_RESPONSE,
            nphies,
            self._addressee(v),
            None,
            [focus, *nested, *([requester] if requester else [])],
            response_to=v.header.get("id"),
            queued_messages=self.queue.pending(v.sender or "") > 0,
        )
        return Reply(200, body, Event.POLL_RESPONSE)

    def _task_answer(self, v: Verdict, status: str, outputs: list[dict]) -> Reply:
        payer = self._payer_party(v)
        answer = _echo_task(v.focus, status)
        if outputs:
            answer["output"] = outputs
        entries = [
            e for e in (self._entry(v, v.focus.get("requester")), self._entry(v, v.focus.get("owner"))) if e
        ]
        return self._answer(v, payer, payer.new_entry(answer, "task"), entries)

    def _unsupported(self, v: Verdict) -> Reply:
        return Reply(400, operation_outcome([error("BV-00545", "Bundle.entry[0].resource.eventCoding")]))

    # --- advanced authorization (payer initiated) --------------------------------------------------

    def add_advanced_authorization(self, provider: str, payer_license: str = "INS-FHIR") -> Identifier:
        """Queues an advanced prior authorization (APA) for a provider, as the payer of Authorization TC10."""
        payer = Party.payer(payer_license, self.settings.base_url)
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
        request_id = Identifier(
            f"{payer.base_url}/Authorization", f"APA_{payer_license}_{provider}_{new_guid()}"
        )
        response_id = Identifier(f"{payer.base_url}/claimresponse", new_guid())
        apa = {
            "resourceType": "ClaimResponse",
            "identifier": [response_id.to_fhir()],
            "extension": [
                {
                    "url": canonical.extension_url("advancedAuth-reason"),
                    "valueCodeableConcept": coding(
                        "http://nphies.sa/terminology/CodeSystem/advancedAuth-reason", "referral"
                    ),
                }
            ],
            "status": "active",
            "type": coding(canonical.CLAIM_TYPE, "institutional"),
            "use": "preauthorization",
            "patient": {"reference": patient[0]},
            "created": today(),
            "insurer": {"reference": insurer[0]},
            "request": {"type": "Claim", "identifier": request_id.to_fhir()},
            "outcome": "complete",
            "preAuthRef": new_guid(),
        }
        focus = payer.new_entry(apa, "advanced-authorization")
        bundle = message(
            Event.ADVANCED_AUTHORIZATION,
            payer,
            Addressee(provider, "http://provider"),
            focus,
            [patient, insurer],
        )
        self.queue.put(Queued(provider, Event.ADVANCED_AUTHORIZATION, bundle, self.clock(), response_id))
        record = ClaimRecord(
            response_id, Event.ADVANCED_AUTHORIZATION, "advanced-authorization", provider, payer_license, None
        )
        record.status, record.outcome = "complete", "approved"
        self.claims[str(response_id)] = record
        return response_id

    # --- errors ------------------------------------------------------------------------------------

    def _reject(self, v: Verdict, errors: list[RuleError]) -> Reply:
        """The NPHIES-generated business answer carrying errors, shaped per event (see the pair D/E/G samples)."""
        nphies = Party.nphies()
        event = v.event or ""
        if event == Event.ELIGIBILITY_REQUEST:
            request = v.focus
            patient, insurer = self._entry(v, request.get("patient")), self._entry(v, request.get("insurer"))
            response, _ = eligibility_response(
                request,
                Member(None, "not-found"),
                nphies,
                patient[0] if patient else None,
                insurer[0] if insurer else None,
                [],
                [],
            )
            response["error"] = [coded_error(e) for e in errors]
            response.pop("disposition", None)
            focus = nphies.new_entry(response, "eligibility-response")
            return self._answer(v, nphies, focus, [e for e in (patient, insurer) if e])
        if event in (Event.PRIORAUTH_REQUEST, Event.CLAIM_REQUEST) and v.focus.get("resourceType") == "Claim":
            response = claim_response(
                v.focus, self._parties(v), nphies.base_url, outcome="error", errors=errors
            )
            focus = nphies.new_entry(response, "claim-response")
            return self._answer(v, nphies, focus, self._party_entries(v))
        if event in (Event.CANCEL_REQUEST, Event.STATUS_CHECK, Event.POLL_REQUEST) and v.focus:
            answer = _echo_task(v.focus, "failed")
            answer["id"] = v.focus.get("id")
            answer["meta"] = {**(v.focus.get("meta") or {}), "tag": [dict(canonical.NPHIES_GENERATED_TAG)]}
            answer["output"] = [error_output(e) for e in errors]
            focus = (v.index.entries[v.focus_index].get("fullUrl"), answer)
            entries = [
                e
                for e in (self._entry(v, v.focus.get("requester")), self._entry(v, v.focus.get("owner")))
                if e
            ]
            return self._answer(v, nphies, focus, entries, response_code="fatal-error")
        outcome_entry = nphies.new_entry(operation_outcome(errors), None)
        body = message(
            Event.ACKNOWLEDGEMENT,
            nphies,
            self._addressee(v),
            None,
            [outcome_entry],
            response_to=v.header.get("id"),
            response_code="fatal-error",
            details=outcome_entry[0],
        )
        return Reply(200, body, Event.ACKNOWLEDGEMENT)

    # --- helpers -----------------------------------------------------------------------------------

    def _answer(
        self, v: Verdict, sender: Party, focus: Entry, entries: list[Entry], response_code: str = "ok"
    ) -> Reply:
        event = RESPONSE_TO.get(v.event or "", Event.ACKNOWLEDGEMENT)
        body = message(
            event,
            sender,
            self._addressee(v),
            focus,
            entries,
            response_to=v.header.get("id"),
            response_code=response_code,
            queued_messages=self.queue.pending(v.sender or "") > 0,
        )
        return Reply(200, body, event)

    def _find(self, identifier: Identifier) -> ClaimRecord | None:
        """A claim by its identifier, its response identifier, or its information request identifier."""
        exact = self.claims.get(str(identifier))
        if exact is not None:
            return exact
        for record in self.claims.values():
            for known in (record.identifier, record.response_identifier, record.information_request):
                if known and known.value == identifier.value and identifier.system in (None, known.system):
                    return record
        return None

    def _member(self, patient: Entry | None, coverages: list[dict | None]) -> Member:
        values = [
            i.get("value")
            for i in (patient[1] if patient else {}).get("identifier") or []
            if isinstance(i, dict)
        ]
        for coverage in coverages:
            values += [
                i.get("value") for i in (coverage or {}).get("identifier") or [] if isinstance(i, dict)
            ]
        return self.members.find([str(v) for v in values if v])

    def _coverage_of(self, v: Verdict) -> dict | None:
        for insurance in v.focus.get("insurance") or []:
            entry = self._entry(v, insurance.get("coverage"))
            if entry:
                return entry[1]
        return None

    def _parties(self, v: Verdict) -> Parties:
        focus = v.focus
        coverage = next(
            (e for i in focus.get("insurance") or [] if (e := self._entry(v, i.get("coverage")))),
            None,
        )
        return Parties(
            patient=_url(self._entry(v, focus.get("patient"))),
            insurer=_url(self._entry(v, focus.get("insurer"))),
            requestor=_url(self._entry(v, focus.get("provider"))),
            coverage=_url(coverage),
        )

    def _party_entries(self, v: Verdict) -> list[Entry]:
        focus = v.focus
        wanted = [focus.get("patient"), focus.get("provider"), focus.get("insurer")]
        wanted += [i.get("coverage") for i in focus.get("insurance") or []]
        return [e for e in (self._entry(v, w) for w in wanted) if e]

    def _entry(self, v: Verdict, element: Any) -> Entry | None:
        """The request entry (fullUrl, resource) a Reference of the focus points to."""
        reference = element.get("reference") if isinstance(element, dict) else None
        if not isinstance(reference, str) or v.index is None:
            return None
        position = v.index.resolve(reference, v.focus_index)
        if position is None:
            return None
        return v.index.entries[position].get("fullUrl"), v.index.resource(position)

    def _payer_party(self, v: Verdict) -> Party:
        return Party.payer(v.receiver or "INS-FHIR", self.settings.base_url)

    @staticmethod
    def _addressee(v: Verdict) -> Addressee:
        return Addressee(v.sender or "", (v.header.get("source") or {}).get("endpoint") or "http://provider")


def _response_profile(claim: dict) -> str:
    return "prior-auth-response" if claim.get("use") == "preauthorization" else "claim-response"


def _echo_task(task: dict, status: str) -> dict:
    answer = {k: v for k, v in task.items() if k not in ("id", "meta", "output", "input")}
    answer["status"] = status
    answer["lastModified"] = today()
    if task.get("input"):
        answer["input"] = task["input"]
    return answer


def _input_type(task_input: dict) -> str | None:
    return code_of(task_input.get("type"))


def _url(entry: Entry | None) -> str | None:
    return entry[0] if entry else None
