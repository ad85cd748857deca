"""Every official R4 example passes the binding and invariant checks, but the few that break a rule of the
R4 definitions themselves: those are named, with the reason, in tests/fixtures/r4-examples-refused-by-rules.json
and must be refused (exactly those)."""

import json
from pathlib import Path

import orjson

from nphies_facade.resources.rules import rule_issues

REFUSED_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "r4-examples-refused-by-rules.json"
REFUSED: dict[str, str] = json.loads(REFUSED_FILE.read_text())["refused"]


def test_exactly_the_named_official_examples_break_a_rule(r4_examples):
    broken = {}
    for path in r4_examples:
        resource = orjson.loads(path.read_bytes())
        if isinstance(resource, dict) and "resourceType" in resource:
            issues = rule_issues(resource)
            if issues:
                broken[path.name] = [f"{i.expression}: {i.diagnostics}" for i in issues]
    assert set(broken) == set(REFUSED), broken


async def test_the_named_examples_are_refused_over_http(client, r4_examples):
    by_name = {path.name: path for path in r4_examples}
    for name in REFUSED:
        resource = orjson.loads(by_name[name].read_bytes())
        response = await client.post(f"/{resource['resourceType']}", json=resource)
        assert 400 <= response.status_code < 500, (name, response.text)
        if response.status_code == 400:  # Bundle-dataelements is over the body limit (413) anyway
            assert response.json()["issue"][0]["code"] in ("code-invalid", "invariant"), name
