"""No existence oracle: a resource a restricted caller may not see (another patient's, outside a scope's
restriction, or refused by an attribute rule) is answered exactly like one that does not exist (same
status, same OperationOutcome text) on read, vread, history, update, patch, delete and operations; the
refusal is still audited."""

import pytest

from .test_scopes import LAB, VITALS, observation, task

PATCH = {"Content-Type": "application/json-patch+json"}
SET_STATUS = [{"op": "replace", "path": "/status", "value": "amended"}]


@pytest.fixture
async def admin(as_token):
    async with as_token("system/*.cruds") as client:
        yield client


@pytest.fixture
async def stored(admin):
    for body in (
        {"resourceType": "Patient", "id": "a"},
        {"resourceType": "Patient", "id": "b"},
        observation("obs-b", "b"),
        observation("gone-b", "b"),
        observation("vit-a", "a", VITALS),
        task("task-b", "b"),
    ):
        assert (await admin.put(f"/{body['resourceType']}/{body['id']}", json=body)).status_code == 201
    assert (await admin.delete("/Observation/gone-b")).status_code == 204


def answer(response, hidden_id: str) -> tuple[int, str]:
    assert response.status_code >= 400, (response.request.method, response.request.url, response.text)
    diagnostics = response.json()["issue"][0]["diagnostics"]
    return response.status_code, diagnostics.replace(hidden_id, "{id}")


async def probes(client, resource_type: str, resource_id: str) -> dict[str, tuple[int, str]]:
    path = f"/{resource_type}/{resource_id}"
    found = {
        "read": answer(await client.get(path), resource_id),
        "vread": answer(await client.get(f"{path}/_history/1"), resource_id),
        "history": answer(await client.get(f"{path}/_history"), resource_id),
        "patch": answer(await client.patch(path, json=SET_STATUS, headers=PATCH), resource_id),
        "delete": answer(await client.delete(path), resource_id),
    }
    return found


async def hidden_update(client, resource_type: str, resource_id: str, body: dict) -> tuple[int, str]:
    """A PUT of a new id creates it (201); of a hidden id it is answered 404 as if nothing were there."""
    return answer(
        await client.put(f"/{resource_type}/{resource_id}", json={**body, "id": resource_id}), resource_id
    )


async def test_another_patients_resource_is_answered_as_not_found(stored, as_token):
    async with as_token("patient/*.cruds", patient="Patient/a") as portal:
        hidden = await probes(portal, "Observation", "obs-b")
        assert hidden == await probes(portal, "Observation", "nobody")
        assert hidden["read"] == (404, "Observation/{id} is not known")
        assert hidden["vread"] == (404, "Observation/{id} has no version 1")
        update = await hidden_update(portal, "Observation", "obs-b", observation("x", "a"))
        assert update == (404, "Observation/{id} is not known")
        assert (await portal.get("/Observation/obs-b")).status_code == 404, "nothing was changed or deleted"

        assert answer(await portal.get("/Observation/gone-b"), "gone-b") == answer(
            await portal.get("/Observation/nobody"), "nobody"
        ), "a deletion the caller may not see is not told either"
        approve = {"resourceType": "Parameters"}
        assert answer(await portal.post("/Task/task-b/$approve", json=approve), "task-b") == answer(
            await portal.post("/Task/nobody/$approve", json=approve), "nobody"
        )
    async with as_token("patient/*.rs", patient="Patient/b") as owner:
        assert (await owner.get("/Observation/gone-b")).status_code == 410


async def test_a_scope_restriction_hides_like_a_missing_resource(stored, as_token):
    async with as_token("system/Observation.cruds?category=laboratory") as lab:
        assert await probes(lab, "Observation", "vit-a") == await probes(lab, "Observation", "nobody")
        update = await hidden_update(lab, "Observation", "vit-a", observation("x", "a", LAB))
        assert update == (404, "Observation/{id} is not known")


async def test_a_hidden_resource_is_still_audited_as_a_refusal(stored, as_token, secure_app):
    async with as_token("patient/*.rs", patient="Patient/a") as portal:
        assert (await portal.get("/Observation/obs-b")).status_code == 404
    await secure_app.state.service.audit.drain()
    rows = await secure_app.state.store.security().audit_rows()
    refusals = [
        r for r in rows if r.entity == "Observation/obs-b" and "patient-compartment" in (r.detail or "")
    ]
    assert refusals and refusals[0].subtype == "read"
