"""Operations authorise everything they do: a token that may only read gets 403 with an OperationOutcome
for $submit, $cancel, $eligibility, $poll and the Task and Subscription operations, and nothing is written
or sent to NPHIES; administration ($reindex) needs the admin role and system/*.*; the CapabilityStatement
and docs/security.md list each operation's needs from the same declarations."""

from pathlib import Path

import pytest

from nphies_facade.resources.operations_access import requirements_table
from nphies_facade.server.operation_catalog import DECLARATIONS

from ..nphies.samples import EXAMPLES
from ..operations.helpers import handled
from ..operations.material import ELIGIBILITY, VISION_PA, material, store

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="needs the NPHIES samples")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
WRITTEN_TYPES = ("Task", "DocumentReference", "CoverageEligibilityRequest", "CoverageEligibilityResponse")


@pytest.fixture
async def admin(as_token):
    async with as_token("system/*.cruds") as client:
        yield client


async def counts(admin) -> dict[str, int]:
    found = {}
    for resource_type in WRITTEN_TYPES:
        response = await admin.get(f"/{resource_type}", params={"_summary": "count"})
        found[resource_type] = response.json()["total"]
    return found


@pytest.fixture
async def stored(admin):
    """A Claim and a Coverage from the NPHIES samples, a plain Task and a Subscription."""
    claim = material(VISION_PA)
    eligibility = material(ELIGIBILITY)
    await store(admin, claim)
    await store(admin, eligibility)
    task = {"resourceType": "Task", "id": "plain", "status": "requested", "intent": "order"}
    assert (await admin.put("/Task/plain", json=task)).status_code == 201
    subscription = {
        "resourceType": "Subscription",
        "id": "hook",
        "status": "off",
        "reason": "test",
        "criteria": "Patient?",
        "channel": {
            "type": "rest-hook",
            "endpoint": "http://127.0.0.1:9/hook",
            "payload": "application/fhir+json",
        },
    }
    assert (await admin.put("/Subscription/hook", json=subscription)).status_code == 201
    return {"claim": claim.claim, "coverage": eligibility.coverage}


def refused(response) -> str:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "forbidden"
    return body["issue"][0]["diagnostics"]


async def test_a_read_only_token_runs_no_operation_and_nothing_is_written_or_sent(stored, admin, as_token):
    before, sent = await counts(admin), await handled(admin)
    async with as_token("system/*.rs") as reader:
        assert "create on Task" in refused(await reader.post(f"/{stored['claim']}/$submit"))
        assert "create on Task" in refused(await reader.post(f"/{stored['claim']}/$cancel"))
        eligibility = await reader.post(f"/{stored['coverage']}/$eligibility")
        assert "create on CoverageEligibilityRequest" in refused(eligibility)
        for operation in ("poll", "approve", "reject", "retry", "skip"):
            assert "update on Task" in refused(await reader.post(f"/Task/plain/${operation}"))
        assert "update on Subscription" in refused(await reader.post("/Subscription/hook/$resend"))
        assert "administration" in refused(await reader.post("/$reindex"))
        assert (await reader.get("/Subscription/hook/$status")).status_code == 200
    assert await counts(admin) == before, "nothing was written"
    assert await handled(admin) == sent, "nothing went to NPHIES"


async def test_the_declared_scopes_are_enough_to_run_an_operation(stored, as_token):
    submit_scopes = "system/Claim.r system/Task.cr system/DocumentReference.c"
    async with as_token(submit_scopes) as submitter:
        response = await submitter.post(f"/{stored['claim']}/$submit")
        assert response.status_code == 202, response.text
    async with as_token("system/Claim.r system/Task.r system/DocumentReference.c") as no_create:
        assert "create on Task" in refused(await no_create.post(f"/{stored['claim']}/$submit"))
    eligibility_scopes = (
        "system/Coverage.r system/CoverageEligibilityRequest.c system/CoverageEligibilityResponse.cr "
        "system/DocumentReference.c"
    )
    async with as_token(eligibility_scopes) as asker:
        response = await asker.post(f"/{stored['coverage']}/$eligibility")
        assert response.status_code == 200, response.text


async def test_administration_needs_the_admin_role_and_the_full_system_scope(two_types_stored, as_token):
    async with as_token("system/*.*") as no_role:
        assert "admin role" in refused(await no_role.post("/$reindex"))
        assert "admin role" in refused(await no_role.get("/Patient/$reindex"))
    async with as_token("system/*.rs", role="admin") as reader_admin:
        assert "admin role" in refused(await reader_admin.post("/$reindex"))
    async with as_token("system/*.*", role="admin") as operator:
        started = await operator.post("/Patient/$reindex")
        assert started.status_code == 200, started.text
        assert (await operator.get("/$reindex")).status_code == 200


@pytest.fixture
async def two_types_stored(admin):
    assert (await admin.put("/Patient/p", json={"resourceType": "Patient", "id": "p"})).status_code == 201


async def test_the_capability_statement_lists_what_each_operation_needs(anon):
    statement = (await anon.get("/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    submit = next(o for o in resources["Claim"]["operation"] if o["name"] == "submit")
    needs = [e["valueString"] for e in submit["extension"]]
    assert needs == ["read Claim", "create Task", "read Task", "create DocumentReference"]
    assert "Needs: read Claim, create Task" in submit["documentation"]
    reindex = next(o for o in statement["rest"][0]["operation"] if o["name"] == "reindex")
    assert reindex["extension"][0]["valueString"] == "administration"
    resend = next(o for o in resources["Subscription"]["operation"] if o["name"] == "resend")
    assert [e["valueString"] for e in resend["extension"]] == ["read Subscription", "update Subscription"]


def test_the_security_guide_shows_the_generated_requirements_table():
    assert requirements_table(DECLARATIONS) in DOCS.read_text(), (
        "docs/security.md is out of date: paste `python -m nphies_facade.server.operation_catalog`"
    )
