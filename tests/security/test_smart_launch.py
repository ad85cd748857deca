"""SMART App Launch with the built-in authorization server, in process: users and apps registered with
the CLI, the authorization code flow with PKCE through the login, picker and consent pages, the token
endpoint's code and refresh grants, introspection, revocation, EHR launch, and the attacks on the flow."""

import json
import uuid

import jwt
import pytest

from nphies_facade.resources.audit import verify_chain
from nphies_facade.server.auth.clients import ClientRecord
from nphies_facade.server.auth.token_endpoint import ASSERTION_TYPE

from .conftest import BASE, bearer
from .launch_support import (
    APP_REDIRECT,
    FORM,
    PASSWORD,
    Browser,
    add_app,
    add_user,
    csrf_of,
    query_of,
    run_cli,
)


def practitioner(pid: str) -> dict:
    return {"resourceType": "Practitioner", "id": pid, "name": [{"family": "Alqahtani", "given": ["Sara"]}]}


def patient_of(pid: str, family: str, organization: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": ["Noura"]}],
        "birthDate": "1990-04-01",
        "managingOrganization": {"reference": f"Organization/{organization}"},
    }


def coverage(cid: str, pid: str) -> dict:
    return {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"reference": "Organization/payer"}],
    }


def encounter(eid: str, pid: str, practitioner_id: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"individual": {"reference": f"Practitioner/{practitioner_id}"}}],
    }


@pytest.fixture
async def world(secure_settings, as_token, anon):
    """p1 (the portal user's own record, cared for by dr1), p2 (nobody's), their coverages; the users
    noura (Patient/p1), dr (Practitioner/dr1) and the public app `portal`."""
    system = as_token("system/*.cruds")
    organizations = [
        {"resourceType": "Organization", "id": o, "name": o} for o in ("org-a", "org-b", "payer")
    ]
    for resource in (
        *organizations,
        practitioner("dr1"),
        patient_of("p1", "Alharbi", "org-a"),
        patient_of("p2", "Alzahrani", "org-b"),
        coverage("c1", "p1"),
        coverage("c2", "p2"),
        encounter("e1", "p1", "dr1"),
    ):
        response = await system.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
        assert response.status_code in (200, 201), response.text
    data_dir = secure_settings.data_dir
    await add_user(data_dir, "noura", "Patient/p1", "--role", "patient")
    await add_user(data_dir, "dr", "Practitioner/dr1", "--role", "practitioner", "--organization", "org-a")
    await add_app(data_dir)
    return system


@pytest.fixture
def browser(anon) -> Browser:
    return Browser(anon, BASE)


async def tokens_for(browser: Browser, username: str = "noura", **overrides) -> dict:
    code = await browser.code_for(username, **overrides)
    response = await browser.exchange(code)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_patient_user_gets_their_own_record_as_context_and_an_id_token(world, browser, anon):
    body = await tokens_for(browser)
    assert body["patient"] == "p1" and body["token_type"] == "Bearer"
    assert body["fhirUser"] == f"{BASE}/Patient/p1"
    assert set(body["scope"].split()) >= {"patient/Patient.rs", "patient/Coverage.rs", "openid", "fhirUser"}
    id_token = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_token["fhirUser"] == f"{BASE}/Patient/p1" and id_token["aud"] == "portal"
    assert id_token["iss"] == f"{BASE}/auth"
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert access["role"] == "patient" and access["patient"] == "Patient/p1" and "noura" not in str(access)
    token = body["access_token"]
    assert (await anon.get("/Patient/p1", headers=bearer(token))).status_code == 200
    coverages = (await anon.get("/Coverage", headers=bearer(token))).json()
    assert [e["resource"]["id"] for e in coverages.get("entry", [])] == ["c1"]
    assert (await anon.get("/Coverage/c2", headers=bearer(token))).status_code in (403, 404)
    assert "refresh_token" in body


async def test_unknown_app_or_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(world, browser):
    wrong_redirect = await browser.authorize(redirect_uri="https://evil.example/callback")
    assert wrong_redirect.status_code == 400 and "location" not in wrong_redirect.headers
    assert "redirect_uri is not registered" in wrong_redirect.text
    near_miss = await browser.authorize(redirect_uri=APP_REDIRECT + "/")
    assert near_miss.status_code == 400 and "location" not in near_miss.headers
    unknown = await browser.authorize(client_id="stranger")
    assert unknown.status_code == 400 and "location" not in unknown.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "plain is refused"),
        ({"code_challenge_method": None, "code_challenge": None}, "PKCE"),
        ({"response_type": "token"}, "response_type=code"),
        ({"aud": "https://other.example/fhir"}, "aud"),
        ({"state": None}, "state"),
    ],
)
async def test_bad_authorization_requests_go_back_to_the_app_as_errors(world, browser, overrides, error):
    response = await browser.authorize(**overrides)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(APP_REDIRECT + "?")
    query = query_of(location)
    assert (
        query["error"] in ("invalid_request", "unsupported_response_type")
        and error in query["error_description"]
    )
    assert "code" not in query


async def test_code_exchange_refuses_wrong_redirect_uri_and_missing_or_wrong_verifier(world, anon):
    for overrides in (
        {"redirect_uri": "https://portal.example/other"},
        {"code_verifier": None},
        {"code_verifier": "x" * 43},
    ):
        browser = Browser(anon, BASE)
        code = await browser.code_for("noura")
        refused = await browser.exchange(code, **overrides)
        assert refused.status_code in (400, 401), (overrides, refused.text)
        assert refused.json()["error"] in ("invalid_grant", "invalid_client")
        # the code was spent by the failed attempt: the right verifier no longer helps
        assert (await browser.exchange(code)).json()["error"] == "invalid_grant"
    browser = Browser(anon, BASE)
    code = await browser.code_for("noura")
    stranger = await browser.exchange(code, client_id="someone-else")
    assert stranger.status_code == 401 and stranger.json()["error"] == "invalid_client"


async def test_code_reuse_revokes_the_tokens_issued_from_it(world, browser, anon):
    code = await browser.code_for("noura")
    first = await browser.exchange(code)
    assert first.status_code == 200
    token = first.json()["access_token"]
    assert (await anon.get("/Patient/p1", headers=bearer(token))).status_code == 200
    replay = await browser.exchange(code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert "revoked" in replay.json()["error_description"]
    after = await anon.get("/Patient/p1", headers=bearer(token))
    assert after.status_code == 401 and "revoked" in after.headers["www-authenticate"]
    assert (await browser.refresh(first.json()["refresh_token"])).json()["error"] == "invalid_grant"


async def test_an_expired_code_is_refused(world, browser, clock):
    code = await browser.code_for("noura")
    clock.advance(seconds=61)
    expired = await browser.exchange(code)
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]


async def test_refresh_tokens_rotate_and_one_used_twice_revokes_its_family(world, browser, anon):
    body = await tokens_for(browser)
    first_refresh = body["refresh_token"]
    rotated = await browser.refresh(first_refresh)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first_refresh and second["patient"] == "p1"
    assert (await anon.get("/Patient/p1", headers=bearer(second["access_token"]))).status_code == 200

    replay = await browser.refresh(first_refresh)
    assert replay.status_code == 400 and "revoked" in replay.json()["error_description"]
    for token in (body["access_token"], second["access_token"]):
        assert (await anon.get("/Patient/p1", headers=bearer(token))).status_code == 401
    assert (await browser.refresh(second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_without_offline_or_online_access_no_refresh_token_is_issued(world, browser):
    body = await tokens_for(browser, scope="launch/patient patient/Patient.rs")
    assert "refresh_token" not in body and "id_token" not in body


async def test_the_login_and_consent_forms_refuse_a_missing_or_wrong_csrf_token(world, browser, anon):
    await browser.authorize()
    for csrf in ("", "forged"):
        refused = await browser.login("noura", csrf=csrf)
        assert refused.status_code == 403 and "location" not in refused.headers
    page = await anon.get("/auth/login")
    before_login = csrf_of(page)
    assert (await browser.login("noura", csrf=before_login)).status_code == 303
    consent_page = await anon.get("/auth/consent")
    for csrf in ("", "forged", before_login):  # the token from before the login is void after it
        form = {"csrf": csrf, "decision": "allow", "scope": "patient/Patient.rs"}
        refused = await anon.post("/auth/consent", data=form, headers=FORM)
        assert refused.status_code == 403 and "location" not in refused.headers
    form = {"csrf": csrf_of(consent_page), "decision": "allow", "scope": "patient/Patient.rs"}
    assert (await anon.post("/auth/consent", data=form, headers=FORM)).status_code == 303


async def test_a_form_without_the_browsers_request_cookie_is_refused(world, browser, anon):
    await browser.authorize()
    csrf = csrf_of(await anon.get("/auth/login"))
    anon.cookies.clear()
    refused = await browser.login("noura", csrf=csrf)
    assert refused.status_code == 400 and "expired" in refused.text


async def test_an_account_locks_after_repeated_failures_and_unlocks_after_the_lockout(world, browser, clock):
    await browser.authorize()
    for _ in range(5):
        assert (await browser.login("noura", "wrong password!")).status_code == 401
    locked = await browser.login("noura", PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.text
    clock.advance(seconds=901)
    await browser.authorize()
    assert (await browser.login("noura", PASSWORD)).status_code == 303


async def test_a_disabled_user_cannot_log_in_and_their_live_tokens_stop(
    world, browser, anon, secure_settings
):
    body = await tokens_for(browser)
    code, _ = await run_cli("users", "disable", "noura", "--data-dir", str(secure_settings.data_dir))
    assert code == 0
    assert (await anon.get("/Patient/p1", headers=bearer(body["access_token"]))).status_code == 401
    assert (await browser.refresh(body["refresh_token"])).json()["error"] == "invalid_grant"
    again = Browser(anon, BASE)
    await again.authorize()
    assert (await again.login("noura")).status_code == 401


async def test_a_disabled_app_gets_no_tokens_and_its_live_tokens_stop(world, browser, anon, secure_settings):
    body = await tokens_for(browser)
    code, _ = await run_cli("apps", "disable", "--id", "portal", "--data-dir", str(secure_settings.data_dir))
    assert code == 0
    assert (await anon.get("/Patient/p1", headers=bearer(body["access_token"]))).status_code == 401
    assert (await browser.refresh(body["refresh_token"])).json()["error"] == "invalid_client"
    assert (await Browser(anon, BASE).authorize()).status_code == 400


async def test_the_practitioners_picker_lists_only_patients_the_policy_lets_them_see(world, browser, anon):
    await browser.authorize(scope="launch/patient openid fhirUser user/Patient.rs user/Coverage.rs")
    logged_in = await browser.login("dr")
    assert logged_in.headers["location"] == "/auth/picker"
    picker = await anon.get("/auth/picker")
    assert "Alharbi" in picker.text and "Alzahrani" not in picker.text
    refused = await browser.pick("p2")
    assert refused.status_code == 403
    assert (await browser.pick("p1")).headers["location"] == "/auth/consent"
    answer = await browser.consent()
    body = (await browser.exchange(query_of(answer.headers["location"])["code"])).json()
    assert body["patient"] == "p1" and body["fhirUser"] == f"{BASE}/Practitioner/dr1"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["role"] == "practitioner" and claims["organization"] == "Organization/org-a"
    token = body["access_token"]
    assert (await anon.get("/Patient/p1", headers=bearer(token))).status_code == 200
    assert (await anon.get("/Patient/p2", headers=bearer(token))).status_code == 404  # as if not there


async def test_the_user_may_deselect_scopes_on_the_consent_screen(world, browser):
    await browser.authorize()
    await browser.login("noura")
    answer = await browser.consent(["launch/patient", "patient/Patient.rs"])
    body = (await browser.exchange(query_of(answer.headers["location"])["code"])).json()
    assert body["scope"] == "launch/patient patient/Patient.rs"
    assert "refresh_token" not in body


async def test_denying_consent_sends_access_denied_to_the_app(world, browser):
    await browser.authorize()
    await browser.login("noura")
    answer = await browser.consent(decision="deny")
    assert query_of(answer.headers["location"]) == {
        "error": "access_denied",
        "error_description": "the user denied access",
        "state": "s-123",
    }


def ehr_token(secure_app, scope: str = "launch") -> dict:
    """A backend-services token of the built-in server, as an EHR gets one with client_credentials."""
    issued = secure_app.state.security.issuer.mint(ClientRecord("ehr", (scope,)), [scope])
    return bearer(issued.access_token)


async def test_an_ehr_launch_uses_the_context_the_ehr_registered(world, browser, anon, mint, secure_app):
    context = {"patient": "Patient/p1", "encounter": "Encounter/e1"}
    external = await anon.post("/auth/launch", json=context, headers=bearer(mint("launch")))
    assert external.status_code == 403, external.text
    no_scope = await anon.post(
        "/auth/launch", json=context, headers=ehr_token(secure_app, "system/Patient.rs")
    )
    assert no_scope.status_code == 403
    unknown = await anon.post(
        "/auth/launch", json={"patient": "Patient/nobody"}, headers=ehr_token(secure_app)
    )
    assert unknown.status_code == 400
    registered = await anon.post("/auth/launch", json=context, headers=ehr_token(secure_app))
    assert registered.status_code == 201, registered.text
    launch = registered.json()["launch"]

    started = await browser.authorize(launch=launch, scope="launch openid fhirUser patient/Patient.rs")
    assert started.headers["location"] == "/auth/login"
    assert (await browser.login("dr")).headers["location"] == "/auth/consent"
    answer = await browser.consent()
    body = (await browser.exchange(query_of(answer.headers["location"])["code"])).json()
    assert body["patient"] == "p1" and body["encounter"] == "e1"
    assert (await anon.get("/Patient/p1", headers=bearer(body["access_token"]))).status_code == 200


async def test_an_ehr_launch_about_a_patient_the_user_may_not_see_is_denied(world, browser, anon, secure_app):
    registered = await anon.post(
        "/auth/launch", json={"patient": "Patient/p2"}, headers=ehr_token(secure_app)
    )
    launch = registered.json()["launch"]
    await browser.authorize(launch=launch, scope="launch patient/Patient.rs")
    denied = await browser.login("dr")
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    unknown = await browser.authorize(launch="made-up", scope="launch patient/Patient.rs")
    assert query_of(unknown.headers["location"])["error"] == "invalid_request"


async def test_introspection_answers_resource_servers_and_revocation_stops_the_grant(
    world, browser, anon, secure_app
):
    body = await tokens_for(browser)
    resource_server = ehr_token(secure_app, "system/*.rs")
    active = await anon.post(
        "/auth/introspect", data={"token": body["access_token"]}, headers={**FORM, **resource_server}
    )
    assert active.status_code == 200, active.text
    answer = active.json()
    assert answer["active"] is True and answer["client_id"] == "portal" and answer["patient"] == "Patient/p1"
    anonymous = await anon.post("/auth/introspect", data={"token": body["access_token"]}, headers=FORM)
    assert anonymous.status_code == 401
    public_app = await anon.post(
        "/auth/introspect", data={"token": body["access_token"], "client_id": "portal"}, headers=FORM
    )
    assert public_app.status_code == 401

    revoked = await anon.post(
        "/auth/revoke", data={"token": body["refresh_token"], "client_id": "portal"}, headers=FORM
    )
    assert revoked.status_code == 200
    assert (await anon.get("/Patient/p1", headers=bearer(body["access_token"]))).status_code == 401
    after = await anon.post(
        "/auth/introspect", data={"token": body["access_token"]}, headers={**FORM, **resource_server}
    )
    assert after.json() == {"active": False}
    assert (await browser.refresh(body["refresh_token"])).json()["error"] == "invalid_grant"
    unknown = await anon.post("/auth/revoke", data={"token": "nonsense", "client_id": "portal"}, headers=FORM)
    assert unknown.status_code == 200


async def test_a_confidential_app_authenticates_with_its_secret(world, anon, secure_settings):
    out = await add_app(
        secure_settings.data_dir,
        "clinic",
        APP_REDIRECT,
        "launch/patient patient/Patient.rs",
        "--type",
        "confidential-symmetric",
    )
    secret = out.rsplit(": ", 1)[1].strip()
    browser = Browser(anon, BASE)
    code = await browser.code_for("noura", client_id="clinic", scope="launch/patient patient/Patient.rs")
    no_secret = await browser.exchange(code, client_id="clinic")
    assert no_secret.status_code == 401 and no_secret.json()["error"] == "invalid_client"
    code = await browser.code_for("noura", client_id="clinic", scope="launch/patient patient/Patient.rs")
    ok = await browser.exchange(code, client_id="clinic", client_secret=secret)
    assert ok.status_code == 200, ok.text
    again, _ = await run_cli(
        "apps",
        "add",
        "--id",
        "clinic",
        "--redirect-uri",
        APP_REDIRECT,
        "--scope",
        "patient/Patient.rs",
        "--data-dir",
        str(secure_settings.data_dir),
    )
    assert again == 2  # an existing id is refused without --replace


async def test_a_confidential_app_authenticates_with_a_private_key_jwt(
    world, anon, secure_settings, client_key, clock, tmp_path
):
    jwks = tmp_path / "reports.jwks.json"
    jwks.write_text(json.dumps({"keys": [client_key.public_jwk()]}))
    scope = "launch/patient patient/Patient.rs"
    await add_app(secure_settings.data_dir, "reports", APP_REDIRECT, scope, "--type", "confidential-asymmetric",
                  "--jwks", str(jwks))  # fmt: skip
    browser = Browser(anon, BASE)

    def assertion() -> str:
        now = int(clock().timestamp())
        claims = {"iss": "reports", "sub": "reports", "aud": f"{BASE}/auth/token", "exp": now + 120}
        return client_key.sign({**claims, "jti": uuid.uuid4().hex})

    signed = {"client_assertion_type": ASSERTION_TYPE, "client_id": "reports"}
    code = await browser.code_for("noura", client_id="reports", scope=scope)
    ok = await browser.exchange(code, **signed, client_assertion=assertion())
    assert ok.status_code == 200, ok.text
    code = await browser.code_for("noura", client_id="reports", scope=scope)
    unsigned = await browser.exchange(code, client_id="reports")
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "invalid_client"


async def test_a_related_persons_context_is_the_patient_their_record_names(world, anon, secure_settings):
    related = {"resourceType": "RelatedPerson", "id": "rp1", "patient": {"reference": "Patient/p1"}}
    assert (await world.put("/RelatedPerson/rp1", json=related)).status_code == 201
    await add_user(secure_settings.data_dir, "mother", "RelatedPerson/rp1", "--role", "related-person")
    browser = Browser(anon, BASE)
    body = await tokens_for(browser, "mother")
    assert body["patient"] == "p1" and body["fhirUser"] == f"{BASE}/RelatedPerson/rp1"
    assert (await anon.get("/Patient/p1", headers=bearer(body["access_token"]))).status_code == 200


async def test_pages_come_in_arabic_right_to_left_and_run_no_script(world, browser, anon):
    await browser.authorize(ui_locales="ar-SA")
    page = await anon.get("/auth/login")
    assert 'lang="ar" dir="rtl"' in page.text and "تسجيل الدخول" in page.text
    assert "<script" not in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert "form-action 'self' https://portal.example" in policy
    english = await anon.get("/auth/login?lang=en")
    assert 'lang="en" dir="ltr"' in english.text and "Sign in" in english.text
    assert 'lang="en"' in (await anon.get("/auth/login")).text  # the choice sticks
    headers_ar = {"Accept-Language": "ar,en;q=0.5"}
    second = Browser(anon, BASE)
    await anon.get("/auth/authorize", params=second.authorize_params(), headers=headers_ar)
    assert 'dir="rtl"' in (await anon.get("/auth/login")).text


async def test_discovery_advertises_what_the_server_supports(anon):
    config = (await anon.get("/.well-known/smart-configuration")).json()
    assert config["authorization_endpoint"] == f"{BASE}/auth/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} == set(
        config["grant_types_supported"]
    )
    for capability in (
        "launch-standalone",
        "launch-ehr",
        "client-public",
        "client-confidential-symmetric",
        "context-standalone-patient",
        "permission-offline",
        "sso-openid-connect",
    ):
        assert capability in config["capabilities"]
    assert config["introspection_endpoint"] == f"{BASE}/auth/introspect"
    assert config["revocation_endpoint"] == f"{BASE}/auth/revoke"
    openid = (await anon.get("/.well-known/openid-configuration")).json()
    assert openid["issuer"] == f"{BASE}/auth" and openid["jwks_uri"] == f"{BASE}/auth/jwks"


async def test_logins_consents_tokens_and_refusals_are_audited_without_phi(world, browser, secure_app):
    await browser.authorize()
    await browser.login("noura", "wrong password!")
    body = await tokens_for(browser)
    await browser.refresh(body["refresh_token"])
    await browser.refresh(body["refresh_token"])
    await secure_app.state.security.auditor.drain()
    store = secure_app.state.store.security()
    rows = await store.audit_rows(0, 10_000)
    seen = {(row.subtype, row.outcome) for row in rows}
    for expected in (("login", "4"), ("login", "0"), ("consent", "0"), ("token", "0"), ("refresh", "0")):
        assert expected in seen, seen
    assert ("refresh", "8") in seen  # the reuse that revoked the family
    text = " ".join(str(row) for row in rows)
    assert "noura" not in text and PASSWORD not in text and "Alharbi" not in text
    assert (await verify_chain(store)).ok
