"""Version ids that no version can have (out of range, not plain ASCII digits) answer 404, 400 or 412 with
an OperationOutcome on every backend and through bundle entries, never a 500."""

import pytest

from nphies_facade.resources.store import MAX_VERSION, version_number

NOT_VERSIONS = [
    "99999999999999999999",  # above 2^63-1
    str(MAX_VERSION + 1),
    "0",
    "-1",
    "1.0",
    "\u00b2",  # superscript two: str.isdigit() accepts it, int() refuses it
    "\u0661",  # Arabic-Indic one: int() reads it as 1
    "\u0661\u0662\u0663",
    "\uff11",  # fullwidth one
]


@pytest.fixture
def client(client_on_each_store):
    return client_on_each_store


async def _patient(client) -> str:
    created = await client.put("/Patient/v1", json={"resourceType": "Patient", "id": "v1", "gender": "male"})
    assert created.status_code == 201, created.text
    return "/Patient/v1"


def test_a_version_number_is_plain_ascii_digits_in_range():
    assert version_number("1") == 1
    assert version_number(str(MAX_VERSION)) == MAX_VERSION
    assert [version_number(text) for text in NOT_VERSIONS] == [None] * len(NOT_VERSIONS)


@pytest.mark.parametrize("version", NOT_VERSIONS)
async def test_a_vread_of_a_version_no_resource_can_have_is_404(client, version):
    url = await _patient(client)
    response = await client.get(f"{url}/_history/{version}")
    assert response.status_code == 404, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"{url}/_history/1")).status_code == 200


async def test_a_vread_of_the_largest_version_is_404_when_absent(client):
    url = await _patient(client)
    assert (await client.get(f"{url}/_history/{MAX_VERSION}")).status_code == 404


@pytest.mark.parametrize("version", ["99999999999999999999", "\u00b2", "\u0663"])
async def test_a_batch_get_of_a_version_no_resource_can_have_is_a_404_entry(client, version):
    await _patient(client)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/v1/_history/{version}"}},
            {"request": {"method": "GET", "url": "Patient/v1/_history/1"}},
        ],
    }
    response = await client.post("/", json=batch)
    assert response.status_code == 200, response.text
    statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
    assert statuses[0].startswith("404") and statuses[1].startswith("200")


@pytest.mark.parametrize("tag", ['W/"\u00b2"', '"\u00b9"'])
async def test_an_if_match_that_is_not_an_ascii_version_is_400(client, tag):
    """A header is Latin-1 on the wire, so of the Unicode digits only superscripts can reach it."""
    url = await _patient(client)
    body = {"resourceType": "Patient", "id": "v1", "gender": "female"}
    response = await client.put(url, json=body, headers={"If-Match": tag.encode("latin-1")})
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(url)).json()["gender"] == "male"


async def test_an_if_match_above_the_version_range_is_412(client):
    url = await _patient(client)
    body = {"resourceType": "Patient", "id": "v1", "gender": "female"}
    response = await client.put(url, json=body, headers={"If-Match": 'W/"99999999999999999999"'})
    assert response.status_code == 412, response.text
    assert (await client.get(url)).json()["gender"] == "male"


@pytest.mark.parametrize("tag", ['W/"\u00b2"', 'W/"\u0661"'])
async def test_a_transaction_entry_if_match_with_a_unicode_digit_is_400_and_writes_nothing(client, tag):
    await _patient(client)
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": "v1", "gender": "female"},
                "request": {"method": "PUT", "url": "Patient/v1", "ifMatch": 'W/"\u00b2"'},
            }
        ],
    }
    response = await client.post("/", json=transaction)
    assert response.status_code == 400, response.text
    assert (await client.get("/Patient/v1")).json()["gender"] == "male"


@pytest.mark.parametrize("count", ["\u00b2", "\u0663"])
async def test_a_history_count_with_a_unicode_digit_is_400(client, count):
    url = await _patient(client)
    response = await client.get(f"{url}/_history", params={"_count": count})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("event_id", ["\u00b2", "\u0663", "99999999999999999999"])
async def test_an_audit_event_id_that_is_not_a_plain_number_is_404(client, event_id):
    response = await client.get(f"/AuditEvent/{event_id}")
    assert response.status_code == 404, response.text
