"""Invalid input, class by class, is refused through real HTTP with a 4xx OperationOutcome that locates
the problem, and nothing is stored."""

import json

import pytest

from nphies_facade.resources.types import is_supported

LONG = "x" * (1024 * 1024 + 1)
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def narrative(div: str) -> dict:
    return {"resourceType": "Patient", "text": {"status": "generated", "div": div}}


# (name, resource, expected expression of one issue)
CORPUS = {
    "types": [
        ("boolean as a string", {"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ("false as a string", {"resourceType": "Patient", "active": "false"}, "Patient.active"),
        ("a number for a dateTime", {"resourceType": "Encounter", "status": "planned",
            "class": {"code": "AMB"}, "period": {"start": 20200101}}, "Encounter.period.start"),
        ("a string for an integer", {"resourceType": "Patient", "multipleBirthInteger": "2"},
            "Patient.multipleBirthInteger"),
        ("a fraction for an integer", {"resourceType": "Patient", "multipleBirthInteger": 1.5},
            "Patient.multipleBirthInteger"),
        ("an integer over 32 bits", {"resourceType": "Patient", "multipleBirthInteger": 2**31},
            "Patient.multipleBirthInteger"),
        ("zero for a positiveInt", {"resourceType": "Claim", "status": "active", "type": {"text": "x"},
            "use": "claim", "patient": {"reference": "Patient/1"}, "created": "2020-01-01",
            "provider": {"reference": "Organization/1"}, "priority": {"text": "normal"},
            "insurance": [{"sequence": 0, "focal": True, "coverage": {"reference": "Coverage/1"}}]},
            "Claim.insurance[0].sequence"),
        ("an object where a list is", {"resourceType": "Patient", "name": {"family": "x"}}, "Patient.name"),
        ("a list where one value is", {"resourceType": "Patient", "gender": ["male"]}, "Patient.gender"),
        ("a string for a complex type", {"resourceType": "Patient", "maritalStatus": "M"},
            "Patient.maritalStatus"),
        ("a null", {"resourceType": "Patient", "active": None}, "Patient.active"),
        ("a date that does not exist", {"resourceType": "Patient", "birthDate": "1990-02-30"}, "Patient.birthDate"),
        ("a malformed date", {"resourceType": "Patient", "birthDate": "1990-1-1"}, "Patient.birthDate"),
        ("a dateTime without zone", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "effectiveDateTime": "2020-01-01T10:00:00"}, "Observation.effectiveDateTime"),
        ("an id with a space", {"resourceType": "Patient", "id": "a b"}, "Patient.id"),
        ("two choice types", {"resourceType": "Patient", "deceasedBoolean": True,
            "deceasedDateTime": "2020"}, "Patient"),
        ("a required choice missing", {"resourceType": "MedicationRequest", "status": "active",
            "intent": "order", "subject": {"reference": "Patient/1"}}, "MedicationRequest"),
        ("a required element missing", {"resourceType": "Observation", "status": "final"}, "Observation"),
        ("a required element missing in a backbone", {"resourceType": "Patient", "communication": [
            {"preferred": True}]}, "Patient.communication[0]"),
    ],
    "codes": [
        ("gender", {"resourceType": "Patient", "gender": "nope"}, "Patient.gender"),
        ("Observation.status", {"resourceType": "Observation", "status": "not-a-status",
            "code": {"text": "x"}}, "Observation.status"),
        ("Claim.use", {"resourceType": "Claim", "status": "active", "type": {"text": "x"}, "use": "bogus",
            "patient": {"reference": "Patient/1"}, "created": "2020-01-01",
            "provider": {"reference": "Organization/1"}, "priority": {"text": "normal"},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/1"}}]},
            "Claim.use"),
        ("Task.intent", {"resourceType": "Task", "status": "draft", "intent": "wish"}, "Task.intent"),
        ("Task.status case", {"resourceType": "Task", "status": "Draft", "intent": "order"}, "Task.status"),
        ("a code in a repeating element", {"resourceType": "AllergyIntolerance", "patient": {
            "reference": "Patient/1"}, "category": ["food", "weather"]}, "AllergyIntolerance.category[1]"),
        ("a code of a nested element", {"resourceType": "Patient", "telecom": [{"system": "pager2"}]},
            "Patient.telecom[0].system"),
    ],
    "narrative": [
        ("script", narrative(f"<div {XHTML}><script>alert(1)</script></div>"), "Patient.text.div"),
        ("event attribute", narrative(f'<div {XHTML}><p onclick="alert(1)">x</p></div>'), "Patient.text.div"),
        ("event attribute on the root", narrative(f'<div {XHTML} onmouseover="alert(1)">x</div>'),
            "Patient.text.div"),
        ("javascript link", narrative(f'<div {XHTML}><a href="javascript:alert(1)">x</a></div>'),
            "Patient.text.div"),
        ("javascript link with entities", narrative(
            f'<div {XHTML}><a href="&#106;avascript:alert(1)">x</a></div>'), "Patient.text.div"),
        ("javascript link with a tab", narrative(f'<div {XHTML}><a href="java&#9;script:x">x</a></div>'),
            "Patient.text.div"),
        ("data URL link", narrative(f'<div {XHTML}><a href="data:text/html,&lt;script&gt;">x</a></div>'),
            "Patient.text.div"),
        ("svg image", narrative(f'<div {XHTML}><img src="data:image/svg+xml,x" alt="x"/></div>'),
            "Patient.text.div"),
        ("iframe", narrative(f'<div {XHTML}><iframe src="http://x"/>x</div>'), "Patient.text.div"),
        ("object", narrative(f'<div {XHTML}><object data="x">x</object></div>'), "Patient.text.div"),
        ("form", narrative(f'<div {XHTML}><form><input/></form>x</div>'), "Patient.text.div"),
        ("style element", narrative(f"<div {XHTML}><style>p {{}}</style>x</div>"), "Patient.text.div"),
        ("link element", narrative(f'<div {XHTML}><link rel="stylesheet" href="x"/>x</div>'),
            "Patient.text.div"),
        ("css url", narrative(f'<div {XHTML}><p style="background:url(http://x/y)">x</p></div>'),
            "Patient.text.div"),
        ("css expression", narrative(f'<div {XHTML}><p style="width:expression(alert(1))">x</p></div>'),
            "Patient.text.div"),
        ("css escape", narrative(f'<div {XHTML}><p style="background:\\75rl(x)">x</p></div>'),
            "Patient.text.div"),
        ("svg namespace", narrative(f'<div {XHTML}><svg xmlns="http://www.w3.org/2000/svg"/>x</div>'),
            "Patient.text.div"),
        ("namespace redeclared", narrative(f'<div {XHTML}><p xmlns="urn:x">x</p></div>'), "Patient.text.div"),
        ("xlink attribute", narrative(
            f'<div {XHTML} xmlns:xlink="http://www.w3.org/1999/xlink"><a xlink:href="x">x</a></div>'),
            "Patient.text.div"),
        ("no namespace", narrative("<div>x</div>"), "Patient.text.div"),
        ("root not a div", narrative(f"<p {XHTML}>x</p>"), "Patient.text.div"),
        ("not well-formed", narrative(f"<div {XHTML}><p>x</div>"), "Patient.text.div"),
        ("HTML entity", narrative(f"<div {XHTML}>a&nbsp;b</div>"), "Patient.text.div"),
        ("doctype", narrative(f'<!DOCTYPE div [<!ENTITY e "x">]><div {XHTML}>&e;</div>'), "Patient.text.div"),
        ("processing instruction", narrative(f"<?xml version='1.0'?><div {XHTML}>x</div>"),
            "Patient.text.div"),
        ("empty narrative", narrative(f"<div {XHTML}>  </div>"), "Patient.text.div"),
        ("body", narrative(f"<div {XHTML}><body>x</body></div>"), "Patient.text.div"),
        ("narrative in a contained resource", {"resourceType": "Patient", "contained": [
            {"resourceType": "Organization", "id": "o", "text": {"status": "generated",
             "div": f"<div {XHTML}><script>x</script></div>"}}]}, "Patient.contained[0].text.div"),
    ],
    "empties": [
        ("empty string", {"resourceType": "Patient", "name": [{"family": ""}]}, "Patient.name[0].family"),
        ("empty string in a list", {"resourceType": "Patient", "name": [{"given": ["a", ""]}]},
            "Patient.name[0].given[1]"),
        ("empty uri", {"resourceType": "Patient", "identifier": [{"system": "", "value": "1"}]},
            "Patient.identifier[0].system"),
        ("empty object", {"resourceType": "Patient", "maritalStatus": {}}, "Patient.maritalStatus"),
        ("empty object in a list", {"resourceType": "Patient", "name": [{}]}, "Patient.name[0]"),
        ("empty array", {"resourceType": "Patient", "name": []}, "Patient.name"),
        ("empty primitive extension", {"resourceType": "Patient", "_birthDate": {}}, "Patient._birthDate"),
    ],
    "limits": [
        ("string over 1 MB", {"resourceType": "Patient", "name": [{"text": LONG}]}, "Patient.name[0].text"),
    ],
    "control characters": [
        ("NUL", {"resourceType": "Patient", "name": [{"text": "a\u0000b"}]}, "Patient.name[0].text"),
        ("escape", {"resourceType": "Patient", "name": [{"family": "a\u001bb"}]}, "Patient.name[0].family"),
        ("in a code", {"resourceType": "Patient", "language": "en\u0007"}, "Patient.language"),
        ("in a uri", {"resourceType": "Patient", "implicitRules": "http://x\u0001"}, "Patient.implicitRules"),
        ("in markdown", {"resourceType": "Patient", "extension": [
            {"url": "http://x", "valueMarkdown": "a\u0008"}]}, "Patient.extension[0].valueMarkdown"),
    ],
    "unknown elements": [
        ("top level", {"resourceType": "Patient", "notAnElement": 1}, "Patient.notAnElement"),
        ("nested", {"resourceType": "Patient", "name": [{"family": "x", "surname": "y"}]},
            "Patient.name[0].surname"),
        ("R4B-only element", {"resourceType": "Patient", "contact": [{"name": {"text": "x"},
            "organization": {"reference": "Organization/1"}, "role": "x"}]}, "Patient.contact[0].role"),
        ("primitive extension of a complex element", {"resourceType": "Patient", "_name": [{"id": "x"}]},
            "Patient._name"),
        ("extension of the div", {"resourceType": "Patient", "text": {"status": "generated",
            "div": f"<div {XHTML}>x</div>", "_div": {"id": "a"}}}, "Patient.text._div"),
        ("modifierExtension on an Element", {"resourceType": "Patient", "extension": [{"url": "http://x",
            "valueTiming": {"repeat": {"count": 1, "modifierExtension": [{"url": "http://y",
            "valueBoolean": True}]}}}]}, "Patient.extension[0].valueTiming.repeat.modifierExtension"),
    ],
    "fhir_comments": [
        ("top level", {"resourceType": "Patient", "fhir_comments": ["x"]}, "Patient.fhir_comments"),
        ("nested", {"resourceType": "Patient", "name": [{"fhir_comments": ["x"], "family": "y"}]},
            "Patient.name[0].fhir_comments"),
    ],
    "wrong-version types": [
        ("R4B-only type", {"resourceType": "Citation", "status": "draft"}, "resourceType"),
        ("R5-only type", {"resourceType": "ActorDefinition", "status": "draft"}, "resourceType"),
        ("DSTU2-only type", {"resourceType": "Order"}, "resourceType"),
        ("abstract type", {"resourceType": "DomainResource"}, "resourceType"),
        ("R4B Evidence shape", {"resourceType": "Evidence", "status": "draft",
            "variableDefinition": [{"variableRole": {"text": "population"}}]}, "Evidence.variableDefinition"),
        ("an R4B-only type contained", {"resourceType": "Patient", "contained": [
            {"resourceType": "Citation", "id": "c", "status": "draft"}]}, "Patient.contained[0].resourceType"),
    ],
}  # fmt: skip
CASES = [(kind, name, resource, at) for kind, cases in CORPUS.items() for name, resource, at in cases]


@pytest.mark.parametrize(
    ("kind", "name", "resource", "expression"), CASES, ids=[f"{k}: {n}" for k, n, _, _ in CASES]
)
async def test_invalid_input_is_refused_with_a_located_outcome_and_nothing_stored(
    client, kind, name, resource, expression
):
    known = is_supported(resource["resourceType"])
    posted_to = resource["resourceType"] if known else "Patient"
    if not known:
        assert (await client.post(f"/{resource['resourceType']}", json=resource)).status_code == 404
    response = await client.post(f"/{posted_to}", content=json.dumps(resource))
    assert 400 <= response.status_code < 500, response.text[:300]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    located = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert expression in located, outcome
    put = await client.put(f"/{posted_to}/probe", content=json.dumps({"id": "probe", **resource}))
    assert 400 <= put.status_code < 500
    assert (await client.get(f"/{posted_to}", params={"_summary": "count"})).json()["total"] == 0


async def test_issues_name_each_problem_once(client):
    resource = {"resourceType": "Patient", "active": "yes", "gender": "nope", "name": [{"given": ["a", ""]}],
                "deceasedBoolean": True, "deceasedDateTime": "2020", "foo": 1}  # fmt: skip
    response = await client.post("/Patient", json=resource)
    assert response.status_code == 400
    located = sorted(i["expression"][0] for i in response.json()["issue"])
    assert located == [
        "Patient",
        "Patient.active",
        "Patient.foo",
        "Patient.gender",
        "Patient.name[0].given[1]",
    ]


DUPLICATES = [
    b'{"resourceType":"Patient","active":true,"active":false}',
    b'{"resourceType":"Patient","name":[{"family":"a","family":"b"}]}',
    b'{"resourceType": "Patient", "gender" : "male",\n  "gender" : "female"}',
    b'{"resourceType":"Patient","name":[{"text":"say \\"hi\\": x","text":"y"}]}',
    b'{"resourceType":"Patient","name":[{"text":"back\\\\","text":"slash"}]}',
    b'{"resourceType":"Patient","resourceType":"Patient"}',
]


@pytest.mark.parametrize("body", DUPLICATES)
async def test_duplicate_json_keys_are_refused(client, body):
    response = await client.post("/Patient", content=body)
    assert response.status_code == 400, response.text
    assert "appears twice" in response.json()["issue"][0]["diagnostics"]
    assert (await client.get("/Patient", params={"_summary": "count"})).json()["total"] == 0


async def test_escaped_quotes_and_colons_in_values_are_not_taken_for_duplicates(client):
    body = b'{"resourceType":"Patient","name":[{"text":"a\\": \\"b\\":c"}],"gender":"male"}'
    response = await client.post("/Patient", content=body)
    assert response.status_code == 201, response.text
    assert response.json()["name"][0]["text"] == 'a": "b":c'


async def test_duplicate_keys_inside_a_transaction_are_refused(client):
    body = (
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient",'
        b'"active":true,"active":false},"request":{"method":"POST","url":"Patient"}}]}'
    )
    response = await client.post("/", content=body)
    assert response.status_code == 400
    assert (await client.get("/Patient", params={"_summary": "count"})).json()["total"] == 0


async def test_an_invalid_entry_fails_a_transaction_and_stores_nothing(client):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "nope"}, "request": {"method": "POST", "url": "Patient"}},
    ]}  # fmt: skip
    response = await client.post("/", json=bundle)
    assert 400 <= response.status_code < 500
    assert any("gender" in e for i in response.json()["issue"] for e in i.get("expression", []))
    assert (await client.get("/Patient", params={"_summary": "count"})).json()["total"] == 0
