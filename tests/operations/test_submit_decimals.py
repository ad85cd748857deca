"""The NPHIES message built from stored resources carries their decimals as the client wrote them."""

from nphies_facade import exact_json

from ..json_text import numbers_in, parsed
from .helpers import attachment, outputs, read, task_path, wait_for_task
from .material import ORAL_CLAIM, material, store


def _with_cents(money: object) -> None:
    """230 -> 230.00, written as such (a float would print 230.0)."""
    if isinstance(money, dict) and isinstance(money.get("value"), int):
        money["value"] = exact_json.JsonNumber(f"{money['value']}.00")


async def test_a_claim_request_sends_the_amounts_as_stored(client) -> None:
    found = material(ORAL_CLAIM)
    claim = found.focus
    _with_cents(claim.get("total"))
    for item in claim["item"]:
        for key in ("unitPrice", "net", "tax"):
            _with_cents(item.get(key))
    await store(client, found)
    stored = await client.put(f"/{found.claim}", content=exact_json.dumps(claim))
    assert stored.status_code == 200, stored.text
    sent_amounts = numbers_in(parsed(stored.content)["total"])
    assert sent_amounts == [str(claim["total"]["value"])] and sent_amounts[0].endswith(".00")

    response = await client.post(f"/{found.claim}/$submit")
    assert response.status_code == 202, response.text
    task = await wait_for_task(client, task_path(response))
    [first, *_] = outputs(task, "exchange")
    record = await read(client, first["reference"])
    message = parsed(attachment(record, "request"))
    [sent] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Claim"]
    assert numbers_in(sent["total"]) == sent_amounts
    assert [numbers_in(i["net"]) for i in sent["item"]] == [[str(i["net"]["value"])] for i in claim["item"]]
