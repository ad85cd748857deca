"""Simulator behaviour below the HTTP layer: resends, delays, onboarding, settings, and its HTTP edge cases."""

import hashlib
import json

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nphies_facade.nphies.messages import build_poll_request
from nphies_facade.nphies.parsing import parse_response
from nphies_facade.nphies.simulator import Payer, SimulatorSettings, create_simulator_app
from nphies_facade.server.cli import build_parser

from .samples import scenario

ELIGIBILITY = "official_eligibility-request_benefits-validation.json"


def _process(payer: Payer, bundle: dict):
    raw = orjson.dumps(bundle)
    return payer.process(orjson.loads(raw), hashlib.sha256(raw).hexdigest())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_bundle_sent_again_gets_the_same_answer_but_a_reused_id_is_a_duplicate() -> None:
    payer = Payer(SimulatorSettings())
    bundle = scenario(ELIGIBILITY).message().bundle
    first, again = _process(payer, bundle), _process(payer, bundle)
    assert again is first
    changed = json.loads(json.dumps(bundle))
    changed["timestamp"] = "2030-01-01T00:00:00.000+00:00"
    assert [e.code for e in parse_response(_process(payer, changed).body).errors] == ["BV-00533"]


def test_deferred_answers_are_released_to_poll_after_the_configured_delay() -> None:
    clock = FakeClock()
    payer = Payer(SimulatorSettings(deferred_delay=30), clock=clock)
    case = scenario("official_priorauth-request_institutional.json", priority="deferred")
    assert parse_response(_process(payer, case.message().bundle).body).outcome == "queued"
    assert parse_response(_process(payer, build_poll_request(case.config).bundle).body).messages == ()
    clock.now += 31
    [final] = parse_response(_process(payer, build_poll_request(case.config).bundle).body).messages
    assert final.adjudication_outcome == "approved"


def test_a_strict_payer_does_not_know_unlisted_members() -> None:
    payer = Payer(SimulatorSettings(unknown_members_eligible=False))
    answer = parse_response(_process(payer, scenario(ELIGIBILITY, member="1234567890").message().bundle).body)
    assert (answer.outcome, [e.code for e in answer.errors]) == ("error", ["1658"])


def test_payers_and_providers_that_are_not_onboarded_are_refused() -> None:
    payer = Payer(SimulatorSettings(payer_licenses=("INS-FHIR",), provider_licenses=("PR-FHIR",)))
    other_payer = scenario(ELIGIBILITY, provider="PR-FHIR").message().bundle  # addressed to N-I-00001
    assert [e.code for e in parse_response(_process(payer, other_payer).body).errors] == ["GE-00010"]
    unknown_provider = _process(payer, scenario(ELIGIBILITY, provider="PR-OTHER").message().bundle)
    assert unknown_provider.status == 400
    assert [e.code for e in parse_response(unknown_provider.body).errors] == ["BV-00176"]


def test_settings_load_from_json_with_rules_and_faults(tmp_path) -> None:
    path = tmp_path / "simulator.json"
    path.write_text(
        json.dumps(
            {
                "deferred_delay": 5,
                "rules": {"rejected_codes": {"X": "CV-1-4"}, "request_information": []},
                "faults": [{"kind": "error", "status": 502, "events": ["claim-request"], "every_nth": 2}],
            }
        )
    )
    settings = SimulatorSettings.from_file(path)
    assert settings.deferred_delay == 5 and settings.rules.rejected_codes == {"X": "CV-1-4"}
    assert settings.faults[0].events == ("claim-request",) and settings.faults[0].every_nth == 2


async def test_unparsable_bodies_get_an_operation_outcome_with_status_400() -> None:
    transport = httpx.ASGITransport(app=create_simulator_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        garbage = await client.post("/$process-message", content=b"{not json")
        not_a_bundle = await client.post("/$process-message", json={"resourceType": "Patient"})
        health = await client.get("/health")
    assert (garbage.status_code, garbage.json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "GE-00013",
    )
    assert not_a_bundle.status_code == 400 and health.json() == {"status": "ok"}


def test_the_cli_has_a_simulator_command() -> None:
    args = build_parser().parse_args(["simulator", "--port", "9191"])
    assert (args.command, args.host, args.port) == ("simulator", "127.0.0.1", 9191)


# Mutations of a valid message: deleted elements and wrong JSON types anywhere.
_INTEGERS = st.integers(-(2**31), 2**31)
# st.builds(dict): a new empty object each time (one shared `{}` could be set inside itself: a cycle).
_VALUES = st.one_of(
    st.none(), _INTEGERS, st.text(max_size=5), st.lists(_INTEGERS, max_size=2), st.builds(dict)
)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


_BUNDLE = scenario("official_priorauth-request_vision.json").message().bundle
_ALL_PATHS = list(_paths(_BUNDLE))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_ALL_PATHS), st.booleans(), _VALUES), min_size=1, max_size=3))
def test_the_simulator_answers_any_mangled_message_without_crashing(mutations) -> None:
    bundle = json.loads(json.dumps(_BUNDLE))
    for path, delete, value in mutations:
        node = bundle
        try:
            for step in path[:-1]:
                node = node[step]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    reply = _process(Payer(SimulatorSettings()), bundle)
    assert reply.status in (200, 400)
    parse_response(reply.body)


def test_an_item_quantity_that_is_not_a_number_is_answered_not_crashed_on() -> None:
    bundle = json.loads(json.dumps(_BUNDLE))
    claim = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    claim["item"][0]["quantity"] = {"value": ""}
    claim["item"][0].pop("net", None)
    reply = _process(Payer(SimulatorSettings()), bundle)
    assert reply.status in (200, 400)
    parse_response(reply.body)
