"""Index values: implicit precision ranges and the conversion of each FHIR datatype."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from nphies_facade.resources.search.converters import (
    date_values,
    normalize_string,
    number_values,
    quantity_param_values,
    reference_values,
    string_values,
    token_values,
    uri_values,
)
from nphies_facade.resources.search.precision import date_range
from nphies_facade.resources.search.values import (
    MAX_MS,
    MIN_MS,
    CompositeValue,
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)

UCUM = "http://unitsofmeasure.org"


def ms(*fields: int, tz: timezone = UTC) -> int:
    return int(datetime(*fields, tzinfo=tz).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("2020", ms(2020, 1, 1), ms(2021, 1, 1)),
        ("2020-02", ms(2020, 2, 1), ms(2020, 3, 1)),
        ("2020-12", ms(2020, 12, 1), ms(2021, 1, 1)),
        ("2019-02-28", ms(2019, 2, 28), ms(2019, 3, 1)),
        ("2020-03-04T10:00", ms(2020, 3, 4, 10, 0), ms(2020, 3, 4, 10, 1)),
        ("2020-03-04T10:00Z", ms(2020, 3, 4, 10, 0), ms(2020, 3, 4, 10, 1)),
        ("2020-03-04T10:00:05+02:00", ms(2020, 3, 4, 8, 0, 5), ms(2020, 3, 4, 8, 0, 6)),
        ("2020-03-04T01:00:05-05:30", ms(2020, 3, 4, 6, 30, 5), ms(2020, 3, 4, 6, 30, 6)),
        (
            "2016-10-31T08:25:05.123+10:00",
            ms(2016, 10, 30, 22, 25, 5) + 123,
            ms(2016, 10, 30, 22, 25, 5) + 124,
        ),
        ("2016-10-31T08:25:05.5Z", ms(2016, 10, 31, 8, 25, 5) + 500, ms(2016, 10, 31, 8, 25, 5) + 600),
        ("1899-12-31", ms(1899, 12, 31), ms(1900, 1, 1)),
    ],
)
def test_dates_cover_the_range_their_precision_implies(text: str, lo: int, hi: int) -> None:
    assert date_range(text) == (lo, hi)


def test_a_time_zone_offset_shifts_the_same_wall_clock_time() -> None:
    plus_three = timezone(timedelta(hours=3))
    assert date_range("2024-01-01T09:00:00+03:00") == (
        ms(2024, 1, 1, 9, tz=plus_three),
        ms(2024, 1, 1, 9, 0, 1, tz=plus_three),
    )


@pytest.mark.parametrize(
    "text", ["2020-13", "2019-02-29", "2020-04-31", "20", "2020-01-01T25:00", "soon", ""]
)
def test_values_that_are_not_dates_have_no_range(text: str) -> None:
    assert date_range(text) is None
    assert date_values(text) == []


def test_period_is_start_to_end_and_open_ends_are_unbounded() -> None:
    assert date_values({"start": "2020", "end": "2020-06-15"}) == [DateValue(ms(2020, 1, 1), ms(2020, 6, 16))]
    assert date_values({"start": "2016-10-31T08:25:05+10:00"}) == [
        DateValue(ms(2016, 10, 30, 22, 25, 5), MAX_MS)
    ]
    assert date_values({"end": "2020"}) == [DateValue(MIN_MS, ms(2021, 1, 1))]
    assert MIN_MS == ms(1, 1, 1) and MAX_MS == ms(9999, 12, 31, 23, 59, 59) + 1000


def test_timing_gives_one_value_per_event() -> None:
    timing = {"event": ["2020-01-01", "2020-01-02T10:00:00Z"], "repeat": {"frequency": 1}}
    assert date_values(timing) == [
        DateValue(ms(2020, 1, 1), ms(2020, 1, 2)),
        DateValue(ms(2020, 1, 2, 10), ms(2020, 1, 2, 10, 0, 1)),
    ]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1.5, NumberValue(1.5, 1.45, 1.55)),
        (100, NumberValue(100.0, 99.5, 100.5)),
        (0.001, NumberValue(0.001, 0.0005, 0.0015)),
        (Decimal("1.50"), NumberValue(1.5, 1.495, 1.505)),
        (1e-7, NumberValue(1e-7, 0.5e-7, 1.5e-7)),
    ],
)
def test_numbers_cover_half_a_unit_of_their_last_digit(number: object, expected: NumberValue) -> None:
    assert number_values(number) == [expected]


def test_booleans_and_strings_are_not_numbers() -> None:
    assert number_values(True) == []
    assert number_values("1.5") == []


def test_quantity_keeps_units_and_precision() -> None:
    quantity = {"value": 5.4, "unit": "mg", "system": UCUM, "code": "mg"}
    assert quantity_param_values(quantity) == [QuantityValue(5.4, 5.35, 5.45, UCUM, "mg", "mg")]


def test_age_and_duration_are_quantities() -> None:
    age = {"value": 42, "unit": "yr", "system": UCUM, "code": "a"}
    assert quantity_param_values(age) == [QuantityValue(42.0, 41.5, 42.5, UCUM, "a", "yr")]


def test_money_is_a_quantity_coded_by_currency() -> None:
    assert quantity_param_values({"value": 135.57, "currency": "USD"}) == [
        QuantityValue(135.57, 135.565, 135.575, None, "USD", None)
    ]


def test_range_quantity_spans_low_to_high() -> None:
    range_ = {"low": {"value": 2, "code": "kg", "system": UCUM}, "high": {"value": 5.5, "code": "kg"}}
    assert quantity_param_values(range_) == [QuantityValue(2.0, 1.5, 5.55, UCUM, "kg", None)]
    assert quantity_param_values({"high": {"value": 3}}) == [
        QuantityValue(3.0, float("-inf"), 3.5, None, None, None)
    ]


def test_sampled_data_and_quantities_without_value_are_not_indexed() -> None:
    assert quantity_param_values({"origin": {"value": 0}, "period": 10, "dimensions": 1, "data": "1 2"}) == []
    assert quantity_param_values({"unit": "mg"}) == []


def test_normalized_strings_ignore_case_accents_and_spacing() -> None:
    assert normalize_string("  Ünïcödé   Náme\t") == "unicode name"
    assert normalize_string("ﬁeld") == "field"
    assert string_values("Müller") == [StringValue("muller", "Müller")]
    assert string_values("   ") == []


def test_human_name_gives_each_part() -> None:
    name = {
        "use": "official",
        "family": "Chalmers",
        "given": ["Peter", "James"],
        "prefix": ["Mr"],
        "text": "P J C",
    }
    assert [v.exact for v in string_values(name)] == ["P J C", "Chalmers", "Peter", "James", "Mr"]


def test_address_gives_each_part() -> None:
    address = {
        "use": "home",
        "line": ["534 Erewhon St"],
        "city": "Riyadh",
        "district": "Olaya",
        "state": "Riyadh Province",
        "postalCode": "12211",
        "country": "SA",
    }
    assert [v.exact for v in string_values(address)] == [
        "534 Erewhon St",
        "Riyadh",
        "Olaya",
        "Riyadh Province",
        "12211",
        "SA",
    ]


def test_codeable_concept_gives_one_token_per_coding_with_text() -> None:
    concept = {
        "coding": [
            {"system": "http://loinc.org", "code": "1975-2", "display": "Bilirubin"},
            {"system": "http://snomed.info/sct", "code": "123"},
        ],
        "text": "Total bilirubin",
    }
    assert token_values(concept) == [
        TokenValue("http://loinc.org", "1975-2", "Total bilirubin"),
        TokenValue("http://snomed.info/sct", "123", "Total bilirubin"),
    ]
    assert token_values({"coding": [{"code": "x", "display": "Ex"}]}) == [TokenValue(None, "x", "Ex")]
    assert token_values({"text": "waiting for specimen"}) == [TokenValue(None, None, "waiting for specimen")]


def test_identifier_token_carries_its_type_for_of_type() -> None:
    identifier = {
        "use": "usual",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        "system": "urn:oid:1.2.36.146.595.217.0.1",
        "value": "12345",
    }
    assert token_values(identifier) == [
        TokenValue(
            "urn:oid:1.2.36.146.595.217.0.1",
            "12345",
            None,
            "http://terminology.hl7.org/CodeSystem/v2-0203",
            "MR",
        )
    ]
    assert token_values({"system": "http://nphies.sa/member", "value": "A1"}) == [
        TokenValue("http://nphies.sa/member", "A1")
    ]


def test_contact_point_token_is_its_value() -> None:
    assert token_values({"system": "phone", "value": "+966 555", "use": "work", "rank": 1}) == [
        TokenValue(None, "+966 555")
    ]


def test_primitive_tokens() -> None:
    assert token_values("active") == [TokenValue(None, "active")]
    assert token_values(True) == [TokenValue(None, "true")]
    assert token_values(False) == [TokenValue(None, "false")]
    assert token_values({"value": 5, "system": UCUM, "code": "mg"}) == []


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"reference": "Patient/123"}, [ReferenceValue("Patient", "123", "Patient/123")]),
        ({"reference": "Patient/123/_history/2"}, [ReferenceValue("Patient", "123", "Patient/123")]),
        (
            {"reference": "http://x/fhir/Patient/123"},
            [ReferenceValue("Patient", "123", "http://x/fhir/Patient/123")],
        ),
        (
            {"reference": "https://x/fhir/Patient/a.b-1/_history/3"},
            [ReferenceValue("Patient", "a.b-1", "https://x/fhir/Patient/a.b-1")],
        ),
        ({"reference": "http://x/other/thing"}, [ReferenceValue(None, None, "http://x/other/thing")]),
        ({"reference": "urn:uuid:04121321-4af5"}, [ReferenceValue(None, None, "urn:uuid:04121321-4af5")]),
        ({"reference": "#signature"}, []),
        ({"identifier": {"system": "http://happyvalley.com/claim", "value": "1500"}}, []),
        ({"display": "General Wellness Careplan"}, []),
        (
            "http://hl7.org/fhir/ValueSet/x|4.0.1",
            [ReferenceValue(None, None, "http://hl7.org/fhir/ValueSet/x")],
        ),
        (
            {"resourceType": "Composition", "id": "c1"},
            [ReferenceValue("Composition", "c1", "Composition/c1")],
        ),
    ],
)
def test_references(reference: object, expected: list[ReferenceValue]) -> None:
    assert reference_values(reference) == expected


def test_uri_values() -> None:
    assert uri_values("http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/patient|1.0.0") == [
        UriValue("http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/patient|1.0.0")
    ]
    assert uri_values({"url": "x"}) == []


def test_every_value_is_hashable_and_immutable() -> None:
    values = [
        StringValue("a", "A"),
        TokenValue("s", "c"),
        ReferenceValue("Patient", "1", "Patient/1"),
        DateValue(0, 1),
        NumberValue(1.0, 0.5, 1.5),
        QuantityValue(1.0, 0.5, 1.5, None, "USD", None),
        UriValue("u"),
        CompositeValue((("code", TokenValue("s", "c")), ("value", NumberValue(1.0, 0.5, 1.5)))),
    ]
    assert len(set(values)) == len(values)
    assert all(not hasattr(value, "__dict__") for value in values)
    with pytest.raises(AttributeError):
        values[0].norm = "b"  # type: ignore[misc]
