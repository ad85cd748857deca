"""Builders for the Task-based messages: poll-request, cancel-request and status-check."""

from collections.abc import Sequence
from datetime import datetime

from .. import canonical
from ..events import Event
from ..fhirjson import Identifier, first_identifier, new_guid
from .assembly import Clock, Message, assemble, instant, receiver_for, utc_now
from .closure import MessageBuildError, Resolver
from .config import ProviderConfig

CANCEL_REASONS = frozenset({"WI", "NP", "TAS"})


def build_poll_request(
    config: ProviderConfig,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    count: int | None = None,
    focus: Identifier | None = None,
    focus_type: str = "Claim",
    provider: dict | None = None,
    clock: Clock = utc_now,
) -> Message:
    """A poll-request for up to `count` queued messages, optionally filtered by event or by the request they answer.

    `provider` is the provider Organization (the Task requester); the one made from `config` by default.
    """
    if include and exclude:
        raise MessageBuildError("include-message-type and exclude-message-type are mutually exclusive")
    if count is not None and not 1 <= count <= 100:
        raise MessageBuildError("count must be between 1 and 100")
    requester = provider or config.provider_organization()
    requester_ref = f"Organization/{requester['id']}"
    task = _task("poll", config, clock(), requester_ref, owner={"identifier": _nphies_identifier()})
    inputs = [_input("include-message-type", valueCode=code) for code in include]
    inputs += [_input("exclude-message-type", valueCode=code) for code in exclude]
    if count is not None:
        inputs.append(_input("count", valuePositiveInt=count))
    if inputs:
        task["input"] = inputs
    if focus is not None:
        task["focus"] = {"type": focus_type, "identifier": focus.to_fhir()}
    resolve = _local(requester)
    return assemble(
        Event.POLL_REQUEST, task, resolve, config, receiver_for(Event.POLL_REQUEST, None, config), clock
    )


def build_cancel_request(
    target: dict,
    resolve: Resolver,
    config: ProviderConfig,
    *,
    reason: str = "WI",
    nullify: bool = False,
    clock: Clock = utc_now,
) -> Message:
    """A cancel-request (Task.code cancel, or nullify) for a prior authorization or claim already sent.

    `target` is the Claim as stored: the Task points to it by Claim.identifier, its provider is the requester
    and its insurer the owner.
    """
    if reason not in CANCEL_REASONS:
        raise MessageBuildError(f"cancel reason must be one of {sorted(CANCEL_REASONS)}")
    task = _task_about(target, "nullify" if nullify else "cancel", resolve, config, clock)
    task["reasonCode"] = {"coding": [{"system": canonical.TASK_REASON_CODE, "code": reason}]}
    return _assemble_about(Event.CANCEL_REQUEST, task, resolve, config, clock)


def build_status_check(
    target: dict, resolve: Resolver, config: ProviderConfig, clock: Clock = utc_now
) -> Message:
    """A status-check (Task.code status) for a prior authorization or claim already sent."""
    task = _task_about(target, "status", resolve, config, clock)
    return _assemble_about(Event.STATUS_CHECK, task, resolve, config, clock)


def _task_about(target: dict, code: str, resolve: Resolver, config: ProviderConfig, clock: Clock) -> dict:
    if target.get("resourceType") not in ("Claim", "ClaimResponse"):
        raise MessageBuildError(
            f"a {code} Task is about a Claim (or an advanced authorization ClaimResponse)"
        )
    identifier = first_identifier(target)
    if identifier is None:
        raise MessageBuildError(f"the {target['resourceType']} has no identifier to point the Task at")
    provider_ref = _ref(target.get("provider") or target.get("requestor"))
    insurer_ref = _ref(target.get("insurer"))
    if not provider_ref or not insurer_ref:
        raise MessageBuildError(f"the {target['resourceType']} must reference its provider and insurer")
    task = _task(code, config, clock(), provider_ref, owner={"reference": insurer_ref})
    task["focus"] = {"type": target["resourceType"], "identifier": identifier.to_fhir()}
    return task


def _assemble_about(
    event: Event, task: dict, resolve: Resolver, config: ProviderConfig, clock: Clock
) -> Message:
    payer = resolve(task["owner"]["reference"])
    return assemble(event, task, resolve, config, receiver_for(event, payer, config), clock)


def _task(code: str, config: ProviderConfig, moment: datetime, requester: str, owner: dict) -> dict:
    """A requested Task of the provider (requester) to NPHIES or the payer (owner)."""
    stamp = instant(moment)
    return {
        "resourceType": "Task",
        "id": new_guid(),
        "identifier": [{"system": config.task_identifier_system, "value": f"{code}-{new_guid()}"}],
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": canonical.TASK_CODE, "code": code}]},
        "authoredOn": stamp,
        "lastModified": stamp,
        "requester": {"reference": requester},
        "owner": owner,
    }


def _input(kind: str, **value: object) -> dict:
    return {"type": {"coding": [{"system": canonical.TASK_INPUT_TYPE, "code": kind}]}, **value}


def _nphies_identifier() -> dict:
    return {"system": canonical.NPHIES_LICENSE, "value": canonical.NPHIES_ID}


def _local(*resources: dict) -> Resolver:
    by_reference = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    return by_reference.get


def _ref(element: object) -> str | None:
    value = element.get("reference") if isinstance(element, dict) else None
    return value if isinstance(value, str) else None
