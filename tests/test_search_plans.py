"""The SQL of indexed searches lands on indexes: EXPLAIN QUERY PLAN shows no full scan for the portal's
Task query, identifier, name, birthdate, chained and reverse-chained searches, or their includes."""

import sqlite3
from urllib.parse import parse_qsl

import pytest

from nphies_facade.resources.search.plan import Planner
from nphies_facade.resources.search.query import QueryParser
from nphies_facade.resources.sqlite import search_exec
from nphies_facade.resources.sqlite.search_exec import resolve_pids
from nphies_facade.resources.sqlite.search_sql import RANGE, SQL_FUNCTIONS, SqlRenderer

from .search_support import SYSTEM, close_service, open_service

NID = "http://nphies.sa/identifier/nationalid"
INDEXES = (
    "idx_key",
    "idx_low",
    "idx_high",
    "idx_rid_pid",
    "rowid",
    "sqlite_autoindex_resources",
    "resources_",
)


def _resources(n: int) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "identifier": [{"system": NID, "value": f"{i:010d}"}],
                "name": [{"family": f"Family{i % 37}", "given": [f"Given{i}"]}],
                "birthDate": f"19{40 + i % 60}-0{1 + i % 9}-1{i % 9}",
            }
        )
        out.append(
            {
                "resourceType": "Claim",
                "id": f"c{i}",
                "status": "active" if i % 3 else "cancelled",
                "use": "claim",
                "type": {"coding": [{"code": "institutional"}]},
                "created": "2024-01-01",
                "patient": {"reference": f"Patient/p{i}"},
                "provider": {"reference": "Organization/prov"},
                "priority": {"coding": [{"code": "normal"}]},
                "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/x"}}],
            }
        )
        out.append(
            {
                "resourceType": "Task",
                "id": f"t{i}",
                "status": ("requested", "in-progress", "completed", "cancelled")[i % 4],
                "intent": "order",
                "owner": {"reference": f"Organization/o{i % 25}"},
                "focus": {"reference": f"Claim/c{i}"},
                "for": {"reference": f"Patient/p{i}"},
                "code": {"coding": [{"system": "urn:wf", "code": ("eligibility", "claim")[i % 2]}]},
                "authoredOn": f"2024-0{1 + i % 9}-0{1 + i % 9}",
            }
        )
    return out


@pytest.fixture(scope="module")
async def database(tmp_path_factory):
    path = tmp_path_factory.mktemp("search-plans")
    service = await open_service(path)
    async with service.transaction() as tx:
        for resource in _resources(400):
            await service.update(SYSTEM, resource["resourceType"], resource["id"], resource, tx=tx)
    registry = service.extractor.registry
    await close_service(service)
    db = sqlite3.connect(path / "search.sqlite3")
    for name, arity, function in SQL_FUNCTIONS:
        db.create_function(name, arity, function)
    db.execute("ANALYZE")
    yield db, registry
    db.close()


def _planned(db: sqlite3.Connection, registry, resource_type: str, params: list[tuple[str, str]]):
    """The plan of a strict search and a renderer resolving its parameter ids on `db`."""
    query = QueryParser(registry).parse((resource_type,), params, strict=True)
    cache: dict = {}
    return Planner(registry, 0).plan(query), SqlRenderer(lambda keys: resolve_pids(cache, db, keys))


def _plan_lines(db: sqlite3.Connection, sql: str, args: list) -> list[str]:
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args)]


def _full_scans(lines: list[str]) -> list[str]:
    """Scans of a table or an index; `SCAN p` reads the page's own chosen rows (at most _count + 1)."""
    return [line for line in lines if line.startswith("SCAN") and line not in ("SCAN CONSTANT ROW", "SCAN p")]


@pytest.mark.parametrize(
    ("resource_type", "query"),
    [
        (
            "Task",
            "owner=Organization/o3&status=requested,in-progress&_sort=-_lastUpdated&_include=Task:focus&_include=Task:patient",
        ),
        ("Task", "owner=o3&code=urn:wf|claim&authored-on=ge2024-03&_sort=-_lastUpdated"),
        ("Task", "patient=Patient/p7&intent=order&part-of:missing=true"),
        ("Task", "focus=Claim/c7&authored-on=ge2024"),
        ("Task", "business-status=waiting"),
        ("Patient", f"identifier={NID}|0000000042"),
        ("Patient", "identifier=0000000042"),
        ("Patient", "name=family3&_revinclude=Task:patient"),
        ("Patient", "family:exact=Family3"),
        ("Patient", "birthdate=ge1960-01-01&birthdate=lt1970"),
        ("Patient", "birthdate=1955"),
        ("Claim", "patient=Patient/p7&status=active"),
        ("Claim", f"patient.identifier={NID}|0000000042"),
        ("Claim", "_has:Task:focus:owner=Organization/o3"),
        ("Patient", "_id=p1,p2&_sort=-birthdate"),
    ],
)
async def test_indexed_searches_use_indexes(database, resource_type, query):
    db, registry = database
    plan, renderer = _planned(db, registry, resource_type, parse_qsl(query))
    rendered = renderer.page(plan)
    if rendered is None:  # a parameter nothing has a value for: no query runs at all
        return
    page = _plan_lines(db, *rendered)
    assert not _full_scans(page), page
    assert any(index in line for line in page for index in INDEXES), page
    count = _plan_lines(db, *renderer.count(plan))
    assert not _full_scans(count), count
    rows = db.execute(*rendered).fetchall()
    frontier = [(row[0], row[1], row[2]) for row in rows]
    for spec in plan.includes:
        rendered = renderer.include(spec, frontier or [(1, resource_type, "x")], 100)
        if rendered is not None:
            assert not _full_scans(_plan_lines(db, *rendered))


async def test_a_date_range_starts_from_a_narrow_scan_of_lower_bounds(database, monkeypatch):
    db, registry = database
    monkeypatch.setattr(search_exec, "ESTIMATE_CAP", 50)  # at this size, both halves of the range are large
    plan, renderer = _planned(
        db, registry, "Patient", [("birthdate", "ge1975-03-01"), ("birthdate", "lt1975-04-01")]
    )
    page_driver, _ = search_exec.choose_drivers(db, renderer, plan)
    assert page_driver[0] == RANGE
    lines = _plan_lines(db, *renderer.page(plan, page_driver))
    assert not _full_scans(lines), lines
    assert any("idx_low (pid=? AND n1>? AND n1<?)" in line for line in lines), lines


async def test_a_reference_naming_few_resources_drives_without_counting_the_other_filters(database):
    """`code` matches 200 Tasks, `focus` one: the reference is counted first and taken at once."""
    db, registry = database
    plan, renderer = _planned(
        db, registry, "Task", [("code", "urn:wf|claim"), ("focus", "Claim/c7"), ("status", "in-progress")]
    )
    counts: list[str] = []
    db.set_trace_callback(lambda sql: counts.append(sql) if sql.startswith("SELECT count(*)") else None)
    try:
        page_driver, _ = search_exec.choose_drivers(db, renderer, plan)
    finally:
        db.set_trace_callback(None)
    focus = next(n for n, f in enumerate(plan.filters) if "focus" in f.param.codes)
    assert page_driver == focus
    assert len(counts) == 1
