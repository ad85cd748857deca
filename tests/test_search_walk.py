"""A page sorted by _lastUpdated may walk the type in that order, keeping rows found in the driving
filter's list (the portal's Task query on a large store): same pages, forwards and backwards, as sorting
the list, and chosen only when the type is small enough next to the list."""

import random

import pytest

from nphies_facade.resources.sqlite import search_exec
from nphies_facade.resources.sqlite.search_sql import WALK

from .search_support import SYSTEM, close_service, open_service, put_all

OWNERS = 4
PORTAL = [("owner", "Organization/o1"), ("status", "requested,in-progress"), ("_sort", "-_lastUpdated")]


def _tasks(n: int) -> list[dict]:
    rng = random.Random(5)
    return [
        {
            "resourceType": "Task",
            "id": f"t{i}",
            "status": rng.choice(["requested", "in-progress", "completed", "cancelled"]),
            "intent": "order",
            "owner": {"reference": f"Organization/o{i % OWNERS}"},
            "focus": {"reference": f"Organization/c{i}"},
        }
        for i in range(n)
    ] + [{"resourceType": "Organization", "id": f"c{i}", "name": f"Clinic {i}"} for i in range(0, n, 3)]


@pytest.fixture(scope="module")
async def service(tmp_path_factory):
    service = await open_service(tmp_path_factory.mktemp("walk"))
    await put_all(service, _tasks(240))
    yield service
    await close_service(service)


@pytest.fixture
def chosen(monkeypatch) -> list:
    """The page drivers chosen while a test runs."""
    drivers: list = []
    choose = search_exec.choose_drivers

    def recording(db, renderer, plan):
        drivers.append(choose(db, renderer, plan)[0])
        return drivers[-1], choose(db, renderer, plan)[1]

    monkeypatch.setattr(search_exec, "choose_drivers", recording)
    return drivers


def _walk_always(monkeypatch) -> None:
    monkeypatch.setattr(search_exec, "WALK_FROM", 0)
    monkeypatch.setattr(search_exec, "WALK_ADVANTAGE", 10**9)


async def _pages(service, params: list[tuple[str, str]], count: int) -> tuple[list, list, list]:
    """Every page forwards, every page back from the last one, and the includes of the first page."""
    pages, cursor, included = [], None, None
    while True:
        result = await service.search(
            ("Task",),
            params + [("_count", str(count))] + ([("_cursor", cursor)] if cursor else []),
            ctx=SYSTEM,
        )
        pages.append([v.id for v in result.matches])
        included = included if included is not None else sorted(v.id for v in result.included)
        cursor, back = result.next_cursor, result.previous_cursor
        if cursor is None:
            break
    backwards = []
    while back is not None:
        result = await service.search(
            ("Task",), params + [("_count", str(count)), ("_cursor", back)], ctx=SYSTEM
        )
        backwards.append([v.id for v in result.matches])
        back = result.previous_cursor
    return pages, backwards, included


@pytest.mark.parametrize("count", [1, 7, 50])
async def test_walking_gives_the_pages_sorting_gives(service, chosen, monkeypatch, count):
    params = PORTAL + [("_include", "Task:focus")]
    monkeypatch.setattr(search_exec, "WALK_ADVANTAGE", 0)
    sorted_pages = await _pages(service, params, count)
    assert chosen and WALK not in {d[0] for d in chosen if isinstance(d, tuple)}
    chosen.clear()
    _walk_always(monkeypatch)
    walked_pages = await _pages(service, params, count)
    assert chosen and all(isinstance(d, tuple) and d[0] == WALK for d in chosen)
    assert walked_pages == sorted_pages
    forwards, backwards, included = sorted_pages
    expected = {
        t["id"]
        for t in _tasks(240)
        if t.get("owner") == {"reference": "Organization/o1"} and t["status"] in ("requested", "in-progress")
    }
    assert sorted(i for page in forwards for i in page) == sorted(expected)
    assert backwards == forwards[-2::-1]


async def test_the_walk_is_chosen_for_a_long_list_in_a_small_type(service, chosen, monkeypatch):
    monkeypatch.setattr(search_exec, "WALK_FROM", 10)
    await service.search(("Task",), PORTAL + [("_count", "5")], ctx=SYSTEM)  # 60 listed of 240 Tasks
    monkeypatch.setattr(search_exec, "WALK_ADVANTAGE", 0.3)
    await service.search(("Task",), PORTAL + [("_count", "5")], ctx=SYSTEM)
    await service.search(("Task",), [("owner", "Organization/o1"), ("_count", "5")], ctx=SYSTEM)
    assert chosen[0] == (WALK, 0)  # 6 x 240 < 10 x 60 x 60
    assert chosen[1] == 0  # 6 x 240 > 0.3 x 60 x 60: sorting the list is cheaper
    assert chosen[2] == 0  # no sort: the list is read in row order already
