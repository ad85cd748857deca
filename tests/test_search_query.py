"""Parsing search parameters: modifiers, prefixes, escapes, chains, _has, result parameters and errors."""

import pytest

from nphies_facade.resources.errors import FhirError
from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.query import (
    HasCriterion,
    Include,
    QueryParser,
    RangeMatch,
    ReferenceMatch,
    TokenMatch,
)


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    return QueryParser(SearchRegistry(), base_url="http://fhir.test")


def _one(parser: QueryParser, resource_type: str, name: str, value: str):
    query = parser.parse((resource_type,), [(name, value)], strict=True)
    assert len(query.criteria) == 1
    return query.criteria[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", (TokenMatch(None, "abc", False),)),
        ("http://s|abc", (TokenMatch("http://s", "abc", True),)),
        ("|abc", (TokenMatch(None, "abc", True),)),
        ("http://s|", (TokenMatch("http://s", None, True),)),
        ("a,b", (TokenMatch(None, "a", False), TokenMatch(None, "b", False))),
        ("a\\,b", (TokenMatch(None, "a,b", False),)),
        ("urn:x\\|y|v\\\\1", (TokenMatch("urn:x|y", "v\\1", True),)),
        ("a,,b", (TokenMatch(None, "a", False), TokenMatch(None, "b", False))),
    ],
)
def test_token_values_with_systems_and_escapes(parser, value, expected):
    assert _one(parser, "Patient", "identifier", value).values == expected


def test_string_values_are_normalised_unless_exact(parser):
    assert _one(parser, "Patient", "name", "  ÁBC  Def ").values == ("abc def",)
    assert _one(parser, "Patient", "name:exact", "Ábc").values == ("Ábc",)
    assert _one(parser, "Patient", "name:contains", "a\\,b").values == ("a,b",)


def test_date_prefixes_and_precision(parser):
    (match,) = _one(parser, "Patient", "birthdate", "ge2024-03").values
    assert isinstance(match, RangeMatch) and match.prefix == "ge"
    assert match.hi - match.lo == 31 * 86_400_000
    (zoned,) = _one(parser, "Patient", "birthdate", "2024-03-01T10:00:00 03:00").values
    assert zoned.lo == _one(parser, "Patient", "birthdate", "2024-03-01T07:00:00Z").values[0].lo


def test_reference_values(parser):
    values = _one(
        parser, "Task", "focus", "Claim/1,2,http://fhir.test/Claim/3,http://x.org/fhir/Claim/4"
    ).values
    assert values == (
        ReferenceMatch("Claim", "1", None),
        ReferenceMatch(None, "2", None),
        ReferenceMatch("Claim", "3", None),
        ReferenceMatch(None, None, "http://x.org/fhir/Claim/4"),
    )
    assert _one(parser, "Task", "focus:Claim", "5").values == (ReferenceMatch("Claim", "5", None),)


def test_chains_carry_target_types_and_inner_modifiers(parser):
    criterion = _one(parser, "Task", "patient.name:exact", "Sára")
    assert criterion.target_types == ("Patient",)
    assert criterion.chain.modifier == "exact" and criterion.chain.values == ("Sára",)
    nested = _one(parser, "Task", "focus:Claim.patient.identifier", "x|1")
    assert nested.target_types == ("Claim",) and nested.chain.target_types == ("Patient",)
    wide = _one(parser, "Task", "focus.status", "active")
    assert "Claim" in wide.target_types and "Patient" not in wide.target_types


def test_reverse_chains_nest(parser):
    criterion = _one(parser, "Patient", "_has:Claim:patient:_has:Task:focus:status", "requested")
    assert isinstance(criterion, HasCriterion) and isinstance(criterion.inner, HasCriterion)
    assert criterion.inner.source_type == "Task" and criterion.inner.inner.param.code == "status"


def test_missing_takes_true_or_false(parser):
    assert _one(parser, "Patient", "gender:missing", "true").missing is True
    with pytest.raises(FhirError):
        _one(parser, "Patient", "gender:missing", "yes")


def test_empty_values_are_no_criteria(parser):
    assert parser.parse(("Patient",), [("name", ""), ("gender", ",")], strict=True).criteria == []


def test_unknown_parameters_are_ignored_or_refused(parser):
    lenient = parser.parse(("Patient",), [("nonsense", "1"), ("gender", "male")])
    assert lenient.ignored == ("nonsense",) and len(lenient.criteria) == 1
    assert lenient.used == (("gender", "male"),)
    with pytest.raises(FhirError) as raised:
        parser.parse(("Patient",), [("nonsense", "1")], strict=True)
    assert raised.value.status == 400 and raised.value.issues[0].expression == "nonsense"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("gender:exact", "male"),
        ("name:below", "x"),
        ("birthdate", "2024-02-30"),
        ("birthdate", "xx2024"),
        ("birthdate", "2024-01-01T25:00"),
        ("identifier:of-type", "a|b"),
        ("general-practitioner:Patient", "1"),
        ("gender.name", "x"),
        ("_has:Nope:subject:code", "x"),
        ("_count", "ten"),
        ("_sort", "nonsense"),
        ("_summary", "maybe"),
        ("_total", "some"),
        ("_include", "Patient:name"),
        ("_type", "Nope"),
    ],
)
def test_malformed_parameters_are_400_naming_the_parameter(parser, name, value):
    with pytest.raises(FhirError) as raised:
        parser.parse(("Patient",), [(name, value)])
    assert raised.value.status == 400
    assert raised.value.issues[0].expression == name


def test_result_parameters(parser):
    query = parser.parse(
        ("Task",),
        [
            ("_sort", "-_lastUpdated,status"),
            ("_count", "5000"),
            ("_include", "Task:focus"),
            ("_include:iterate", "Claim:patient"),
            ("_revinclude", "Provenance:target"),
            ("_include", "*"),
            ("_summary", "count"),
            ("_total", "accurate"),
            ("_elements", "status,code"),
        ],
        max_count=1000,
    )
    assert [(k.code, k.descending) for k in query.sort] == [("_lastUpdated", True), ("status", False)]
    assert query.count == 1000 and query.summary == "count" and query.total == "accurate"
    assert query.includes == (
        Include("Task", "focus", None, False, False),
        Include("Claim", "patient", None, True, False),
        Include("Provenance", "target", None, False, True),
        Include("*", "*", None, False, False),
    )
    assert query.elements == ("status", "code")


def test_system_search_takes_types_from_type_parameter(parser):
    query = parser.parse((), [("_type", "Patient,Task"), ("_id", "a")])
    assert query.resource_types == ("Patient", "Task") and len(query.criteria) == 1
    everything = parser.parse((), [("_lastUpdated", "ge2024")])
    assert everything.resource_types == () and everything.criteria[0].param.code == "_lastUpdated"
    with pytest.raises(FhirError):
        parser.parse((), [("_type", "Patient,Task"), ("gender", "male")], strict=True)
