"""References through a real server on loopback: well-formed, of an allowed type, to resources that exist
(NPHIES_FACADE_REFERENTIAL_INTEGRITY=strict, the default), conditional ones resolved, Bundle entries found
by the tail of their fullUrl; deleting what others refer to is a 409; integrity off lets dangling
references and such deletions through."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import free_port, wait_until_ready

PACKAGE = Path("/tmp/pkgs/hl7.fhir.r4.examples-4.0.1/package")
SHARED_EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-examples"
MARK = "urn:test:references"


def _serve(tmp_path_factory, integrity: str) -> Iterator[httpx.Client]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp(f"references-{integrity}")
    cli = [sys.executable, "-m", "nphies_facade.server.cli", "serve", "--port", str(port)]
    env = {
        **os.environ,
        "NPHIES_FACADE_LOG_LEVEL": "warning",
        "NPHIES_FACADE_AUTH": "off",
        "NPHIES_FACADE_DATA_DIR": str(data_dir),
        "NPHIES_FACADE_REFERENTIAL_INTEGRITY": integrity,
    }
    process = subprocess.Popen([*cli, "--data-dir", str(data_dir)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        with httpx.Client(base_url=url, headers={"Content-Type": "application/fhir+json"}) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def strict(tmp_path_factory) -> Iterator[httpx.Client]:
    yield from _serve(tmp_path_factory, "strict")


@pytest.fixture(scope="module")
def lenient(tmp_path_factory) -> Iterator[httpx.Client]:
    yield from _serve(tmp_path_factory, "off")


def _created(client: httpx.Client, resource: dict) -> str:
    answer = client.post(f"/{resource['resourceType']}", json=resource)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _patient(client: httpx.Client, identifier: str | None = None) -> str:
    patient: dict = {"resourceType": "Patient", "active": True}
    if identifier is not None:
        patient["identifier"] = [{"system": "http://nphies.sa/identifier/nationalid", "value": identifier}]
    return _created(client, patient)


def _tagged(resource: dict) -> tuple[dict, str]:
    """The resource with an identifier to find it by (to prove nothing was stored)."""
    tag = uuid.uuid4().hex
    return {**resource, "identifier": [{"system": MARK, "value": tag}]}, tag


def _stored(client: httpx.Client, resource_type: str, tag: str) -> int:
    found = client.get(f"/{resource_type}", params={"identifier": f"{MARK}|{tag}"})
    assert found.status_code == 200, found.text
    return len(found.json().get("entry", []))


def _observation(subject: str, **more) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": subject},
        **more,
    }


def _refused(answer: httpx.Response, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert answer.status_code in statuses, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(issue["severity"] == "error" for issue in outcome["issue"])
    return outcome


def _reference_of(location: str) -> str:
    """`Type/id` of an entry's response.location (relative or absolute, with its version)."""
    parts = location.split("/_history")[0].rstrip("/").split("/")
    return f"{parts[-2]}/{parts[-1]}"


def _transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


# ----- the corpus: each bad reference refused with a 4xx OperationOutcome, nothing stored -----

SINGLE_WRITES = {
    "not a reference at all": lambda ids: _observation("not a reference"),
    "a type without an id": lambda ids: _observation("Patient/"),
    "an id with a space": lambda ids: _observation("Patient/a b"),
    "an unknown type": lambda ids: _observation("Patien/1"),
    "a type R4 does not have": lambda ids: _observation("Foo/bar"),
    "a type the element does not allow": lambda ids: _observation(f"Organization/{ids['organization']}"),
    "an absolute URL of a type the element does not allow": lambda ids: _observation(
        "http://elsewhere.example/fhir/Medication/7"
    ),
    "a type not allowed inside a datatype (Identifier.assigner)": lambda ids: {
        **_observation(f"Patient/{ids['patient']}"),
        "performer": [{"identifier": {"value": "x", "assigner": {"reference": f"Patient/{ids['patient']}"}}}],
    },
    "urn:uuid outside a Bundle": lambda ids: _observation(f"urn:uuid:{uuid.uuid4()}"),
    "urn:oid outside a Bundle": lambda ids: _observation("urn:oid:1.2.3.4"),
    "#id naming no contained resource": lambda ids: _observation("#missing"),
    "a resource that does not exist": lambda ids: _observation("Patient/does-not-exist"),
    "a version of a resource that does not exist": lambda ids: _observation("Patient/nope/_history/1"),
    "a resource that was deleted": lambda ids: _observation(f"Patient/{ids['deleted']}"),
    "a conditional reference matching nothing": lambda ids: _observation(
        "Patient?identifier=http://nphies.sa/identifier/nationalid|0000000000"
    ),
    "a conditional reference matching two": lambda ids: _observation(
        "Patient?identifier=http://nphies.sa/identifier/nationalid|twin"
    ),
    "a dangling reference inside a contained resource": lambda ids: {
        **_observation("#p"),
        "contained": [
            {"resourceType": "Patient", "id": "p", "managingOrganization": {"reference": "Organization/none"}}
        ],
    },
}


@pytest.fixture(scope="module")
def known(strict: httpx.Client) -> dict[str, str]:
    deleted = _patient(strict)
    assert strict.delete(f"/Patient/{deleted}").status_code in (200, 204)
    _patient(strict, "twin")
    _patient(strict, "twin")
    return {
        "patient": _patient(strict),
        "organization": _created(strict, {"resourceType": "Organization", "name": "Payer"}),
        "deleted": deleted,
    }


@pytest.mark.parametrize("case", SINGLE_WRITES, ids=list(SINGLE_WRITES))
def test_a_bad_reference_is_refused_and_nothing_is_stored(strict, known, case):
    resource, tag = _tagged(SINGLE_WRITES[case](known))
    outcome = _refused(strict.post("/Observation", json=resource), (400, 404, 412))
    assert all(issue.get("expression") for issue in outcome["issue"]), outcome
    assert _stored(strict, "Observation", tag) == 0


def test_a_bad_reference_in_an_update_is_refused_and_the_old_version_stays(strict, known):
    observation = _observation(f"Patient/{known['patient']}")
    observation_id = _created(strict, observation)
    changed = {**observation, "id": observation_id, "subject": {"reference": "Patient/gone-away"}}
    _refused(strict.put(f"/Observation/{observation_id}", json=changed), 400)
    current = strict.get(f"/Observation/{observation_id}").json()
    assert current["subject"]["reference"] == f"Patient/{known['patient']}"
    assert current["meta"]["versionId"] == "1"


def test_a_reference_deleted_earlier_in_the_same_transaction_is_refused(strict):
    patient = _patient(strict)
    observation, tag = _tagged(_observation(f"Patient/{patient}"))
    bundle = _transaction(
        {"request": {"method": "DELETE", "url": f"Patient/{patient}"}},
        {"resource": observation, "request": {"method": "POST", "url": "Observation"}},
    )
    outcome = _refused(strict.post("/", json=bundle), 400)
    assert f"Patient/{patient}" in json.dumps(outcome)
    assert strict.get(f"/Patient/{patient}").status_code == 200  # the delete was rolled back too
    assert _stored(strict, "Observation", tag) == 0


def test_a_dangling_reference_in_a_transaction_refuses_the_whole_transaction(strict):
    patient, patient_tag = _tagged({"resourceType": "Patient"})
    observation, tag = _tagged(_observation("Patient/never-there"))
    bundle = _transaction(
        {
            "fullUrl": "urn:uuid:8e1a4d6c-1111-4f00-9c1e-000000000001",
            "resource": patient,
            "request": {"method": "POST", "url": "Patient"},
        },
        {"resource": observation, "request": {"method": "POST", "url": "Observation"}},
    )
    outcome = _refused(strict.post("/", json=bundle), 400)
    assert "Bundle.entry[1]" in json.dumps(outcome) or "Observation.subject" in json.dumps(outcome)
    assert _stored(strict, "Patient", patient_tag) == 0
    assert _stored(strict, "Observation", tag) == 0


def test_a_conditional_reference_matching_nothing_in_a_transaction_is_refused(strict):
    observation, tag = _tagged(_observation("Patient?identifier=http://nphies.sa/identifier/nationalid|none"))
    bundle = _transaction({"resource": observation, "request": {"method": "POST", "url": "Observation"}})
    _refused(strict.post("/", json=bundle), 404)
    assert _stored(strict, "Observation", tag) == 0


def test_an_unresolved_urn_uuid_in_a_transaction_is_refused(strict):
    observation, tag = _tagged(_observation(f"urn:uuid:{uuid.uuid4()}"))
    bundle = _transaction({"resource": observation, "request": {"method": "POST", "url": "Observation"}})
    _refused(strict.post("/", json=bundle), 400)
    assert _stored(strict, "Observation", tag) == 0


# ----- what is accepted -----


def test_references_to_existing_resources_contained_ones_and_absolute_urls_are_stored(strict, known):
    observation = _observation(
        f"Patient/{known['patient']}/_history/1",
        performer=[
            {"reference": "#author"},
            {"reference": "http://elsewhere.example/fhir/Practitioner/9"},
        ],
        contained=[{"resourceType": "Practitioner", "id": "author"}],
    )
    observation_id = _created(strict, observation)
    stored = strict.get(f"/Observation/{observation_id}").json()
    assert stored["performer"][1]["reference"] == "http://elsewhere.example/fhir/Practitioner/9"


def test_a_conditional_reference_in_a_create_and_an_update_is_rewritten_to_the_one_match(strict):
    patient = _patient(strict, "cond-1")
    conditional = "Patient?identifier=http://nphies.sa/identifier/nationalid|cond-1"
    observation_id = _created(strict, _observation(conditional))
    assert strict.get(f"/Observation/{observation_id}").json()["subject"]["reference"] == f"Patient/{patient}"
    update = {**_observation(conditional), "id": observation_id, "status": "amended"}
    answer = strict.put(f"/Observation/{observation_id}", json=update)
    assert answer.status_code == 200, answer.text
    assert strict.get(f"/Observation/{observation_id}").json()["subject"]["reference"] == f"Patient/{patient}"


def test_a_conditional_reference_in_a_transaction_is_rewritten(strict):
    patient = _patient(strict, "cond-2")
    observation = _observation("Patient?identifier=http://nphies.sa/identifier/nationalid|cond-2")
    bundle = _transaction({"resource": observation, "request": {"method": "POST", "url": "Observation"}})
    answer = strict.post("/", json=bundle)
    assert answer.status_code == 200, answer.text
    stored = strict.get("/" + _reference_of(answer.json()["entry"][0]["response"]["location"]))
    assert stored.json()["subject"]["reference"] == f"Patient/{patient}"


def test_a_transaction_may_refer_forward_to_an_entry_created_later(strict):
    observation, tag = _tagged(_observation("urn:uuid:0c4f8a8e-2222-4d8b-8a55-000000000002"))
    bundle = _transaction(
        {"resource": observation, "request": {"method": "POST", "url": "Observation"}},
        {
            "fullUrl": "urn:uuid:0c4f8a8e-2222-4d8b-8a55-000000000002",
            "resource": {"resourceType": "Patient"},
            "request": {"method": "POST", "url": "Patient"},
        },
    )
    answer = strict.post("/", json=bundle)
    assert answer.status_code == 200, answer.text
    assert _stored(strict, "Observation", tag) == 1


def _xds_bundle() -> dict:
    for folder in (SHARED_EXAMPLES, PACKAGE):
        path = folder / "Bundle-xds.json"
        if path.is_file():
            return json.loads(path.read_text())
    pytest.skip("Bundle-xds.json (hl7.fhir.r4.examples@4.0.1) is not present")


def test_the_official_xds_transaction_lands_with_its_references_rewritten(strict):
    """The DocumentReference (fullUrl urn:uuid:...) names `Patient/a2`, the entry whose fullUrl is
    http://localhost:9556/svc/fhir/Patient/a2: found by the tail of its fullUrl, as HAPI FHIR does."""
    answer = strict.post("/", json=_xds_bundle())
    assert answer.status_code == 200, answer.text
    ids = {_reference_of(entry["response"]["location"]) for entry in answer.json()["entry"]}
    document = next(i for i in ids if i.startswith("DocumentReference/"))
    stored = strict.get(f"/{document}").json()
    patient = next(i for i in ids if i.startswith("Patient/"))
    assert stored["subject"]["reference"] == patient != "Patient/a2"
    authors = {author["reference"] for author in stored["author"]}
    assert authors == {i for i in ids if i.startswith("Practitioner/")}
    assert "Practitioner/a3" not in authors


# ----- deletions -----


def test_deleting_a_resource_others_refer_to_is_a_409_naming_them(strict):
    patient = _patient(strict)
    first = _created(strict, _observation(f"Patient/{patient}"))
    second = _created(strict, _observation(f"Patient/{patient}"))
    outcome = _refused(strict.delete(f"/Patient/{patient}"), 409)
    text = json.dumps(outcome)
    assert f"Observation/{first}" in text and f"Observation/{second}" in text
    assert strict.get(f"/Patient/{patient}").status_code == 200


def test_deleting_referrer_and_target_in_one_transaction_is_allowed(strict):
    patient = _patient(strict)
    observation = _created(strict, _observation(f"Patient/{patient}"))
    bundle = _transaction(
        {"request": {"method": "DELETE", "url": f"Patient/{patient}"}},
        {"request": {"method": "DELETE", "url": f"Observation/{observation}"}},
    )
    answer = strict.post("/", json=bundle)
    assert answer.status_code == 200, answer.text
    assert strict.get(f"/Patient/{patient}").status_code == 410


def test_deleting_after_the_referrer_stopped_referring_is_allowed(strict):
    patient = _patient(strict)
    other = _patient(strict)
    observation = _observation(f"Patient/{patient}")
    observation_id = _created(strict, observation)
    moved = {**observation, "id": observation_id, "subject": {"reference": f"Patient/{other}"}}
    assert strict.put(f"/Observation/{observation_id}", json=moved).status_code == 200
    assert strict.delete(f"/Patient/{patient}").status_code in (200, 204)


# ----- integrity off -----


def test_with_integrity_off_dangling_references_and_referenced_deletions_pass(lenient):
    observation_id = _created(lenient, _observation("Patient/not-there"))
    assert lenient.get(f"/Observation/{observation_id}").json()["subject"]["reference"] == "Patient/not-there"
    patient = _patient(lenient)
    _created(lenient, _observation(f"Patient/{patient}"))
    assert lenient.delete(f"/Patient/{patient}").status_code in (200, 204)


def test_with_integrity_off_malformed_and_wrong_type_references_are_still_refused(lenient):
    _refused(lenient.post("/Observation", json=_observation("Patien/1")), 400)
    _refused(lenient.post("/Observation", json=_observation("Organization/1")), 400)


# ----- $validate -----

NPHIES_PATIENT = "http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/patient|1.0.0"


def _validated(client: httpx.Client, path: str, body: dict) -> list[dict]:
    answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome["issue"]


def _parameters(resource: dict | None = None, mode: str | None = None, profile: str | None = None) -> dict:
    parameter: list[dict] = []
    if resource is not None:
        parameter.append({"name": "resource", "resource": resource})
    if mode is not None:
        parameter.append({"name": "mode", "valueCode": mode})
    if profile is not None:
        parameter.append({"name": "profile", "valueUri": profile})
    return {"resourceType": "Parameters", "parameter": parameter}


def test_validate_answers_all_ok_for_a_valid_resource_and_stores_nothing(strict, known):
    observation, tag = _tagged(_observation(f"Patient/{known['patient']}"))
    issues = _validated(strict, "/Observation/$validate", observation)
    assert [(i["severity"], i["diagnostics"]) for i in issues] == [("information", "All OK")]
    assert _stored(strict, "Observation", tag) == 0


def test_validate_lists_every_issue_of_an_invalid_resource(strict):
    observation, tag = _tagged(_observation("Patient/missing-one", performer=[{"reference": "Foo/1"}]))
    observation["status"] = 7
    issues = _validated(strict, "/Observation/$validate", _parameters(observation, "create"))
    assert issues and all(i["severity"] == "error" for i in issues)
    assert _stored(strict, "Observation", tag) == 0
    references = {**observation, "status": "final"}
    issues = _validated(strict, "/Observation/$validate", references)
    text = json.dumps(issues)
    assert "Patient/missing-one" in text and "Foo" in text and len(issues) == 2


def test_validate_at_instance_level_checks_the_id_for_an_update(strict, known):
    observation = _observation(f"Patient/{known['patient']}")
    issues = _validated(
        strict, "/Observation/abc/$validate", _parameters({**observation, "id": "xyz"}, "update")
    )
    assert issues[0]["severity"] == "error" and "xyz" in issues[0]["diagnostics"]
    issues = _validated(
        strict, "/Observation/abc/$validate", _parameters({**observation, "id": "abc"}, "update")
    )
    assert issues[0]["severity"] == "information"


def test_validate_in_delete_mode_names_the_referrers(strict):
    patient = _patient(strict)
    observation = _created(strict, _observation(f"Patient/{patient}"))
    issues = _validated(strict, f"/Patient/{patient}/$validate", _parameters(mode="delete"))
    assert issues[0]["severity"] == "error" and f"Observation/{observation}" in issues[0]["diagnostics"]
    lonely = _patient(strict)
    issues = _validated(strict, f"/Patient/{lonely}/$validate", _parameters(mode="delete"))
    assert issues[0]["severity"] == "information"
    assert strict.get(f"/Patient/{lonely}").status_code == 200


def test_validate_against_an_nphies_profile(strict):
    bare = {"resourceType": "Patient", "active": True}
    assert _validated(strict, "/Patient/$validate", bare)[0]["severity"] == "information"
    issues = _validated(strict, "/Patient/$validate", _parameters(bare, profile=NPHIES_PATIENT))
    assert issues and all(i["severity"] == "error" for i in issues)
    assert any("Patient.identifier" in " ".join(i.get("expression", [])) for i in issues), issues
    unknown = _validated(
        strict, "/Patient/$validate", _parameters(bare, profile="http://example.org/StructureDefinition/x")
    )
    assert unknown[0]["severity"] == "error"


def test_validate_is_listed_in_the_capability_statement(strict):
    statement = strict.get("/metadata").json()
    for entry in statement["rest"][0]["resource"]:
        assert "validate" in {operation["name"] for operation in entry.get("operation", [])}, entry["type"]
