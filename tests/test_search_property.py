"""Property: for generated resources and generated queries, the SQLite search returns exactly what the
brute-force reference (extract + matching.py over every resource, chains followed by hand) says.

The resources are drawn once per module from a seeded generator with small value domains (so queries
hit); hypothesis draws the queries: string, token, date, number and reference parameters with their
prefixes and modifiers, ORed values, ANDed parameters, chains and _has.
"""

import random
from datetime import UTC, datetime

import fhirpathpy
import orjson
import pytest
from fhirpathpy.engine.nodes import ResourceNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nphies_facade.resources.search import model
from nphies_facade.resources.sqlite import search_exec

from .search_support import SYSTEM, Reference, close_service, forced_ranges, ids, open_service, put_all

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
FAMILIES = ["Ali", "Álvarez", "alba", "Saad", "Saad Al Harbi", "ÖZ"]
GIVENS = ["Noura", "nour", "Omar", "Ömer"]
SYSTEMS = ["urn:a", "urn:b"]
VALUES = ["1", "2", "12", "x,y"]
STATUSES = ["requested", "in-progress", "completed", "cancelled"]
ZONES = ["Z", "+03:00", "-05:00", ""]
OWNERS = ["Organization/o1", "Organization/o2", "Practitioner/o1", "http://x.org/fhir/Organization/o1"]
N_PATIENTS, N_TASKS, N_RISKS = 40, 60, 20


def _date(rng: random.Random, with_time: bool) -> str:
    year = rng.choice([2019, 2020])
    precision = rng.choice(["y", "m", "d", "t"] if with_time else ["y", "m", "d"])
    if precision == "y":
        return str(year)
    month = rng.choice([1, 2, 12])
    if precision == "m":
        return f"{year}-{month:02d}"
    day = rng.choice([1, 15, 28, 31 if month != 2 else 28])
    if precision == "d":
        return f"{year}-{month:02d}-{day:02d}"
    zone = rng.choice(ZONES) or "Z"
    return f"{year}-{month:02d}-{day:02d}T{rng.choice([0, 2, 23]):02d}:{rng.choice([0, 30]):02d}:00{zone}"


def _start_after_end(start: str, end: str) -> bool:
    """Whether FHIRPath finds start > end (per-1); a comparison its precisions leave open is not."""
    node = ResourceNode.create_node({"start": start, "end": end}, "Period")
    return fhirpathpy.evaluate(node, "start <= end", model=model.r4_model()) == [False]


def _period(start: str, end: str) -> dict:
    """A valid R4 Period (per-1) from two drawn dates: swapped when the end is before the start."""
    return {"start": end, "end": start} if _start_after_end(start, end) else {"start": start, "end": end}


def _maybe(rng: random.Random, value: object, chance: float = 0.8) -> object:
    return value if rng.random() < chance else None


def _patient(rng: random.Random, i: int) -> dict:
    patient: dict = {"resourceType": "Patient", "id": f"p{i}"}
    name = {"family": rng.choice(FAMILIES), "given": rng.sample(GIVENS, rng.randint(0, 2))}
    patient["name"] = [{k: v for k, v in name.items() if v}]  # an empty list is not valid R4
    if gender := _maybe(rng, rng.choice(["male", "female"])):
        patient["gender"] = gender
    if born := _maybe(rng, _date(rng, False)):
        patient["birthDate"] = born
    if identifiers := [
        {"system": rng.choice(SYSTEMS), "value": rng.choice(VALUES)} for _ in range(rng.randint(0, 2))
    ]:
        patient["identifier"] = identifiers
    if rng.random() < 0.3:
        patient["deceasedDateTime"] = _date(rng, True)
    return patient


def _task(rng: random.Random, i: int) -> dict:
    task: dict = {"resourceType": "Task", "id": f"t{i}", "status": rng.choice(STATUSES), "intent": "order"}
    if owner := _maybe(rng, rng.choice(OWNERS)):
        task["owner"] = {"reference": owner}
    if rng.random() < 0.8:
        task["for"] = {"reference": f"Patient/p{rng.randrange(N_PATIENTS)}"}
    if authored := _maybe(rng, _date(rng, True)):
        task["authoredOn"] = authored
    if rng.random() < 0.5:
        start = _date(rng, True)
        task["executionPeriod"] = _period(start, _date(rng, True)) if rng.random() < 0.5 else {"start": start}
    if rng.random() < 0.4:
        task["partOf"] = [{"reference": f"Task/t{rng.randrange(N_TASKS)}"}]
    return task


def _risk(rng: random.Random, i: int) -> dict:
    probability = rng.choice(["0.5", "0.50", "0.25", "1", "1.0", "0.05", "100", "99.5"])
    return {
        "resourceType": "RiskAssessment",
        "id": f"r{i}",
        "status": "final",
        "subject": {"reference": f"Patient/p{rng.randrange(N_PATIENTS)}"},
        "prediction": [{"probabilityDecimal": orjson.Fragment(probability.encode())}],
    }


def corpus(seed: int) -> list[dict]:
    rng = random.Random(seed)
    resources = [_patient(rng, i) for i in range(N_PATIENTS)]
    resources += [_task(rng, i) for i in range(N_TASKS)]
    resources += [_risk(rng, i) for i in range(N_RISKS)]
    return [orjson.loads(orjson.dumps(r)) for r in resources]


# ----- queries -----

prefixes = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"])
date_values = st.builds(
    lambda prefix, text: prefix + text,
    prefixes,
    st.builds(lambda s: _date(random.Random(s), True), st.integers(0, 10_000)),
)
number_values = st.builds(
    lambda prefix, n: prefix + n,
    prefixes,
    st.sampled_from(["0.5", "0.25", "1", "1e0", "100", "0.3", "99", "1.0"]),
)
string_values = st.sampled_from(["al", "ÁL", "saad", "saad al", "o", "nour", "ömer", "alvarez", "z", "oz"])
token_values = st.sampled_from(
    ["1", "urn:a|1", "urn:b|", "|1", "urn:a|12", "x\\,y", "urn:b|x\\,y", "2", "male", "female"]
)
reference_values = st.sampled_from(
    [
        "o1",
        "Organization/o1",
        "Organization/o2",
        "Practitioner/o1",
        "http://x.org/fhir/Organization/o1",
        "p1",
        "Patient/p2",
        "p3",
    ]
)


def _or(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=3).map(",".join)


def _param(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    return _or(values).map(lambda v: (name, v))


missing = st.sampled_from(["true", "false"])
patient_params = st.one_of(
    _param("name", string_values),
    _param("family:exact", st.sampled_from(FAMILIES + ["ali", "Alvarez"])),
    _param("given:contains", st.sampled_from(["ou", "mer", "Ö", "r"])),
    _param("gender", token_values),
    _param("gender:not", token_values),
    _param("identifier", token_values),
    _param("identifier:not", token_values),
    _param("birthdate", date_values),
    _param("death-date", date_values),
    st.tuples(st.sampled_from(["birthdate:missing", "gender:missing", "identifier:missing"]), missing),
)
task_params = st.one_of(
    _param("status", st.sampled_from(STATUSES)),
    _param("status:not", st.sampled_from(STATUSES)),
    _param("owner", reference_values),
    _param("owner:Organization", st.sampled_from(["o1", "o2"])),
    _param("patient", reference_values),
    _param("subject", reference_values),
    _param("part-of", st.sampled_from(["Task/t1", "t2", "Task/t3"])),
    _param("authored-on", date_values),
    _param("period", date_values),
    _param("patient.name", string_values),
    _param("patient.gender", token_values),
    _param("part-of:Task.status", st.sampled_from(STATUSES)),
    st.tuples(st.sampled_from(["owner:missing", "period:missing", "part-of:missing"]), missing),
)
risk_params = st.one_of(_param("probability", number_values), _param("subject.birthdate", date_values))
has_params = st.one_of(
    _param("_has:Task:patient:status", st.sampled_from(STATUSES)),
    _param("_has:Task:patient:authored-on", date_values),
    _param("_has:RiskAssessment:subject:probability", number_values),
)
queries = st.one_of(
    st.tuples(st.just("Patient"), st.lists(st.one_of(patient_params, has_params), min_size=1, max_size=3)),
    st.tuples(st.just("Task"), st.lists(task_params, min_size=1, max_size=3)),
    st.tuples(st.just("RiskAssessment"), st.lists(risk_params, min_size=1, max_size=2)),
)


@pytest.fixture(scope="module", params=[7, 2024])
async def searchable(request, tmp_path_factory):
    service = await open_service(tmp_path_factory.mktemp(f"property-{request.param}"), clock=lambda: NOW)
    resources = corpus(request.param)
    await put_all(service, resources)
    everything = await service.search((), [("_count", "5000")], ctx=SYSTEM)
    stored = [orjson.loads(v.body) for v in everything.matches]
    yield service, Reference(stored, service.extractor.registry, NOW.timestamp() * 1000)
    await close_service(service)


@pytest.fixture(params=["listed", "walked", "ranged"])
def strategy(request, monkeypatch) -> str:
    """walked: every filter counts as large, so queries walk the type or intersect two lists; ranged:
    two filters on one date or number parameter start from their range rows."""
    if request.param == "walked":
        monkeypatch.setattr(search_exec, "ESTIMATE_CAP", 0)
    if request.param == "ranged":
        monkeypatch.setattr(search_exec, "choose_drivers", forced_ranges(search_exec.choose_drivers))
    return request.param


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries)
async def test_sqlite_search_equals_the_brute_force_reference(searchable, strategy, query):
    service, reference = searchable
    resource_type, params = query
    found = await ids(service, resource_type, params)
    assert len(found) == len(set(found))
    assert set(found) == reference.ids(resource_type, params), (resource_type, params)
