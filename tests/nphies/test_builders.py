"""Messages built from the official samples' resources: their structure, validity and profile conformance."""

from collections import Counter

import pytest

from nphies_facade.nphies import canonical
from nphies_facade.nphies.fhirjson import Identifier, is_guid
from nphies_facade.nphies.messages import (
    MessageBuildError,
    build_cancel_request,
    build_communication,
    build_eligibility_request,
    build_payment_notice,
    build_poll_request,
    build_priorauth_request,
    build_status_check,
)
from nphies_facade.nphies.references import BundleIndex, iter_references
from nphies_facade.nphies.simulator import validate_message
from nphies_facade.profiles import check_message

from .samples import REQUEST_SAMPLES, example, focus_key, scenario, stored_resources, upgrade_to_v52

OFFICIAL = {key: name for key, name in REQUEST_SAMPLES.items() if not name.startswith("oba_")}
IG_EXAMPLES = ["ig-example_eligibility-request.json", "ig-example_priorauth-request_institutional.json"]
ALL_SAMPLES = sorted(set(OFFICIAL.values()) | set(IG_EXAMPLES))
# The web IG's short-stay encounter profile is not among the v5.2 structure definitions; builders use encounter.
RENAMED_PROFILES = {("Encounter", "encounter-auth-SS"): ("Encounter", "encounter")}


def _types(bundle: dict) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def _profiles(bundle: dict) -> set[tuple[str, str]]:
    return {
        (e["resource"]["resourceType"], canonical.profile_id(p))
        for e in bundle["entry"]
        for p in e["resource"].get("meta", {}).get("profile", [])
    }


@pytest.mark.parametrize("sample", ALL_SAMPLES)
def test_built_message_has_the_structure_of_the_official_sample(sample: str) -> None:
    official = example(sample)
    built = scenario(sample).message().bundle
    header, official_header = built["entry"][0]["resource"], official["entry"][0]["resource"]
    assert header["eventCoding"] == official_header["eventCoding"]
    # MessageHeader then the focus; the samples order the other entries differently among themselves
    # (e.g. claim-request institutional vs vision), the builder uses the IG's table 8 order.
    assert _types(built)[:2] == _types(official)[:2]
    assert Counter(_types(built)) == Counter(_types(official))
    assert _profiles(built) == {RENAMED_PROFILES.get(p, p) for p in _profiles(official)}


@pytest.mark.parametrize("sample", ALL_SAMPLES)
def test_built_message_uses_guids_urn_uuids_and_only_references_inside_itself(sample: str) -> None:
    bundle = scenario(sample).message().bundle
    index = BundleIndex(bundle)
    assert bundle["type"] == "message" and is_guid(bundle["id"])
    for position, entry in enumerate(bundle["entry"]):
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}" and is_guid(entry["resource"]["id"])
        for found in iter_references(entry["resource"]):
            assert index.resolve(found.reference, position) is not None, found.path
    header = bundle["entry"][0]["resource"]
    assert header["focus"] == [{"reference": bundle["entry"][1]["fullUrl"]}]


@pytest.mark.parametrize("sample", ALL_SAMPLES)
def test_built_message_passes_the_simulators_validation_and_the_profile_checks(sample: str) -> None:
    bundle = scenario(sample).message().bundle
    verdict = validate_message(bundle)
    assert (verdict.fatal, verdict.errors) == ([], [])
    assert check_message(bundle) == []


@pytest.mark.parametrize("sample", sorted(OFFICIAL.values()))
def test_profile_checks_name_exactly_what_profiles_v52_added_to_the_2021_samples(sample: str) -> None:
    issues = check_message(scenario(sample, upgrade=False).message().bundle)
    assert issues, "the 2021 samples lack the v5.2 elements"
    assert all("mandatory since profiles v5.2" in i.message and i.code == "required" for i in issues)
    assert {i.rule for i in issues} <= {
        "IC-01428",
        "IC-01550",
        "IC-01560",
        "IC-01564",
        "IC-01565",
        "IC-01566",
    }


def test_builder_adds_the_configured_provider_type_to_the_providers_organization() -> None:
    case = scenario("official_eligibility-request_discovery.json", upgrade=False)
    bundle = case.message().bundle
    provider = next(
        e["resource"] for e in bundle["entry"] if "provider-organization" in str(e["resource"].get("meta"))
    )
    assert provider["extension"][0]["url"] == canonical.PROVIDER_TYPE_EXT
    assert "extension" not in case.organization("provider")


def test_builder_addresses_the_payer_by_its_license_and_names_the_provider_as_sender() -> None:
    case = scenario("official_priorauth-request_pharmacy.json", provider="PR-TEST-1")
    header = case.message().bundle["entry"][0]["resource"]
    assert header["sender"]["identifier"] == {"system": canonical.PROVIDER_LICENSE, "value": "PR-TEST-1"}
    assert header["destination"][0]["receiver"]["identifier"] == {
        "system": canonical.PAYER_LICENSE,
        "value": "N-I-00001",
    }
    assert header["destination"][0]["endpoint"] == "http://nphies.sa/license/payer-license/N-I-00001"


def test_task_messages_have_the_structure_of_the_official_samples() -> None:
    case = scenario("official_claim-request_oral.json")
    claim = case.focus
    built = {
        "official_poll-request.json": build_poll_request(case.config, include=["claim-response"], count=5),
        "official_cancel-request.json": build_cancel_request(claim, case.resolve, case.config, reason="WI"),
        "official_status-check-request.json": build_status_check(claim, case.resolve, case.config),
    }
    for sample, message in built.items():
        official = example(sample)
        assert (
            message.bundle["entry"][0]["resource"]["eventCoding"]
            == official["entry"][0]["resource"]["eventCoding"]
        )
        assert _types(message.bundle) == _types(official), sample
        assert validate_message(message.bundle).errors == [] and check_message(message.bundle) == []
    poll_task = built["official_poll-request.json"].focus
    assert poll_task["code"]["coding"][0]["code"] == "poll" and len(poll_task["input"]) == 2
    header = built["official_poll-request.json"].bundle["entry"][0]["resource"]
    assert header["destination"][0]["receiver"]["identifier"]["value"] == "NPHIES"
    cancel_task = built["official_cancel-request.json"].focus
    assert cancel_task["focus"]["identifier"] == claim["identifier"][0]
    assert cancel_task["reasonCode"]["coding"][0]["code"] == "WI"


@pytest.mark.parametrize(
    "sample",
    [
        "official_communication_solicited.json",
        "official_communication_unsolicited.json",
        "official_payment-notice.json",
    ],
)
def test_communication_and_payment_notice_have_the_structure_of_the_official_samples(sample: str) -> None:
    official = example(sample)
    store = stored_resources(official)
    upgrade_to_v52(store)
    focus = store[focus_key(official)]
    provider = next(r for r in store.values() if "provider-organization" in str(r.get("meta")))
    case = scenario("official_eligibility-request_discovery.json")
    config = type(case.config)(
        provider_license=provider["identifier"][0]["value"],
        provider_name="p",
        payer_license="INS-FHIR",
        source_endpoint="http://p.test",
    )
    build = build_payment_notice if focus["resourceType"] == "PaymentNotice" else build_communication
    message = build(focus, store.get, config)
    assert Counter(_types(message.bundle)) == Counter(_types(official))
    assert _profiles(message.bundle) == _profiles(official)
    assert validate_message(message.bundle).errors == [] and check_message(message.bundle) == []


def test_builders_refuse_what_cannot_make_a_valid_message() -> None:
    case = scenario("official_priorauth-request_professional.json")
    with pytest.raises(MessageBuildError, match="cannot be resolved"):
        build_priorauth_request(case.focus, lambda reference: None, case.config)
    claim = {**case.focus, "use": "claim"}
    with pytest.raises(MessageBuildError, match="preauthorization"):
        build_priorauth_request(claim, case.resolve, case.config)
    eligibility = scenario("official_eligibility-request_discovery.json")
    with pytest.raises(MessageBuildError, match="need"):
        build_eligibility_request(
            {**eligibility.focus, "purpose": ["validation"]}, eligibility.resolve, eligibility.config
        )
    with pytest.raises(MessageBuildError, match="mutually exclusive"):
        build_poll_request(case.config, include=["claim-response"], exclude=["payment-reconciliation"])


def test_message_records_where_each_stored_resource_went() -> None:
    case = scenario("official_priorauth-request_vision.json")
    message = case.message()
    assert message.full_urls[f"Claim/{case.focus['id']}"] == message.bundle["entry"][1]["fullUrl"]
    assert message.header_id == message.bundle["entry"][0]["resource"]["id"]
    assert any(key.startswith("VisionPrescription/") for key in message.full_urls)
    poll = build_poll_request(case.config, focus=Identifier("http://p.test/claim", "c-1"))
    assert poll.focus["focus"]["identifier"] == {"system": "http://p.test/claim", "value": "c-1"}
