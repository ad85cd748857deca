"""Every parameter type, modifier and prefix over a fixed corpus: exact result sets, each also checked
against the brute-force reference (extract + matching.py over every stored resource)."""

from datetime import UTC, datetime

import orjson
import pytest

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.sqlite import search_exec

from .search_corpus import BS, DELETED, IQAMA, NID, PROFILE, UCUM, V2, WF, examples, generated
from .search_support import SYSTEM, Reference, close_service, forced_ranges, ids, open_service, put_all

NOW = datetime(2024, 6, 1, tzinfo=UTC)

CASES = [
    # string: starts-with, case- and accent-insensitive; :exact; :contains
    ("Patient", "name=al", {"p1"}),
    ("Patient", "name=SÁRA", {"p2"}),
    ("Patient", "name:exact=Sára", {"p2"}),
    ("Patient", "name:exact=Sara", set()),
    ("Patient", "name:contains=ahtan", {"p1"}),
    ("Patient", "name:contains=bin", {"p2", "p6"}),
    ("Patient", "name=mohammed bin", {"p6"}),
    ("Patient", "family=sa", {"p2", "p3"}),
    ("Patient", "given=noura,omar", {"p2", "p3"}),
    ("Patient", "given=noura&family=zah", set()),
    ("Patient", "address-city=riy", {"p1"}),
    ("Patient", "family:missing=true", {"animal", "p6"}),
    # token: code, system|code, |code, system|, :not, :text, :of-type, escapes
    ("Patient", "gender=male", {"example", "f001", "f201", "pat1", "p1", "p3"}),
    ("Patient", "gender:not=male", {"animal", "infant-twin-1", "pat2", "p2", "p4", "p6"}),
    ("Patient", f"identifier={NID}|1000000001", {"p1"}),
    ("Patient", "identifier=1000000003", {"p3"}),
    ("Patient", f"identifier={NID}|", {"p1", "p3"}),
    ("Patient", "identifier=|1000000003", set()),
    ("Patient", "identifier=urn:x\\|y|12\\,34", {"p6"}),
    ("Patient", f"identifier:of-type={V2}|NI|1000000001", {"p1"}),
    ("Patient", f"identifier:of-type={V2}|PRC|1000000001", set()),
    ("Patient", "active=true", {"animal", "example", "f001", "f201", "pat1", "pat2", "p1"}),
    ("Patient", "active:missing=true", {"infant-twin-1", "p2", "p3", "p4", "p6"}),
    ("Patient", "telecom=%2B966500000001", {"p1"}),
    ("Patient", "_id=p1,p4,p5", {"p1", "p4"}),
    ("Patient", "_tag=urn:tags|vip", {"p1"}),
    ("Patient", "_security=R", {"p2"}),
    ("Task", f"code={WF}|eligibility", {"t1", "t3"}),
    ("Task", "business-status=waiting", {"t1"}),
    ("Task", f"business-status={BS}|queued", {"t2"}),
    ("Task", "business-status:text=queued", {"t2"}),
    ("Task", "business-status:text=waiting for", {"t1", "example1", "example2"}),
    (
        "Task",
        "status=requested,in-progress",
        {"t1", "t2", "t4", "example1", "fm-example1", "fm-example2", "fm-example3"},
    ),
    # uri: exact, :below, :above
    ("Patient", f"_profile={PROFILE}", {"p1"}),
    ("Patient", "_profile:below=http://nphies.sa/fhir", {"p1"}),
    ("Patient", f"_profile:above={PROFILE}/extra/more", {"p1"}),
    ("Patient", "_profile:above=http://nphies.sa", set()),
    ("Patient", "_profile:missing=false", {"p1"}),
    ("Patient", "_source=urn:emr:alpha", {"p1"}),
    # dates: precision ranges and prefixes
    ("Patient", "birthdate=1990", {"p2", "p3"}),
    ("Patient", "birthdate=1990-01", {"p3"}),
    ("Patient", "birthdate=ne1990", {"animal", "example", "f001", "f201", "infant-twin-1", "p1", "p4", "p6"}),
    ("Patient", "birthdate=gt1990-01-15", {"p2", "animal", "infant-twin-1", "p6"}),
    ("Patient", "birthdate=lt1980-05-01", {"example", "f001", "f201", "p4"}),
    ("Patient", "birthdate=ge1980-05-01", {"p1", "p2", "p3", "animal", "infant-twin-1", "p6"}),
    ("Patient", "birthdate=le1975-03", {"example", "f001", "f201", "p4"}),
    ("Patient", "birthdate=sa1990-01-15", {"animal", "infant-twin-1", "p6"}),
    ("Patient", "birthdate=eb1975-03-15", {"example", "f001", "f201"}),
    ("Patient", "birthdate=ap1990", {"p2", "p3"}),
    ("Patient", "birthdate=ge1975&birthdate=lt1990", {"p4", "p1"}),
    ("Patient", "birthdate:missing=true", {"pat1", "pat2"}),
    # dates with time zones (a value without one is UTC)
    ("Patient", "death-date=2020-03-04", {"p3"}),
    ("Patient", "death-date=2020-03-04T07:00:00Z", {"p3"}),
    ("Patient", "death-date=2020-03-04T10:00:00%2B03:00", {"p3"}),
    ("Patient", "death-date=2020-03-04T10:00:00 03:00", {"p3"}),
    ("Patient", "death-date=2020-03-04T10:00:00Z", set()),
    ("Patient", "death-date=2020-03-04T07:00", {"p3"}),
    ("Task", "authored-on=2024-03-01", {"t1", "t2"}),
    ("Task", "authored-on=2024-03-02", {"t3", "t5"}),
    ("Task", "authored-on=2024-02-29", {"t4"}),
    ("Task", "authored-on=ge2024-03-02", {"t3", "t5"}),
    (
        "Task",
        "authored-on=lt2024-03-01T10:00:00%2B03:00",
        {"t4", "example1", "example2", "example3", "fm-example1", "fm-example2", "fm-example3"},
    ),
    ("Task", "period=lt2024-03-02", {"t1", "example1", "example2"}),
    ("Task", "period=ge2024-03-04&_id=t1,t2", {"t1", "t2"}),
    ("Task", "period=2024-03-03", set()),
    ("Encounter", "location-period=ge2024-02-15&location-period=lt2024-01-15", {"e1"}),
    ("Encounter", "location-period=ge2024-02-01&location-period=lt2024-02-28", {"e1", "e2"}),
    ("Encounter", "location-period=ge2024-02-01&location-period=lt2024-02-15", {"e1", "e2"}),
    ("Encounter", "location-period=ge2024-02-01&location-period=eb2024-02-15", {"e1"}),
    ("Encounter", "location-period=gt2024-01-05&location-period=lt2024-02-01", {"e1", "e3"}),
    ("Task", "period=eb2024-03-06", {"t1"}),
    # number
    ("RiskAssessment", "probability=0.5", {"r2"}),
    ("RiskAssessment", "probability=0.2", set()),
    ("RiskAssessment", "probability=gt0.25", {"r2", "r3", "r5"}),
    ("RiskAssessment", "probability=ge0.25", {"r2", "r3", "r4", "r5"}),
    ("RiskAssessment", "probability=lt0.25", {"r1", "r5"}),
    ("RiskAssessment", "probability=le0.02", {"r1"}),
    ("RiskAssessment", "probability=ne0.5", {"r1", "r3", "r4", "r5"}),
    ("RiskAssessment", "probability=ap100", {"r3"}),
    ("RiskAssessment", "probability=1e2", {"r3"}),
    ("RiskAssessment", "probability=sa0.3", {"r2", "r3", "r5"}),
    ("RiskAssessment", "probability=eb0.3", {"r1", "r4", "r5"}),
    ("RiskAssessment", "probability=ge0.5&probability=lt0.2", {"r5"}),
    ("RiskAssessment", "probability=ge0.2&probability=le0.5", {"r2", "r4", "r5"}),
    ("RiskAssessment", "probability=ge0.2&probability=le0.3", {"r4", "r5"}),
    ("RiskAssessment", "probability=ge0.3&probability=le0.6&_id=r2,r3,r4", {"r2"}),
    # quantity
    ("Observation", "value-quantity=72", {"o1"}),
    ("Observation", "value-quantity=90", {"o2"}),
    ("Observation", "value-quantity=80.5||kg", {"o3"}),
    ("Observation", f"value-quantity=gt80|{UCUM}|kg", {"o3", "o4"}),
    ("Observation", "value-quantity=lt100||/min", {"o1", "o2"}),
    ("Observation", "value-quantity=ap100", {"o2", "o4"}),
    ("Observation", "value-quantity=ne72", {"o2", "o3", "o4"}),
    ("Observation", "value-quantity:missing=true", {"o5"}),
    # composite
    ("Observation", "code-value-quantity=8867-4$gt80", {"o2"}),
    ("Observation", "code-value-quantity=http://loinc.org|29463-7$lt90", {"o3"}),
    ("Observation", "code-value-quantity=29463-7$100||kg", {"o4"}),
    ("Observation", "code-value-string=8480-6$elev", {"o5"}),
    ("Observation", "code-value-quantity:missing=true", {"o5"}),
    # reference: id, Type/id, absolute url, :Type, :missing
    ("Task", "owner=Organization/org1", {"t1", "t2"}),
    ("Task", "owner=org1", {"t1", "t2"}),
    ("Task", "owner:Organization=org2", {"t3", "t4"}),
    ("Task", "owner:Practitioner=pr1", {"t5"}),
    ("Task", "focus=http://other.org/fhir/Claim/remote1", {"t5"}),
    ("Task", "focus:Claim=c1", {"t1", "t4"}),
    ("Task", "patient=Patient/p1", {"t1", "t3"}),
    ("Task", "part-of=Task/t1", {"t2", "t3"}),
    ("Task", "part-of:missing=false", {"t2", "t3", "example2"}),
    ("Task", "subject:missing=true", {"t4", "fm-example1", "fm-example2", "fm-example3"}),
    # chains
    ("Task", f"patient.identifier={NID}|1000000001", {"t1", "t3"}),
    ("Task", "patient.name=sara", {"t2"}),
    ("Task", "focus:Claim.status=active", {"t1", "t4"}),
    ("Task", f"focus:Claim.patient.identifier={IQAMA}|2000000002", {"t2"}),
    ("Task", "owner:Organization.name=king", {"t1", "t2"}),
    ("Task", "focus.status=active", {"t1", "t4"}),
    ("Claim", "patient.birthdate=lt1985", {"c1"}),
    # reverse chains
    ("Patient", "_has:Task:patient:status=requested", {"p1"}),
    ("Claim", "_has:Task:focus:owner=Organization/org2", {"c1"}),
    ("Patient", "_has:Observation:subject:code=8867-4", {"p1", "p2"}),
    ("Patient", "_has:Claim:patient:_has:Task:focus:status=in-progress", {"p2"}),
]


@pytest.fixture(scope="module")
async def corpus(tmp_path_factory):
    service = await open_service(tmp_path_factory.mktemp("search-params"), clock=lambda: NOW)
    await put_all(service, examples() + generated())
    for resource_type, resource_id in DELETED:
        await service.delete(SYSTEM, resource_type, resource_id)
    everything = await service.search((), [("_count", "5000")], ctx=SYSTEM)
    reference = Reference(
        [orjson.loads(v.body) for v in everything.matches], service.extractor.registry, NOW.timestamp() * 1000
    )
    yield service, reference
    await close_service(service)


@pytest.fixture(params=["listed", "walked", "ranged"])
def strategy(request, monkeypatch) -> str:
    """listed: queries start from the smallest filter; walked: every filter counts as large, so queries
    walk the type in result order or intersect two lists; ranged: two filters on one date or number
    parameter always start from their range rows (the paths big tables take)."""
    if request.param == "walked":
        monkeypatch.setattr(search_exec, "ESTIMATE_CAP", 0)
    if request.param == "ranged":
        monkeypatch.setattr(search_exec, "choose_drivers", forced_ranges(search_exec.choose_drivers))
    return request.param


@pytest.mark.parametrize(("resource_type", "query", "expected"), CASES, ids=[f"{t}?{q}" for t, q, _ in CASES])
async def test_search_returns_exactly_the_matching_resources(
    corpus, strategy, resource_type, query, expected
):
    service, reference = corpus
    found = await ids(service, resource_type, query)
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert reference.ids(resource_type, query) == expected


@pytest.mark.parametrize(
    ("resource_type", "query", "expected"),
    [
        ("Patient", "_id=p1,p2,p3,p4,p6&_sort=birthdate", ["p4", "p1", "p2", "p3", "p6"]),
        ("Patient", "_id=p1,p2,p3,p4,p6&_sort=-birthdate", ["p6", "p2", "p3", "p1", "p4"]),
        ("Patient", "_id=p1,p2,p3,p4,p6&_sort=gender,-birthdate", ["p2", "p3", "p1", "p6", "p4"]),
        ("Patient", "_id=p6,p1,p3&_sort=-_id", ["p6", "p3", "p1"]),
        ("Task", "owner=org1,org2&_sort=-authored-on", ["t3", "t2", "t1", "t4"]),
        ("Task", "owner=org1,org2&_sort=status,authored-on", ["t3", "t2", "t4", "t1"]),
    ],
)
async def test_search_sorts_by_several_keys(corpus, strategy, resource_type, query, expected):
    assert await ids(corpus[0], resource_type, query) == expected


async def test_deleted_resources_never_match(corpus):
    service, _ = corpus
    assert await ids(service, "Patient", "_id=p5") == []
    assert await ids(service, "Patient", "family=ghost") == []
    assert await ids(service, "Task", "_has:Task:part-of:status=requested") == []
    assert "t6" not in await ids(service, "Task", "owner=org1")
    assert "c3" not in await ids(service, "Claim", "_has:Task:focus:status=requested")


@pytest.mark.parametrize(
    "query",
    [
        "birthdate=1990-13",
        "birthdate=xx1990",
        "birthdate=yesterday",
        "probability=gtabc",
        "value-quantity=1|2",
    ],
)
async def test_malformed_values_are_400_naming_the_parameter(corpus, query):
    name = query.split("=")[0]
    resource_type = {"probability": "RiskAssessment", "value-quantity": "Observation"}.get(name, "Patient")
    with pytest.raises(FhirError) as raised:
        await ids(corpus[0], resource_type, query)
    assert raised.value.status == 400
    assert raised.value.issues[0].expression == name
