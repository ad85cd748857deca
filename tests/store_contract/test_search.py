"""Search through the store port (FhirService.search -> plan -> backend), on every backend."""

import pytest

from nphies_facade.resources.context import RequestContext
from nphies_facade.resources.searching import SearchOptions

from .writing import NID

SYSTEM = RequestContext.system()
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _patient(pid: str, family: str, given: str, gender: str, born: str, nid: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": born,
        "identifier": [{"system": NID, "value": nid}],
    }


def _observation(oid: str, subject: str, code: str, value: float, unit: str, when: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


RESOURCES = [
    _patient("pa", "Ali", "Ahmed", "male", "1980-05-01", "111"),
    _patient("pb", "Ali", "Sara", "female", "1990-01-15", "222"),
    _patient("pc", "Hassan", "Omar", "male", "2001", "333"),
    _patient("pd", "Zahrani", "Huda", "female", "1975-03-03", "444"),
    _observation("o1", "Patient/pa", "8867-4", 72, "/min", "2024-01-01"),
    _observation("o2", "Patient/pb", "8867-4", 90, "/min", "2024-02-01"),
    _observation("o3", "Patient/pa", "29463-7", 80, "kg", "2024-03-01"),
    _observation("o4", "Patient/pc", "29463-7", 95, "kg", "2024-04-01"),
]


@pytest.fixture
async def searchable(service):
    for resource in RESOURCES:
        await service.update(SYSTEM, resource["resourceType"], resource["id"], dict(resource))
    await service.delete(SYSTEM, "Patient", "pd")
    return service


async def _ids(service, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    result = await service.search((resource_type,), params, SearchOptions(strict=True), ctx=SYSTEM)
    return [v.id for v in result.matches]


@pytest.mark.parametrize(
    ("resource_type", "params", "expected"),
    [
        ("Patient", [("gender", "male")], {"pa", "pc"}),
        ("Patient", [("gender", "female")], {"pb"}),
        ("Patient", [("gender:not", "male")], {"pb"}),
        ("Patient", [("name", "ali")], {"pa", "pb"}),
        ("Patient", [("name:exact", "Sara")], {"pb"}),
        ("Patient", [("name:exact", "sara")], set()),
        ("Patient", [("name:contains", "ssa")], {"pc"}),
        ("Patient", [("family", "ali"), ("given", "sa")], {"pb"}),
        ("Patient", [("birthdate", "ge1985")], {"pb", "pc"}),
        ("Patient", [("birthdate", "lt1985-01-01")], {"pa"}),
        ("Patient", [("birthdate", "2001")], {"pc"}),
        ("Patient", [("birthdate", "2001-06")], set()),
        ("Patient", [("birthdate", "sa2000")], {"pc"}),
        ("Patient", [("identifier", f"{NID}|222")], {"pb"}),
        ("Patient", [("identifier", "|222")], set()),
        ("Patient", [("identifier", "111,333")], {"pa", "pc"}),
        ("Patient", [("_id", "pa,pd")], {"pa"}),
        ("Patient", [("birthdate:missing", "true")], set()),
        ("Patient", [("address-city:missing", "true"), ("gender", "female")], {"pb"}),
        ("Observation", [("value-quantity", "gt80")], {"o2", "o4"}),
        ("Observation", [("value-quantity", "80||kg")], {"o3"}),
        ("Observation", [("value-quantity", f"le90|{UCUM}|/min")], {"o1", "o2"}),
        ("Observation", [("subject", "Patient/pa")], {"o1", "o3"}),
        ("Observation", [("subject", "pb")], {"o2"}),
        ("Observation", [("subject:Patient", "pc")], {"o4"}),
        ("Observation", [("code", f"{LOINC}|8867-4")], {"o1", "o2"}),
        ("Observation", [("date", "ge2024-02-01"), ("code", "29463-7")], {"o3", "o4"}),
        ("Observation", [("subject:Patient.name", "sara")], {"o2"}),
        ("Observation", [("subject:Patient.gender", "male"), ("code", "29463-7")], {"o3", "o4"}),
        ("Patient", [("_has:Observation:subject:code", "29463-7")], {"pa", "pc"}),
        ("Patient", [("_has:Observation:subject:value-quantity", "gt85")], {"pb", "pc"}),
        ("Observation", [("code-value-quantity", "8867-4$gt80")], {"o2"}),
        ("Observation", [("code-value-quantity", "29463-7$lt90")], {"o3"}),
    ],
)
async def test_search_matches_what_the_criteria_say(searchable, resource_type, params, expected):
    assert set(await _ids(searchable, resource_type, params)) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("_sort", "birthdate")], ["pa", "pb", "pc"]),
        ([("_sort", "-birthdate")], ["pc", "pb", "pa"]),
        ([("_sort", "given")], ["pa", "pc", "pb"]),
        ([("_sort", "-_id")], ["pc", "pb", "pa"]),
        ([("_sort", "family,-given")], ["pb", "pa", "pc"]),
        ([], ["pa", "pb", "pc"]),
    ],
)
async def test_search_sorts(searchable, params, expected):
    assert await _ids(searchable, "Patient", params) == expected


async def test_a_missing_sort_value_comes_last_both_ways(searchable, service):
    await service.update(SYSTEM, "Patient", "pe", {"resourceType": "Patient", "id": "pe", "gender": "male"})
    assert (await _ids(searchable, "Patient", [("_sort", "birthdate")]))[-1] == "pe"
    assert (await _ids(searchable, "Patient", [("_sort", "-birthdate")]))[-1] == "pe"


@pytest.mark.parametrize("sort", ["", "birthdate", "-birthdate", "-_lastUpdated", "family,-given"])
async def test_cursors_page_forwards_and_back_over_every_match(searchable, sort):
    params = [("_count", "1")] + ([("_sort", sort)] if sort else [])
    everything = await _ids(searchable, "Patient", [("_sort", sort)] if sort else [])
    seen, cursor, pages = [], None, []
    while True:
        result = await searchable.search(
            ("Patient",), params + ([("_cursor", cursor)] if cursor else []), ctx=SYSTEM
        )
        pages.append(result)
        seen += [v.id for v in result.matches]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert seen == everything
    back = await searchable.search(
        ("Patient",), params + [("_cursor", pages[-1].previous_cursor)], ctx=SYSTEM
    )
    assert [v.id for v in back.matches] == everything[-2:-1]


async def test_total_is_counted_when_asked(searchable):
    result = await searchable.search(("Patient",), [("_total", "accurate"), ("_count", "1")], ctx=SYSTEM)
    assert result.total == 3 and len(result.matches) == 1
    counted = await searchable.search(("Observation",), [("_summary", "count")], ctx=SYSTEM)
    assert counted.total == 4 and counted.matches == []


async def test_include_and_revinclude_bring_the_referenced_resources(searchable):
    forward = await searchable.search(
        ("Observation",), [("code", "8867-4"), ("_include", "Observation:subject")], ctx=SYSTEM
    )
    assert {v.id for v in forward.matches} == {"o1", "o2"}
    assert {(v.resource_type, v.id) for v in forward.included} == {("Patient", "pa"), ("Patient", "pb")}
    reverse = await searchable.search(
        ("Patient",), [("_id", "pa"), ("_revinclude", "Observation:subject")], ctx=SYSTEM
    )
    assert {(v.resource_type, v.id) for v in reverse.included} == {
        ("Observation", "o1"),
        ("Observation", "o3"),
    }


async def test_found_versions_carry_their_body_and_row_position(searchable, store):
    result = await searchable.search(("Patient",), [("_id", "pa")], ctx=SYSTEM)
    [found] = result.matches
    assert found.body == (await store.read("Patient", "pa")).body
    assert found.position > 0


async def test_search_in_a_transaction_sees_its_own_writes(searchable, service):
    async with service.transaction() as tx:
        await service.update(
            SYSTEM, "Patient", "pf", _patient("pf", "Fahd", "Ali", "male", "1999", "555"), tx=tx
        )
        inside = await service.search(("Patient",), [("identifier", "555")], ctx=SYSTEM, tx=tx)
        assert [v.id for v in inside.matches] == ["pf"]
    assert await _ids(searchable, "Patient", [("identifier", "555")]) == ["pf"]


async def test_conditional_criteria_may_use_any_parameter(searchable, service):
    ids = await service.find_ids("Patient", [("birthdate", "lt1985"), ("family", "ali")])
    assert ids == ["pa"]


def _named(given: list[str], family: str, nids: list[str]) -> dict:
    return {
        "resourceType": "Patient",
        "id": "pu",
        "name": [{"family": family, "given": given}],
        "identifier": [{"system": NID, "value": nid} for nid in nids],
    }


async def test_an_update_leaves_exactly_the_new_versions_values_searchable(service):
    """Values kept, dropped, added and repeated across versions; then the resource is deleted."""
    versions = [
        _named(["Amal", "Amal"], "Saud", ["901", "902"]),
        _named(["Amal"], "Saud", ["902", "903", "903"]),
        _named(["Noura", "Amal"], "Qahtani", ["903"]),
    ]
    for resource in versions:
        await service.update(SYSTEM, "Patient", "pu", dict(resource))
    assert await _ids(service, "Patient", [("given", "Amal")]) == ["pu"]
    assert await _ids(service, "Patient", [("given", "Noura")]) == ["pu"]
    assert await _ids(service, "Patient", [("family", "Saud")]) == []
    assert await _ids(service, "Patient", [("family", "Qahtani")]) == ["pu"]
    assert await _ids(service, "Patient", [("identifier", f"{NID}|901")]) == []
    assert await _ids(service, "Patient", [("identifier", f"{NID}|902")]) == []
    assert await _ids(service, "Patient", [("identifier", f"{NID}|903")]) == ["pu"]
    await service.delete(SYSTEM, "Patient", "pu")
    assert await _ids(service, "Patient", [("given", "Amal")]) == []
    assert await _ids(service, "Patient", [("identifier", f"{NID}|903")]) == []
