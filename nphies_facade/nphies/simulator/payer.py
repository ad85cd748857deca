"""The simulated NPHIES hub and test payer: answers each message and keeps claims and queues in memory."""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import canonical
from ..events import RESPONSE_TO, Event
from ..fhirjson import Identifier, code_of, first_identifier
from .adjudication import adjudication_outcome, claim_kind, claim_response, decide, must_pend
from .catalog import Member, Members, RuleError, error
from .eligibility import eligibility_response
from .initiated import advanced_authorization, information_request, payment_reconciliation
from .queue import MessageQueue, Queued
from .rejections import rejection
from .request import Reply, Request, echo_task, task_input
from .responses import Entry, Party, coding, message, operation_outcome
from .settings import SimulatorSettings
from .validation import validate_message


@dataclass
class ClaimRecord:
    """A prior authorization, claim or advanced authorization the payer has accepted."""

    identifier: Identifier
    event: str
    kind: str
    provider: str
    request: Request | None
    status: str = "queued"  # queued | awaiting-information | complete | cancelled
    outcome: str | None = None
    response_identifier: Identifier | None = None
    information_request: Identifier | None = None
    released_at: float = 0.0
    deferred: bool = False  # Claim.priority=deferred: the per-kind deferred outcome applies

    def knows(self, identifier: Identifier) -> bool:
        """True for the claim's identifier, its response's, or its information request's."""
        for known in (self.identifier, self.response_identifier, self.information_request):
            if known and known.value == identifier.value and identifier.system in (None, known.system):
                return True
        return False


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
        for state in (
            self.queue,
            self.claims,
            self.payments,
            self.handled,
            self._seen_bundles,
            self._seen_headers,
        ):
            state.clear()

    def process(self, body: Any, digest: str) -> Reply:
        """The answer to one $process-message body (`digest` identifies its exact bytes, for resends)."""
        verdict = validate_message(body, self.settings.payer_licenses, self.settings.provider_licenses)
        if verdict.fatal:
            return Reply(400, operation_outcome(verdict.fatal, "structure"))
        request = Request(verdict, self.settings.base_url)
        replay = self._replay(request, digest)
        if replay is not None:
            return replay
        self.handled[request.event] += 1
        reply = (
            self._reject(request, verdict.errors)
            if verdict.errors
            else self._handlers()[request.event](request)
        )
        self._remember(request, digest, reply)
        return reply

    def add_advanced_authorization(self, provider: str, payer_license: str = "INS-FHIR") -> Identifier:
        """Queues an advanced prior authorization (APA) for a provider, as the payer of Authorization TC10."""
        bundle, identifier = advanced_authorization(provider, payer_license, self.settings.base_url)
        self.queue.put(Queued(provider, Event.ADVANCED_AUTHORIZATION, bundle, self.clock(), identifier))
        record = ClaimRecord(
            identifier, Event.ADVANCED_AUTHORIZATION, "advanced-authorization", provider, None
        )
        record.status, record.outcome = "complete", "approved"
        self.claims[str(identifier)] = record
        return identifier

    # --- resends -------------------------------------------------------------------------------------

    def _replay(self, request: Request, digest: str) -> Reply | None:
        """The same bundle again gets the same answer; a reused id with other content is a duplicate."""
        bundle_id, header_id = request.verdict.bundle.get("id"), request.header_id
        seen = self._seen_bundles.get(bundle_id) if isinstance(bundle_id, str) else None
        if seen is not None:
            return seen[1] if seen[0] == digest else self._reject(request, [error("BV-00533", "Bundle.id")])
        if isinstance(header_id, str) and header_id in self._seen_headers:
            return self._reject(request, [error("BV-00532", "Bundle.entry[0].resource.id")])
        return None

    def _remember(self, request: Request, digest: str, reply: Reply) -> None:
        bundle_id, header_id = request.verdict.bundle.get("id"), request.header_id
        if isinstance(bundle_id, str):
            self._seen_bundles[bundle_id] = (digest, reply)
            if isinstance(header_id, str):
                self._seen_headers[header_id] = bundle_id

    def _handlers(self) -> dict[str, Callable[[Request], Reply]]:
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

    def _eligibility(self, request: Request) -> Reply:
        focus, payer = request.focus, request.payer
        patient, insurer = request.entry(focus.get("patient")), request.entry(focus.get("insurer"))
        coverages = request.coverages()
        member = self._member(patient, [c[1] for c in coverages])
        response, added = eligibility_response(
            focus,
            member,
            payer,
            patient and patient[0],
            insurer and insurer[0],
            [c[0] for c in coverages],
            self.members.benefits,
        )
        entries = request.entries(focus.get("patient"), focus.get("insurer"), focus.get("provider"))
        return self._answer(
            request, payer, payer.new_entry(response, "eligibility-response"), entries + coverages + added
        )

    # --- prior authorization and claims ------------------------------------------------------------

    def _claim(self, request: Request) -> Reply:
        claim, payer = request.focus, request.payer
        identifier = first_identifier(claim)
        if identifier is None:
            return self._reject(request, [error("IC-01428", f"{request.focus_at}.identifier")])
        if self._find(identifier) is not None:
            return self._reject(request, [error("BV-00163", f"{request.focus_at}.identifier")])
        coverages = request.coverages()
        member = self._member(request.entry(claim.get("patient")), [c[1] for c in coverages[:1]])
        if member.status == "not-found":
            errors = [RuleError(member.error or "1658")]
            response = claim_response(
                claim, request.parties(), payer.base_url, outcome="error", errors=errors
            )
            return self._answer(
                request, payer, payer.new_entry(response, _profile(claim)), request.party_entries()
            )
        record = ClaimRecord(
            identifier, request.event, claim_kind(request.event, claim), request.sender, request
        )
        record.deferred = code_of(claim.get("priority")) == "deferred"
        self.claims[str(identifier)] = record
        if must_pend(claim, self.settings.rules):
            response = claim_response(claim, request.parties(), payer.base_url, outcome="queued")
            self._pend(record)
        else:
            response = self._adjudicate(record)
            self._complete(record, response, self.clock())
        record.response_identifier = first_identifier(response)
        return self._answer(
            request, payer, payer.new_entry(response, _profile(claim)), request.party_entries()
        )

    def _pend(self, record: ClaimRecord) -> None:
        assert record.request is not None
        release = self.clock() + self.settings.deferred_delay
        if record.kind in self.settings.rules.request_information:
            record.status = "awaiting-information"
            bundle, record.information_request = information_request(record.request, record.identifier)
            self.queue.put(
                Queued(record.provider, Event.COMMUNICATION_REQUEST, bundle, release, record.identifier)
            )
        else:
            self._release_final(record, release)

    def _release_final(self, record: ClaimRecord, release_at: float) -> None:
        """Adjudicates a pended request now and queues the answer to be polled from `release_at`."""
        request = record.request
        assert request is not None
        response = self._adjudicate(record)
        event = RESPONSE_TO[record.event]
        focus = request.payer.new_entry(response, _profile(request.focus))
        bundle = message(
            event,
            request.payer,
            request.addressee,
            focus,
            request.party_entries(),
            response_to=request.header_id,
        )
        self.queue.put(Queued(record.provider, event, bundle, release_at, record.identifier))
        self._complete(record, response, release_at)

    def _adjudicate(self, record: ClaimRecord) -> dict:
        assert record.request is not None
        claim, rules = record.request.focus, self.settings.rules
        decision = decide(claim, rules, record.kind, deferred=record.deferred)
        parties = record.request.parties()
        return claim_response(
            claim, parties, self.settings.base_url, outcome="complete", decision=decision, rules=rules
        )

    def _complete(self, record: ClaimRecord, response: dict, released_at: float) -> None:
        record.status, record.outcome, record.released_at = (
            "complete",
            adjudication_outcome(response),
            released_at,
        )
        paid = record.event == Event.CLAIM_REQUEST and record.outcome in ("approved", "partial")
        if paid and self.settings.rules.pay_claims and record.request is not None:
            bundle, payment = payment_reconciliation(record.request, record.identifier, response)
            self.queue.put(
                Queued(record.provider, Event.PAYMENT_RECONCILIATION, bundle, released_at, record.identifier)
            )
            self.payments[str(payment)] = record.provider

    # --- communication and payment notice ----------------------------------------------------------

    def _communication(self, request: Request) -> Reply:
        focus = request.focus
        mentioned = [
            (a or {}).get("identifier") for a in (focus.get("about") or []) + (focus.get("basedOn") or [])
        ]
        identifiers = [i for i in map(Identifier.from_fhir, mentioned) if i]
        record = next((r for i in identifiers if (r := self._find(i))), None)
        if record is None or record.status == "cancelled":
            return self._reject(request, [error("BV-00148", f"{request.focus_at}.about[0].identifier")])
        if record.status == "awaiting-information":
            record.status = "queued"
            self._release_final(record, self.clock() + self.settings.deferred_delay)
        return self._acknowledge(request)

    def _payment_notice(self, request: Request) -> Reply:
        payment = Identifier.from_fhir((request.focus.get("payment") or {}).get("identifier"))
        if payment is None or self.payments.get(str(payment)) != request.sender:
            return self._reject(request, [error("BV-00193", f"{request.focus_at}.payment")])
        return self._acknowledge(request)

    def _acknowledge(self, request: Request) -> Reply:
        body = message(
            Event.ACKNOWLEDGEMENT,
            Party.nphies(),
            request.addressee,
            None,
            [],
            response_to=request.header_id,
            queued_messages=self._queued_for(request),
        )
        return Reply(200, body, Event.ACKNOWLEDGEMENT)

    # --- Task-based: cancel, status, poll ----------------------------------------------------------

    def _cancel(self, request: Request) -> Reply:
        record = self._target(request)
        if record is None:
            return self._reject(request, [error("BV-00222", f"{request.focus_at}.focus.identifier")])
        if record.status == "cancelled":
            return self._reject(request, [error("BV-00445", f"{request.focus_at}.focus.identifier")])
        record.status = "cancelled"
        self.queue.drop_about(record.identifier)
        return self._task_answer(request, [])

    def _status(self, request: Request) -> Reply:
        record = self._target(request)
        if record is None:
            return self._reject(request, [error("BV-00459", f"{request.focus_at}.focus.identifier")])
        output = {
            "type": coding(canonical.TASK_OUTPUT_TYPE, "status"),
            "valueCode": self._claim_status(record),
        }
        return self._task_answer(request, [output])

    def _claim_status(self, record: ClaimRecord) -> str:
        if record.status == "cancelled":
            return "cancelled"
        if record.status == "complete" and record.released_at <= self.clock():
            return "complete"
        return "queued"

    def _poll(self, request: Request) -> Reply:
        task, nphies = request.focus, Party.nphies()
        count = next(
            (c for c in task_input(task, "count") if isinstance(c, int) and not isinstance(c, bool)), 1
        )
        about = Identifier.from_fhir((task.get("focus") or {}).get("identifier"))
        taken = self.queue.take(
            request.sender,
            task_input(task, "include-message-type"),
            task_input(task, "exclude-message-type"),
            about,
            max(1, min(count, 100)),
        )
        nested = [(f"{nphies.base_url}/Bundle/{item.bundle['id']}", item.bundle) for item in taken]
        answer = echo_task(task, "completed")
        answer["output"] = [
            {"type": coding(canonical.TASK_OUTPUT_TYPE_VS, "response"), "valueReference": {"reference": url}}
            for url, _ in nested
        ]
        body = message(
            Event.POLL_RESPONSE,
            nphies,
            request.addressee,
            None,
            [nphies.new_entry(answer, "task"), *nested, *request.entries(task.get("requester"))],
            response_to=request.header_id,
            queued_messages=self._queued_for(request),
        )
        return Reply(200, body, Event.POLL_RESPONSE)

    def _task_answer(self, request: Request, outputs: list[dict]) -> Reply:
        answer = echo_task(request.focus, "completed")
        if outputs:
            answer["output"] = outputs
        return self._answer(
            request, request.payer, request.payer.new_entry(answer, "task"), request.task_entries()
        )

    def _unsupported(self, request: Request) -> Reply:
        return Reply(400, operation_outcome([error("BV-00545", "Bundle.entry[0].resource.eventCoding")]))

    # --- helpers -----------------------------------------------------------------------------------

    def _reject(self, request: Request, errors: list[RuleError]) -> Reply:
        return rejection(request, errors, self._queued_for(request))

    def _answer(self, request: Request, sender: Party, focus: Entry, entries: list[Entry]) -> Reply:
        event = RESPONSE_TO.get(request.event, Event.ACKNOWLEDGEMENT)
        body = message(
            event,
            sender,
            request.addressee,
            focus,
            entries,
            response_to=request.header_id,
            queued_messages=self._queued_for(request),
        )
        return Reply(200, body, event)

    def _queued_for(self, request: Request) -> bool:
        return self.queue.pending(request.sender) > 0

    def _find(self, identifier: Identifier) -> ClaimRecord | None:
        """A claim by its identifier, its response identifier, or its information request identifier."""
        exact = self.claims.get(str(identifier))
        return exact or next((r for r in self.claims.values() if r.knows(identifier)), None)

    def _target(self, request: Request) -> ClaimRecord | None:
        """The claim a cancel or status Task points to (Task.focus.identifier), if this provider sent it."""
        target = Identifier.from_fhir((request.focus.get("focus") or {}).get("identifier"))
        record = self._find(target) if target else None
        return record if record is not None and record.provider == request.sender else None

    def _member(self, patient: Entry | None, coverages: list[dict]) -> Member:
        values = [
            i.get("value")
            for i in (patient[1] if patient else {}).get("identifier") or []
            if isinstance(i, dict)
        ]
        for coverage in coverages:
            values += [i.get("value") for i in coverage.get("identifier") or [] if isinstance(i, dict)]
        return self.members.find([str(v) for v in values if v])


def _profile(claim: dict) -> str:
    return "prior-auth-response" if claim.get("use") == "preauthorization" else "claim-response"
