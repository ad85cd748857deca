"""The profile checks: required elements, fixed values and bindings from the NPHIES tables, as issues."""

from nphies_facade.profiles import check_message, has_errors, operation_outcome

from .samples import scenario


def _built(sample: str = "official_priorauth-request_pharmacy.json") -> dict:
    return scenario(sample).message().bundle


def _entry(bundle: dict, resource_type: str) -> tuple[int, dict]:
    return next(
        (i, e["resource"])
        for i, e in enumerate(bundle["entry"])
        if e["resource"]["resourceType"] == resource_type
    )


def test_a_missing_required_element_is_reported_where_nphies_would_with_its_rule() -> None:
    bundle = _built()
    position, coverage = _entry(bundle, "Coverage")
    del coverage["policyHolder"]
    [issue] = check_message(bundle)
    assert (issue.code, issue.rule) == ("required", "IC-01564")
    assert issue.expression == f"Bundle.entry[{position}].resource.policyHolder"
    assert "mandatory since profiles v5.2" in issue.message


def test_required_children_are_only_required_where_their_parent_exists() -> None:
    bundle = _built()
    _, claim = _entry(bundle, "Claim")
    claim.pop("accident", None)
    assert check_message(bundle) == []
    claim["accident"] = {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "MVA"}]}
    }
    assert [i.expression.rsplit(".", 1)[1] for i in check_message(bundle)] == ["date"]


def test_fixed_values_and_the_claim_profile_type_and_use_are_enforced() -> None:
    bundle = _built()
    _, claim = _entry(bundle, "Claim")
    claim["status"] = "draft"
    claim["use"] = "claim"
    found = {(i.code, i.expression.rsplit(".", 1)[1]) for i in check_message(bundle)}
    assert found == {("value", "status"), ("value", "use")}


def test_codes_outside_the_bound_value_set_are_reported() -> None:
    bundle = _built()
    _, coverage = _entry(bundle, "Coverage")
    coverage["type"]["coding"][0]["code"] = "GOLD"
    _, claim = _entry(bundle, "Claim")
    claim["priority"]["coding"][0]["system"] = "http://example.org/priority"
    issues = check_message(bundle)
    assert {(i.code, i.expression.rsplit(".", 1)[1]) for i in issues} == {
        ("code-invalid", "type"),
        ("code-invalid", "priority"),
    }
    assert "GOLD" in next(i.message for i in issues if i.expression.endswith("type"))


def test_provider_organization_without_provider_type_is_reported() -> None:
    bundle = _built()
    organization = next(
        e["resource"] for e in bundle["entry"] if "provider-organization" in str(e["resource"].get("meta"))
    )
    organization.pop("extension")
    [issue] = check_message(bundle)
    assert (issue.rule, issue.expression.endswith(".extension")) == ("IC-01574", True)


def test_a_resource_without_an_nphies_profile_and_a_non_message_bundle_are_reported() -> None:
    bundle = _built()
    _, patient = _entry(bundle, "Patient")
    patient["meta"] = {}
    bundle["type"] = "collection"
    rules = {i.rule for i in check_message(bundle)}
    assert "IC-00246" in rules  # Patient.meta.profile
    assert any(i.code == "value" and i.expression == "Bundle.type" for i in check_message(bundle))


def test_issues_become_an_operation_outcome_with_nphies_codes() -> None:
    bundle = _built()
    _, coverage = _entry(bundle, "Coverage")
    del coverage["policyHolder"]
    issues = check_message(bundle)
    outcome = operation_outcome(issues)
    assert has_errors(issues) and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "IC-01564"
    assert outcome["issue"][0]["expression"] == [issues[0].expression]
    assert operation_outcome([])["issue"][0]["severity"] == "information"
