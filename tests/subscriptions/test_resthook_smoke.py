from .conftest import rest_hook, subscribe


async def test_smoke(api, receiver):
    sub = await subscribe(api, rest_hook(receiver.url + "/hook", "Patient?gender=female"))
    r = await api.post("/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert r.status_code == 201
    await receiver.wait_for(lambda: receiver.numbers(sub) == [1])
    print(receiver.requests(sub, kind=None))
