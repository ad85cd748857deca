"""A Subscription resource read into what the relay and channels need, refusing what they cannot serve.

Criteria are parsed with the search QueryParser and must be evaluable against one resource in memory
(no chains, no _has, no result parameters); channels are rest-hook, websocket, or message with a workflow
endpoint (`urn:nphies-facade:workflow:{name}`). A rest-hook or websocket Subscription on criteria may ask
to be notified of deletions too (the NOTIFY_DELETES extension); the version before the deletion is the one
matched.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from ..resources.errors import FhirError, Issue
from ..resources.search.definitions import SearchRegistry
from ..resources.search.matching import NotEvaluableInMemory, all_match, check_in_memory
from ..resources.search.query import (
    RESULT_PARAMS,
    Criterion,
    HasCriterion,
    QueryParser,
    split_result_param_name,
)
from ..resources.store import IndexValues
from ..resources.types import is_supported
from .topics import is_topic, topic_search, topic_url

REST_HOOK, WEBSOCKET, MESSAGE = "rest-hook", "websocket", "message"
CHANNEL_TYPES = (REST_HOOK, WEBSOCKET, MESSAGE)
LIVE_STATUSES = frozenset({"requested", "active", "error"})
PAYLOAD_TYPES = frozenset({"application/fhir+json", "application/json"})
WORKFLOW_PREFIX = "urn:nphies-facade:workflow:"
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NOTIFY_DELETES = "urn:nphies-facade:subscription:notify-deletes"
T = TypeVar("T")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class Channel:
    type: str
    endpoint: str | None = None
    payload: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def workflow(self) -> str | None:
        if self.type != MESSAGE or not self.endpoint:
            return None
        return self.endpoint.removeprefix(WORKFLOW_PREFIX)


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    id: str
    version: int
    status: str
    resource_type: str
    criteria: tuple[Criterion | HasCriterion, ...]
    channel: Channel
    end: float | None = None
    topic: str | None = None  # a workflow event topic's canonical URL (see topics.py)
    deletes: bool = False  # deletions of matching resources notify too

    @property
    def codes(self) -> frozenset[str]:
        """The search parameters the criteria read."""
        return frozenset(c.param.code for c in self.criteria if isinstance(c, Criterion))

    def is_live(self, now: float) -> bool:
        return self.status in LIVE_STATUSES and not self.ended(now)

    def ended(self, now: float) -> bool:
        return self.end is not None and now >= self.end

    def matches(self, index: IndexValues, now_ms: float) -> bool:
        return all_match(list(self.criteria), index, now_ms)


def _invalid(diagnostics: str, expression: str, code: str = "invalid") -> FhirError:
    return FhirError(400, [Issue(code, diagnostics, expression=expression)])


def _end(resource: dict) -> float | None:
    end = resource.get("end")
    if end is None:
        return None
    try:
        return datetime.fromisoformat(str(end).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _invalid(f"Subscription.end {end!r} is not an instant", "Subscription.end") from None


def _headers(channel: dict) -> tuple[tuple[str, str], ...]:
    headers = []
    for i, raw in enumerate(channel.get("header") or []):
        name, sep, value = str(raw).partition(":")
        if not sep or not HEADER_NAME.fullmatch(name.strip()) or "\r" in value or "\n" in value:
            raise _invalid("A channel header is written 'Name: value'", f"Subscription.channel.header[{i}]")
        headers.append((name.strip(), value.strip()))
    return tuple(headers)


def _notify_deletes(resource: dict, channel: Channel, topic: str | None) -> bool:
    values = [
        e.get("valueBoolean")
        for e in resource.get("extension") or []
        if isinstance(e, dict) and e.get("url") == NOTIFY_DELETES
    ]
    if not values:
        return False
    if len(values) > 1 or not isinstance(values[0], bool):
        raise _invalid(f"{NOTIFY_DELETES} is one valueBoolean", "Subscription.extension")
    if values[0] and (topic is not None or channel.type == MESSAGE):
        raise _invalid(
            "Deletions notify rest-hook and websocket Subscriptions on criteria, not topics or workflows",
            "Subscription.extension",
            "not-supported",
        )
    return values[0]


def read_channel(resource: dict) -> Channel:
    channel = resource.get("channel") if isinstance(resource.get("channel"), dict) else {}
    kind = channel.get("type")
    if kind not in CHANNEL_TYPES:
        raise _invalid(
            f"Channel type {kind!r} is not supported; use one of {', '.join(CHANNEL_TYPES)}",
            "Subscription.channel.type",
            "not-supported",
        )
    endpoint = channel.get("endpoint")
    payload = channel.get("payload") or None
    if payload is not None and payload.split(";")[0].strip() not in PAYLOAD_TYPES:
        raise _invalid(
            f"Payload {payload!r} is not supported; use application/fhir+json or none",
            "Subscription.channel.payload",
            "not-supported",
        )
    if kind == REST_HOOK:
        parts = urlsplit(endpoint or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _invalid("A rest-hook channel needs an http(s) endpoint", "Subscription.channel.endpoint")
    if kind == MESSAGE:
        name = (endpoint or "").removeprefix(WORKFLOW_PREFIX)
        if not (endpoint or "").startswith(WORKFLOW_PREFIX) or not WORKFLOW_NAME.fullmatch(name):
            raise _invalid(
                f"A message channel's endpoint is {WORKFLOW_PREFIX}{{workflow name}}",
                "Subscription.channel.endpoint",
            )
    return Channel(kind, endpoint, payload, _headers(channel))


class CriteriaParser:
    """Reads Subscription resources into SubscriptionSpecs; errors are 400 OperationOutcomes."""

    def __init__(self, registry: SearchRegistry) -> None:
        self._parser = QueryParser(registry)

    def criteria(self, text: object) -> tuple[str, tuple[Criterion | HasCriterion, ...]]:
        if not isinstance(text, str) or not text.strip():
            raise _invalid(
                "Subscription.criteria is required, e.g. Task?status=requested", "Subscription.criteria"
            )
        resource_type, _, query = text.strip().partition("?")
        if not is_supported(resource_type):
            raise _invalid(
                f"Subscription.criteria names an unknown resource type {resource_type!r}",
                "Subscription.criteria",
            )
        params = parse_qsl(query, keep_blank_values=True)
        results = [name for name, _ in params if split_result_param_name(name) in RESULT_PARAMS]
        if results:
            raise _invalid(
                f"Subscription.criteria cannot use result parameters ({', '.join(results)})",
                "Subscription.criteria",
                "not-supported",
            )
        parsed = self._parser.parse((resource_type,), params, strict=True)
        try:
            check_in_memory(parsed.criteria)
        except NotEvaluableInMemory as exc:
            raise _invalid(
                f"Subscription.criteria cannot be evaluated on the changed resource alone: {exc}",
                "Subscription.criteria",
                "not-supported",
            ) from None
        return resource_type, tuple(parsed.criteria)

    def parse(self, resource: dict, version: int = 0) -> SubscriptionSpec:
        text, topic = resource.get("criteria"), None
        if is_topic(text):
            name, text = topic_search(str(text))
            topic = topic_url(name)
        resource_type, criteria = self._wrap(lambda: self.criteria(text))
        channel = read_channel(resource)
        return SubscriptionSpec(
            str(resource.get("id", "")),
            version,
            str(resource.get("status", "")),
            resource_type,
            criteria,
            channel,
            _end(resource),
            topic,
            _notify_deletes(resource, channel, topic),
        )

    @staticmethod
    def _wrap(parse: Callable[[], T]) -> T:
        """Errors from the search parser point at the parameter; here they point at the criteria."""
        try:
            return parse()
        except FhirError as exc:
            if exc.status != 400:
                raise
            issues = [
                Issue(i.code, _about_criteria(i.diagnostics), expression="Subscription.criteria")
                for i in exc.issues
            ]
            raise FhirError(400, issues) from None


def _about_criteria(diagnostics: str) -> str:
    return diagnostics if diagnostics.startswith("Subscription.") else f"Subscription.criteria: {diagnostics}"
