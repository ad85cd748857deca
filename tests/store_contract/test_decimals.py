"""Decimal text through the store port, on every backend: what FhirService stores from a client's JSON
is read back, vread, listed in history and found by search with each number's characters unchanged, and
its index values carry the precision of that text."""

import json

from nphies_facade import exact_json
from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.search.values import QuantityValue
from nphies_facade.resources.service import resource_json
from nphies_facade.resources.store import HistoryQuery

SYSTEM = RequestContext.system()
DECIMALS = ("105.00", "0.50", "1e2", "-0.0", "3.14159265358979323846264338327950288", "-0")


def _observation(values: tuple[str, ...]) -> bytes:
    quantities = ",".join(
        f'{{"code":{{"text":"c{i}"}},"valueQuantity":{{"value":{v}}}}}' for i, v in enumerate(values)
    )
    return (
        b'{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"weight"},'
        b'"valueQuantity":{"value":'
        + values[0].encode()
        + b',"system":"http://unitsofmeasure.org","code":"kg"},'
        b'"component":[' + quantities.encode() + b"]}"
    )


def _texts(body: bytes) -> list[str]:
    """Each number's characters as the body holds them (in the order written)."""
    found: list[str] = []

    def keep(text: str) -> str:
        found.append(text)
        return text

    json.loads(body, parse_float=keep, parse_int=keep)
    return found


async def test_decimals_keep_their_text_through_every_read(service, store):
    await service.update(SYSTEM, "Observation", "o1", exact_json.loads(_observation(DECIMALS)))
    second = _observation(("12500.00", "0.40"))
    await service.update(SYSTEM, "Observation", "o1", exact_json.loads(second))
    first_texts, second_texts = [DECIMALS[0], *DECIMALS], ["12500.00", "12500.00", "0.40"]

    assert _texts((await store.vread("Observation", "o1", 1)).body) == first_texts
    assert _texts((await store.read("Observation", "o1")).body) == second_texts
    history = await store.history(HistoryQuery(resource_type="Observation", id="o1"))
    assert [_texts(v.body) for v in history] == [second_texts, first_texts]
    found = await service.search(("Observation",), [("value-quantity", "12500.00")], ctx=SYSTEM)
    assert [_texts(v.body) for v in found.matches] == [second_texts]
    assert (
        exact_json.dumps(resource_json(await store.read("Observation", "o1")))
        == (await store.read("Observation", "o1")).body
    )


async def test_index_values_take_the_precision_of_the_text(service, extractor):
    resource = exact_json.loads(_observation(("105.00",)))
    [quantity] = [v for v in extractor.extract(resource)["value-quantity"] if isinstance(v, QuantityValue)]
    assert (quantity.value, quantity.lo, quantity.hi) == (105.0, 104.995, 105.005)
    await service.update(SYSTEM, "Observation", "o1", resource)
    for query, found in (("105.00", 1), ("105", 1), ("105.000", 1), ("105.01", 0), ("104.99", 0)):
        result = await service.search(("Observation",), [("value-quantity", query)], ctx=SYSTEM)
        assert len(result.matches) == found, query
