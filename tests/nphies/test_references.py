"""iter_references: every Reference below a node, with its path, in document order."""

from nphies_facade.nphies.references import iter_references


def test_finds_references_with_their_paths_in_document_order():
    claim = {
        "resourceType": "Claim",
        "patient": {"reference": "Patient/1"},
        "careTeam": [{"provider": {"reference": "Practitioner/2"}}, {"provider": {"display": "none"}}],
        "insurance": [{"coverage": {"reference": "Coverage/3"}, "sequence": 1}],
        "contained": [{"resourceType": "Patient", "link": [{"other": {"reference": "Patient/9"}}]}],
        "supportingInfo": [{"valueReference": {"reference": "#inline", "display": "x"}}],
    }
    found = [(f.path, f.reference) for f in iter_references(claim)]
    assert found == [
        ("patient", "Patient/1"),
        ("careTeam[0].provider", "Practitioner/2"),
        ("insurance[0].coverage", "Coverage/3"),
        ("supportingInfo[0].valueReference", "#inline"),
    ]


def test_enters_the_top_bundle_but_not_nested_ones_and_hands_out_the_elements():
    nested = {"resourceType": "Bundle", "entry": [{"resource": {"subject": {"reference": "Patient/9"}}}]}
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Task", "focus": {"reference": "Claim/1"}}},
            {"resource": {"resourceType": "Communication", "payload": [{"contentAttachment": nested}]}},
        ],
    }
    found = list(iter_references(bundle))
    assert [(f.path, f.reference) for f in found] == [("entry[0].resource.focus", "Claim/1")]
    found[0].element["reference"] = "urn:uuid:1"
    assert bundle["entry"][0]["resource"]["focus"]["reference"] == "urn:uuid:1"


def test_a_reference_that_is_not_a_string_is_not_one():
    assert list(iter_references({"subject": {"reference": 7}, "items": [1, "a", None]})) == []
