"""Rest-hook notifications carry the resource's decimals as the client wrote them: the R4 payload and
`$events` (tests/workflows/test_events.py: a topic's backport notification)."""

from tests.json_text import numbers, numbers_in, parsed
from tests.test_rest_decimals import SENT, observation

from .conftest import rest_hook, subscribe


async def test_a_payload_notification_carries_the_numbers_as_sent(api, receiver):
    patient = await api.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert patient.status_code in (200, 201), (
        patient.text
    )  # the Observation's subject (referential integrity)
    sub = await subscribe(api, rest_hook(receiver.url + "/fhir", "Observation?status=final", payload=True))
    created = await api.put("/Observation/o1", content=observation("o1"))
    assert created.status_code == 201, created.text
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    [note] = receiver.requests(sub)
    assert numbers(note.body) == SENT
    events = await api.get(f"/Subscription/{sub}/$events")
    [focus] = [e for e in parsed(events.content)["entry"] if e.get("resource", {}).get("id") == "o1"]
    assert numbers_in(focus["resource"]) == SENT
