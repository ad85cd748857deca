"""Required bindings on Coding/CodeableConcept elements, and on code elements the JSON schema lists no
codes for, are checked against the R4 value sets: a bad code is a 400 naming the element, and nothing is
stored."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nphies_facade.resources.rules import BINDINGS, rule_issues

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

CONDITION = {
    "resourceType": "Condition",
    "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
    "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
    "code": {"text": "Headache"},
    "subject": {"reference": "Patient/p1"},
}
CLAIM = {
    "resourceType": "Claim",
    "status": "active",
    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "oral"}]},
    "use": "claim",
    "patient": {"reference": "Patient/p1"},
    "created": "2024-01-01",
    "provider": {"reference": "Organization/o1"},
    "priority": {"coding": [{"code": "normal"}]},
    "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/c1"}}],
}
ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "patient": {"reference": "Patient/p1"},
}
SERVICE_REQUEST = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "intent": "order",
    "priority": "routine",
    "subject": {"reference": "Patient/p1"},
}


def _with(resource: dict, **changes) -> dict:
    changed = copy.deepcopy(resource)
    changed.update(changes)
    return changed


# (case, resource, the location of the issue)
INVALID = [
    (
        "coding-with-a-code-not-in-the-system",
        _with(CONDITION, clinicalStatus={"coding": [{"system": CONDITION_CLINICAL, "code": "nope"}]}),
        "Condition.clinicalStatus.coding[0]",
    ),
    (
        "text-only-concept",
        _with(CONDITION, verificationStatus={"text": "confirmed"}),
        "Condition.verificationStatus",
    ),
    (
        "coding-from-another-system-only",
        _with(
            CONDITION, clinicalStatus={"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]}
        ),
        "Condition.clinicalStatus",
    ),
    (
        "coding-without-system",
        _with(CONDITION, clinicalStatus={"coding": [{"code": "active"}]}),
        "Condition.clinicalStatus",
    ),
    (
        "second-coding-wrong-in-the-bound-system",
        _with(
            CONDITION,
            clinicalStatus={
                "coding": [
                    {"system": CONDITION_CLINICAL, "code": "active"},
                    {"system": CONDITION_CLINICAL, "code": "Active"},
                ]
            },
        ),
        "Condition.clinicalStatus.coding[1]",
    ),
    (
        "allergy-clinical-status-from-the-condition-system",
        _with(ALLERGY, clinicalStatus={"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]}),
        "AllergyIntolerance.clinicalStatus",
    ),
    ("claim-status", _with(CLAIM, status="not-a-status"), "Claim.status"),
    ("service-request-intent", _with(SERVICE_REQUEST, intent="wish"), "ServiceRequest.intent"),
    ("service-request-priority", _with(SERVICE_REQUEST, priority="whenever"), "ServiceRequest.priority"),
    (
        "a-contained-resource",
        _with(CLAIM, contained=[_with(SERVICE_REQUEST, id="sr", status="sent")]),
        "Claim.contained[0].status",
    ),
    (
        "inside-a-backbone-element",
        {
            "resourceType": "Composition",
            "status": "final",
            "type": {"text": "note"},
            "date": "2024-01-01",
            "author": [{"display": "A"}],
            "title": "t",
            "confidentiality": "Z",
        },
        "Composition.confidentiality",
    ),
]


@pytest.mark.parametrize(("case", "resource", "location"), INVALID, ids=[c[0] for c in INVALID])
async def test_a_broken_required_binding_is_refused_and_nothing_stored(client, case, resource, location):
    response = await client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues = [i for i in outcome["issue"] if i["code"] == "code-invalid"]
    assert [i["expression"] for i in issues] == [[location]], outcome
    assert "required binding" in issues[0]["diagnostics"]
    assert (await client.get(f"/{resource['resourceType']}")).json().get("total", 0) == 0
    assert (await client.get("/_history")).json().get("entry", []) == []


@pytest.mark.parametrize(
    "resource", [CONDITION, CLAIM, ALLERGY, SERVICE_REQUEST], ids=lambda r: r["resourceType"]
)
async def test_codes_from_the_value_set_are_accepted(client, resource):
    response = await client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text


async def test_an_update_with_a_bad_code_keeps_the_stored_version(client):
    created = (await client.post("/Claim", json=CLAIM)).json()
    response = await client.put(f"/Claim/{created['id']}", json=_with(CLAIM, id=created["id"], status="done"))
    assert response.status_code == 400
    assert (await client.get(f"/Claim/{created['id']}")).json()["status"] == "active"


async def test_a_transaction_entry_with_a_bad_code_fails_the_whole_bundle(client):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": CLAIM, "request": {"method": "POST", "url": "Claim"}},
            {"resource": _with(CLAIM, status="maybe"), "request": {"method": "POST", "url": "Claim"}},
        ],
    }
    response = await client.post("/", json=bundle)
    assert response.status_code == 400, response.text
    assert (await client.get("/Claim")).json().get("total", 0) == 0


def test_the_bindings_table_covers_coded_elements_the_schema_does_not_enumerate():
    assert BINDINGS["Condition.clinicalStatus"].kind == "CodeableConcept"
    assert BINDINGS["Claim.status"].any_code == {"active", "cancelled", "draft", "entered-in-error"}
    assert "Patient.gender" not in BINDINGS  # the schema lists those codes itself


# property tests: any code outside the value set breaks the binding

BOUND = [(CONDITION, "clinicalStatus"), (CONDITION, "verificationStatus"), (ALLERGY, "clinicalStatus")]
CODES = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(BOUND), code=CODES, keep_text=st.booleans())
def test_a_coding_mutated_out_of_the_value_set_is_refused(which, code, keep_text):
    resource, element = which
    binding = BINDINGS[f"{resource['resourceType']}.{element}"]
    (system,) = binding.codes
    mutated = copy.deepcopy(resource)
    mutated[element]["coding"][0]["code"] = code
    if keep_text:
        mutated[element]["text"] = code
    issues = rule_issues(mutated)
    if code in binding.codes[system]:
        assert issues == []
    else:
        assert [i.expression for i in issues] == [f"{resource['resourceType']}.{element}.coding[0]"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["status", "intent", "priority"]), code=CODES)
async def test_a_code_mutated_out_of_the_value_set_is_refused_over_http(client, field, code):
    mutated = _with(SERVICE_REQUEST, **{field: code})
    allowed = BINDINGS[f"ServiceRequest.{field}"].any_code
    response = await client.post("/ServiceRequest", json=mutated)
    if code in allowed:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == [f"ServiceRequest.{field}"]
