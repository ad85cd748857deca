"""$eligibility on a Coverage: ask the payer, in real time, whether the Coverage is in force.

Builds a CoverageEligibilityRequest from the Coverage (its beneficiary, its payor, the provider of the
settings), checks the message against the NPHIES profiles (422 instead of sending one NPHIES would
reject), sends it, and stores the request, the payer's CoverageEligibilityResponse and the exchange
record in one transaction. Complete answers are reused for the cache TTL unless the caller says
`Cache-Control: no-cache`.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..nphies import canonical
from ..nphies.gateway import Exchange, NphiesGateway, Outcome
from ..nphies.messages import MessageBuildError, build_eligibility_request
from ..nphies.parsing import EligibilityResponse, focus_of
from ..profiles import check_message, has_errors
from ..resources.access import Interaction
from ..resources.clock import Clock
from ..resources.context import RequestContext
from ..resources.errors import bad_request
from ..resources.service import FhirService, resource_json
from ..resources.store import StoredVersion
from . import errors
from .answers import local_references, localize
from .closure import load_closure
from .codes import REQUEST_IDENTIFIERS
from .config import OperationsConfig
from .eligibility_cache import CacheUnavailable, EligibilityCache, cache_key, cache_tag
from .exchanges import ExchangeRecorder, count_resends
from .parameters import a_date, check_names, codes, read_parameters
from .provider import ProviderOrganization
from .transactions import in_transaction

log = logging.getLogger("nphies_facade.operations")

PURPOSES = frozenset({"benefits", "validation", "discovery"})
PARAMETERS = {"purpose", "servicedDate"}
SAUDI_TIME = timezone(timedelta(hours=3))


@dataclass(frozen=True)
class EligibilityQuestion:
    purposes: tuple[str, ...]
    serviced: str

    @classmethod
    def from_body(cls, body: object | None, today: str) -> "EligibilityQuestion":
        parameters = read_parameters(body)
        check_names(parameters, PARAMETERS, "$eligibility")
        purposes = codes(parameters, "purpose", PURPOSES, ("validation",))
        return cls(purposes, a_date(parameters, "servicedDate") or today)


@dataclass(frozen=True)
class EligibilityAnswer:
    """The stored CoverageEligibilityResponse; `cached` when it answered an earlier request."""

    response: StoredVersion
    cached: bool


def saudi_date(moment: datetime) -> str:
    return moment.astimezone(SAUDI_TIME).date().isoformat()


def operation_context(ctx: RequestContext, operation: str) -> RequestContext:
    """The system actor the server acts as for an operation the caller was allowed to start."""
    return RequestContext(
        actor=f"operation:{operation}", scopes=("system/*.*",), trace_id=ctx.trace_id, client_id=ctx.client_id
    )


class EligibilityOperation:
    def __init__(
        self,
        service: FhirService,
        gateway: NphiesGateway,
        config: OperationsConfig,
        cache: EligibilityCache,
        provider: ProviderOrganization,
        clock: Clock,
    ) -> None:
        self.service = service
        self.gateway = gateway
        self.config = config
        self.cache = cache
        self.provider = provider
        self.clock = clock

    async def run(
        self, ctx: RequestContext, coverage_id: str, body: object | None, use_cache: bool = True
    ) -> EligibilityAnswer:
        stored = await self.service.read("Coverage", coverage_id, ctx=ctx)
        coverage = resource_json(stored)
        await self.service.authorize(ctx, Interaction.OPERATION, "Coverage", coverage)
        question = EligibilityQuestion.from_body(body, saudi_date(self.clock()))
        key = cache_key(coverage_id, stored.version, question.purposes, question.serviced)
        system = operation_context(ctx, "eligibility")
        if use_cache and self.cache.enabled:
            cached = await self._cached(key, system)
            if cached is not None:
                return EligibilityAnswer(cached, True)
        request = await self._request(coverage, question, system)
        return await self._ask(request, coverage, key, system)

    async def _cached(self, key: str, ctx: RequestContext) -> StoredVersion | None:
        try:
            return await self.cache.get(key, ctx)
        except CacheUnavailable as exc:
            log.warning("eligibility cache unavailable (%s); asking NPHIES", exc)
            return None

    async def _request(self, coverage: dict, question: EligibilityQuestion, ctx: RequestContext) -> dict:
        payors = coverage.get("payor") or []
        beneficiary = coverage.get("beneficiary")
        if not payors or not beneficiary:
            raise bad_request(
                "The Coverage needs a beneficiary and a payor to ask for eligibility", "Coverage"
            )
        request_id = str(uuid.uuid4())
        source = self.config.provider.source_endpoint.rstrip("/")
        return {
            "resourceType": "CoverageEligibilityRequest",
            "id": request_id,
            "identifier": [{"system": f"{source}{REQUEST_IDENTIFIERS}", "value": request_id}],
            "status": "active",
            "priority": {"coding": [{"system": canonical.PROCESS_PRIORITY, "code": "normal"}]},
            "purpose": list(question.purposes),
            "patient": beneficiary,
            "servicedDate": question.serviced,
            "created": saudi_date(self.clock()),
            "provider": {"reference": await self.provider.reference(ctx)},
            "insurer": payors[0],
            "insurance": [{"coverage": {"reference": f"Coverage/{coverage['id']}"}}],
        }

    async def _ask(self, request: dict, coverage: dict, key: str, ctx: RequestContext) -> EligibilityAnswer:
        closure = await load_closure(self.service, ctx, request, {f"Coverage/{coverage['id']}": coverage})
        try:
            message = build_eligibility_request(request, closure.resolve, self.config.provider)
        except MessageBuildError as exc:
            raise errors.unbuildable(str(exc)) from None
        issues = check_message(message.bundle)
        if has_errors(issues):
            raise errors.refused_by_profiles(issues)
        exchange = await self.gateway.send(message)
        count_resends(exchange)
        response = _eligibility_response(exchange)
        stored = await self._store(request, response, exchange, message.full_urls, key, ctx)
        if stored is None:
            raise _failure(exchange)
        if self.cache.enabled and response is not None and response.get("outcome") == "complete":
            await self.cache.put(key, stored)
        return EligibilityAnswer(stored, False)

    async def _store(
        self,
        request: dict,
        response: dict | None,
        exchange: Exchange,
        full_urls: dict[str, str],
        key: str,
        ctx: RequestContext,
    ) -> StoredVersion | None:
        """Stores request, answer (when there is one) and exchange record together."""
        subject = f"CoverageEligibilityRequest/{request['id']}"
        recorder = ExchangeRecorder(self.service, ctx)

        async def write(tx) -> StoredVersion | None:
            await self.service.create(ctx, dict(request), tx=tx, resource_id=request["id"], trusted=True)
            await recorder.finished(exchange, subject, full_urls, tx, patient=request.get("patient"))
            if response is None:
                return None
            answer = localize(response, exchange.response or {}, local_references(full_urls))
            answer.setdefault("request", {})["reference"] = subject
            if answer.get("outcome") == "complete":
                answer.setdefault("meta", {}).setdefault("tag", []).append(cache_tag(key))
            return (await self.service.create(ctx, answer, tx=tx)).version

        return await in_transaction(self.service, write)


def _eligibility_response(exchange: Exchange) -> dict | None:
    """The CoverageEligibilityResponse of an answered exchange, if that is what came back."""
    parsed = exchange.parsed()
    if exchange.outcome is not Outcome.ANSWERED or not isinstance(parsed, EligibilityResponse):
        return None
    focus = focus_of(exchange.response or {})
    return focus if focus is not None and focus.get("resourceType") == "CoverageEligibilityResponse" else None


def _failure(exchange: Exchange) -> errors.OutcomeError:
    parsed = exchange.parsed()
    found = tuple(parsed.errors) if parsed is not None else ()
    if exchange.outcome is Outcome.REJECTED:
        return errors.refused_by_nphies(found, exchange.status_code)
    if exchange.outcome is Outcome.ANSWERED:
        event = getattr(parsed, "event", "an unreadable message")
        body = errors.outcome(
            [{"severity": "error", "code": "processing", "diagnostics": f"NPHIES answered with {event}"}]
            + errors.nphies_issues(found)
        )
        return errors.OutcomeError(502, body=body)
    return errors.unreachable(exchange)
