"""No PHI in logs: with every logger at DEBUG, a patient's name never reaches the log output on the create,
read, search, bundle, forbidden, invalid-input and internal-error paths."""

import io
import logging

import pytest

from .conftest import patient

NAME = "Wadhah-Qurashi-7731"


@pytest.fixture
def all_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_info)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_a_patient_name_never_reaches_the_logs(as_token, secure_app, all_logs):
    body = patient("phi-1", family=NAME, telecom=[{"system": "phone", "value": "+966500000001"}])
    async with as_token() as emr:
        assert (await emr.put("/Patient/phi-1", json=body)).status_code == 201
        assert (await emr.get("/Patient/phi-1")).status_code == 200
        found = await emr.post(
            "/Patient/_search",
            data={"family": NAME},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert found.status_code == 200 and NAME in found.text
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": patient(family=NAME), "request": {"method": "POST", "url": "Patient"}},
                {"request": {"method": "GET", "url": "Patient/phi-1"}},
            ],
        }
        assert (await emr.post("/", json=batch)).status_code == 200
        invalid = {**body, "birthDate": f"not-a-date {NAME}"}
        assert (await emr.put("/Patient/phi-1", json=invalid)).status_code == 400

        async def explode(tx, ctx, resource):
            raise RuntimeError(f"cannot store {NAME}")

        secure_app.state.service.write_hooks.append(explode)
        try:
            assert (await emr.put("/Patient/phi-1", json=body)).status_code == 500
        finally:
            secure_app.state.service.write_hooks.remove(explode)
    async with as_token("patient/*.rs", patient="Patient/other") as stranger:
        assert (await stranger.get("/Patient/phi-1")).status_code == 404
    output = all_logs.getvalue()
    assert output, "nothing was logged at all: the capture is not working"
    assert "unhandled RuntimeError" in output
    leaks = [line for line in output.splitlines() if NAME in line or "+966500000001" in line]
    assert not leaks, "\n".join(line[:200] for line in leaks)
