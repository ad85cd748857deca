"""SMART App Launch end to end in headless chromium, with SMART's own JavaScript client (fhirclient):
a patient's standalone launch reading their Coverage and their claims' Tasks, a practitioner's launch
through the patient picker (in Arabic) refused a patient of another organization by ABAC (answered 404,
as if absent), a refresh and
a revocation."""

from urllib.parse import urlencode

import httpx
import pytest

from tests.security.launch_support import PASSWORD

pytestmark = pytest.mark.integration

PATIENT_SCOPES = (
    "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Coverage.rs "
    "patient/Claim.rs patient/Task.rs"
)
PRACTITIONER_SCOPES = "launch/patient openid fhirUser online_access user/Patient.rs user/Coverage.rs"

READ_COVERAGE_AND_TASKS = """async () => {
  const c = window.client;
  const coverage = await c.request("Coverage?patient=" + c.patient.id, {flat: true});
  const claims = await c.request("Claim?patient=" + c.patient.id, {flat: true});
  const focus = claims.map(claim => "Claim/" + claim.id).join(",");
  const tasks = await c.request("Task?focus=" + focus, {flat: true});
  return {
    patient: c.patient.id,
    user: c.getFhirUser(),
    coverage: coverage.map(r => r.id),
    claims: claims.map(r => r.id),
    tasks: tasks.map(r => r.id + ":" + r.focus.reference),
    refresh: Boolean(c.state.tokenResponse.refresh_token),
  };
}"""

REFRESH = """async () => {
  const c = window.client;
  const before = c.state.tokenResponse.access_token;
  await c.refresh();
  const patient = await c.request("Patient/" + c.patient.id);
  return {rotated: c.state.tokenResponse.access_token !== before, family: patient.name[0].family};
}"""

REVOKE = """async (tokenEndpoint) => {
  const c = window.client;
  const revokeUrl = tokenEndpoint.replace(/token$/, "revoke");
  const body = "client_id=portal&token=" + encodeURIComponent(c.state.tokenResponse.refresh_token);
  const revoked = await fetch(revokeUrl, {
    method: "POST", headers: {"content-type": "application/x-www-form-urlencoded"}, body
  });
  const answer = {revoke: revoked.status};
  try {
    await c.request("Patient/" + c.patient.id);
    answer.after = "still readable";
  } catch (error) {
    answer.after = error.status || error.statusCode || String(error);
  }
  return answer;
}"""

READ_TWO_PATIENTS = """async () => {
  const c = window.client;
  const own = await c.request("Patient/p1");
  try {
    await c.request("Patient/p2");
    return {own: own.id, other: "readable"};
  } catch (error) {
    return {own: own.id, other: error.status || error.statusCode || String(error)};
  }
}"""


def launch(page, server, scope: str) -> None:
    query = urlencode({"iss": server.url, "scope": scope})
    page.goto(f"{server.app.origin}/launch.html?{query}")
    page.wait_for_url(f"{server.url}/auth/login")


def log_in(page, username: str) -> None:
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def wait_until_ready(page, server) -> None:
    page.wait_for_url(f"{server.app.origin}/app.html*")
    page.wait_for_function("document.getElementById('status').textContent !== 'waiting'")
    assert page.text_content("#status") == "ready"


def test_a_patient_launch_reads_their_coverage_and_claim_tasks_refreshes_and_revokes(page, launch_server):
    launch(page, launch_server, PATIENT_SCOPES)
    assert page.get_attribute("html", "dir") == "ltr"
    log_in(page, "noura")
    page.wait_for_url(f"{launch_server.url}/auth/consent")
    assert page.locator("input[name=scope]").count() == len(PATIENT_SCOPES.split())
    page.click("button[value=allow]")
    wait_until_ready(page, launch_server)

    read = page.evaluate(READ_COVERAGE_AND_TASKS)
    assert read == {
        "patient": "p1",
        "user": "Patient/p1",
        "coverage": ["c1"],
        "claims": ["cl1"],
        "tasks": ["t1:Claim/cl1"],
        "refresh": True,
    }
    assert page.evaluate(REFRESH) == {"rotated": True, "family": "Alharbi"}
    token_endpoint = page.evaluate("window.client.state.tokenUri")
    assert page.evaluate(REVOKE, token_endpoint) == {"revoke": 200, "after": 401}


def test_a_practitioner_picks_a_patient_in_arabic_and_is_refused_another_organizations(page, launch_server):
    launch(page, launch_server, PRACTITIONER_SCOPES)
    page.click("a.language")
    assert page.get_attribute("html", "dir") == "rtl" and page.get_attribute("html", "lang") == "ar"
    log_in(page, "dr")
    page.wait_for_url(f"{launch_server.url}/auth/picker")
    choices = page.locator("ul.choices li").all_text_contents()
    assert len(choices) == 1 and "Alharbi" in choices[0]  # p2 belongs to another organization
    assert page.get_attribute("html", "dir") == "rtl"
    page.check("input[value=p1]")
    page.click("form[method=post] button[type=submit]")
    page.wait_for_url(f"{launch_server.url}/auth/consent")
    page.click("button[value=allow]")
    wait_until_ready(page, launch_server)

    assert page.evaluate("window.client.patient.id") == "p1"
    assert page.evaluate("window.client.getFhirUser()") == "Practitioner/dr1"
    # p2 exists, but the ABAC rule hides it from this practitioner: refused, answered as not found (no
    # existence oracle: a refusal on what a resource holds looks like a missing resource)
    assert page.evaluate(READ_TWO_PATIENTS) == {"own": "p1", "other": 404}
    behind = httpx.get(
        f"{launch_server.url}/Patient/p2", headers={"Authorization": f"Bearer {launch_server.system_token}"}
    )
    assert behind.status_code == 200
