"""Every official R4 example's references pass the reference walk (form and target types from the R4
StructureDefinitions), but for the few the package itself gets wrong, named with the reason."""

import json

from nphies_facade.resources.reference_walk import walk_references

from .examples import FIXTURES


def refused_by_references() -> dict[str, str]:
    return json.loads((FIXTURES / "r4-examples-refused-by-references.json").read_text())["refused"]


def test_only_the_listed_official_examples_have_bad_references(r4_resources):
    refused = {
        name: [issue.diagnostics for issue in walk_references(json.loads(json.dumps(resource))).issues]
        for name, resource in r4_resources.items()
    }
    assert {name for name, issues in refused.items() if issues} == set(refused_by_references())
