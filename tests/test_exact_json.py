"""The JSON codec keeps every number's text: parsed, copied, patched and written back unchanged."""

import copy
import pickle

import orjson
import pytest

from nphies_facade import exact_json
from nphies_facade.nphies.fhirjson import copy_json, money
from nphies_facade.resources.search.precision import value_range
from nphies_facade.resources.service import apply_json_patch

KEPT = [
    "105.00",
    "0.50",
    "1e2",
    "1.0e2",
    "1E-22",
    "1.000000000000000000E-245",
    "-0.0",
    "-0",
    "0.10000000000000000001",
    "3.14159265358979323846264338327950288",
    "66.899999999999991",
    "123456789012345678901234",
    "-123456789012345678901234",
    "18446744073709551615",
    "1.5",
    "2",
    "0",
]


@pytest.mark.parametrize("text", KEPT)
@pytest.mark.parametrize("layout", ['{{"value":{}}}', "[ {} ]", '{{"a": [1, {} , "2024-01-05"]}}', "{}"])
def test_a_number_is_written_back_as_it_was_read(text, layout):
    document = layout.format(text)
    assert exact_json.dumps(exact_json.loads(document.encode())) == document.replace(" ", "").encode()


@pytest.mark.parametrize("text", KEPT)
def test_a_number_survives_copies_pickles_and_deep_copies(text):
    value = exact_json.loads(f'{{"value":{text}}}'.encode())
    for copied in (
        exact_json.copy(value),
        copy_json(value),
        copy.deepcopy(value),
        pickle.loads(pickle.dumps(value)),
    ):
        assert exact_json.dumps(copied) == f'{{"value":{text}}}'.encode()


def test_numbers_that_print_back_the_same_stay_plain_ints_and_floats():
    value = exact_json.loads(b'{"a":1,"b":2.5,"c":-0.0,"d":[1.0, 100]}')
    assert [type(value[k]) for k in "abc"] == [int, float, float]
    assert [type(v) for v in value["d"]] == [float, int]


def test_a_kept_number_computes_as_a_float():
    amount = exact_json.loads(b'{"value":105.00}')["value"]
    assert isinstance(amount, float) and amount == 105
    assert amount + 0.5 == 105.5 and type(amount * 2) is float
    assert str(amount) == "105.00" and f"{amount}" == "105.00"
    assert money({"value": amount, "currency": "SAR"}) == 105.0
    assert round(amount * 0.15, 2) == 15.75


def test_search_sees_the_precision_of_the_text():
    """105.00 covers [104.995, 105.005); the float 105.0 would cover [104.95, 105.05)."""
    value, lo, hi = value_range(exact_json.loads(b"105.00"))
    assert (value, lo, hi) == (105.0, 104.995, 105.005)
    assert value_range(exact_json.loads(b"1e2"))[1:] == (50.0, 150.0)


def test_json_patch_keeps_the_text_of_what_it_adds_and_what_it_keeps():
    document = exact_json.loads(b'{"resourceType":"Observation","valueQuantity":{"value":0.50}}')
    operations = exact_json.loads(
        b'[{"op":"add","path":"/valueQuantity/comparator","value":"<"},'
        b'{"op":"add","path":"/component","value":[{"valueDecimal":1.10}]}]'
    )
    patched = apply_json_patch(document, operations)
    assert exact_json.dumps(patched) == (
        b'{"resourceType":"Observation","valueQuantity":{"value":0.50,"comparator":"<"},'
        b'"component":[{"valueDecimal":1.10}]}'
    )


def test_sorted_keys_write_kept_numbers_too():
    assert exact_json.dumps(exact_json.loads(b'{"b":1.10,"a":2}'), option=orjson.OPT_SORT_KEYS) == (
        b'{"a":2,"b":1.10}'
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"NaN",
        b'{"a":Infinity}',
        b'{"a":1E400}',
        b'{"a":-0,}',
        b"[1,]",
        b"\xff",
        b'"\xed\xa0\x80"',
        b'"\\ud800"',
        b'"a\x01b"',
        b"\xef\xbb\xbf{}",
        b"01",
        b'{"a":1} x',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_what_is_not_json_is_refused(body):
    with pytest.raises(exact_json.JSONDecodeError):
        exact_json.loads(body)


def test_an_object_that_is_not_json_still_fails_to_serialise():
    with pytest.raises(TypeError):
        exact_json.dumps({"a": object()})


def test_a_plain_copy_has_exact_json_types():
    value = exact_json.plain(exact_json.loads(b'{"a":[105.00,1],"b":"x"}'))
    assert value == {"a": [105.0, 1], "b": "x"} and type(value["a"][0]) is float
