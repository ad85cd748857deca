"""Turn extracted FHIR elements into index values, one small function per datatype.

The datatype of an element is read from its shape and the search parameter's type (a string parameter on
a dict with `family` is a HumanName, a token on a dict with `coding` a CodeableConcept ...), so the same
converters serve the compiled accessors and the fhirpathpy fallback, whose results carry no type.
"""

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from nphies_facade.resources.search.precision import as_decimal, date_range, number_range, value_range
from nphies_facade.resources.search.values import (
    MAX_MS,
    MIN_MS,
    DateValue,
    IndexValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)

Converter = Callable[[object], list[IndexValue]]

HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
CONTACT_POINT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_ID = r"[A-Za-z0-9\-.]{1,64}"
_TYPE = r"[A-Z][A-Za-z]{1,63}"
_RELATIVE_REFERENCE = re.compile(rf"({_TYPE})/({_ID})(?:/_history/{_ID})?")
_ABSOLUTE_REFERENCE_TAIL = re.compile(rf"/({_TYPE})/({_ID})(?:/_history/{_ID})?$")


# strings


def normalize_string(text: str) -> str:
    """Lower-case, drop accents (NFKD, then no combining marks) and collapse whitespace."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(text.lower().split())


def _string_value(text: object) -> list[IndexValue]:
    if type(text) is not str:
        return []
    norm = normalize_string(text)
    return [StringValue(norm, text)] if norm else []


def _parts_strings(element: dict, parts: tuple[str, ...]) -> list[IndexValue]:
    out: list[IndexValue] = []
    for part in parts:
        value = element.get(part)
        if type(value) is list:
            for item in value:
                out.extend(_string_value(item))
        elif value is not None:
            out.extend(_string_value(value))
    return out


def human_name_strings(name: dict) -> list[IndexValue]:
    return _parts_strings(name, HUMAN_NAME_PARTS)


def address_strings(address: dict) -> list[IndexValue]:
    return _parts_strings(address, ADDRESS_PARTS)


def string_values(element: object) -> list[IndexValue]:
    if type(element) is str:
        return _string_value(element)
    if type(element) is not dict:
        return []
    if "family" in element or "given" in element or "prefix" in element or "suffix" in element:
        return human_name_strings(element)
    return address_strings(element)


# tokens


def _str_or_none(value: object) -> str | None:
    return value if type(value) is str and value else None


def coding_token(coding: dict, text: str | None = None) -> list[IndexValue]:
    system, code = _str_or_none(coding.get("system")), _str_or_none(coding.get("code"))
    if system is None and code is None:
        return []
    return [TokenValue(system, code, text or _str_or_none(coding.get("display")))]


def codeable_concept_tokens(concept: dict) -> list[IndexValue]:
    text = _str_or_none(concept.get("text"))
    out: list[IndexValue] = []
    codings = concept.get("coding")
    if type(codings) is list:
        for coding in codings:
            if type(coding) is dict:
                out.extend(coding_token(coding, text))
    if not out and text is not None:
        out.append(TokenValue(None, None, text))
    return out


def identifier_tokens(identifier: dict) -> list[IndexValue]:
    system, value = _str_or_none(identifier.get("system")), _str_or_none(identifier.get("value"))
    if system is None and value is None:
        return []
    id_type = identifier.get("type")
    if type(id_type) is not dict:
        return [TokenValue(system, value)]
    text = _str_or_none(id_type.get("text"))
    type_codings = [c for c in id_type.get("coding") or () if type(c) is dict]
    if not type_codings:
        return [TokenValue(system, value, text)]
    return [
        TokenValue(system, value, text, _str_or_none(c.get("system")), _str_or_none(c.get("code")))
        for c in type_codings
    ]


def contact_point_token(contact: dict) -> list[IndexValue]:
    value = _str_or_none(contact.get("value"))
    return [TokenValue(None, value)] if value is not None else []


def _is_contact_point(element: dict) -> bool:
    return "rank" in element or element.get("system") in CONTACT_POINT_SYSTEMS


def _token_from_dict(element: dict) -> list[IndexValue]:
    if "coding" in element:
        return codeable_concept_tokens(element)
    value = element.get("value")
    if value is not None and type(value) is not str:
        return []  # a Quantity: not a token
    if "type" in element or "assigner" in element:
        return identifier_tokens(element)
    if value is not None:
        return contact_point_token(element) if _is_contact_point(element) else identifier_tokens(element)
    if "code" in element or "system" in element:
        return coding_token(element)
    if "text" in element:
        return codeable_concept_tokens(element)
    return []


def token_values(element: object) -> list[IndexValue]:
    kind = type(element)
    if kind is str:
        return [TokenValue(None, element)] if element else []
    if kind is bool:
        return [TokenValue(None, "true" if element else "false")]
    if kind is int:
        return [TokenValue(None, str(element))]
    if kind is dict:
        return _token_from_dict(element)
    return []


# references


def reference_string_values(reference: str) -> list[IndexValue]:
    """`Type/id[/_history/v]`, an absolute URL ending so, a urn:uuid ...; `#contained` is skipped."""
    if not reference or reference.startswith("#"):
        return []
    relative = _RELATIVE_REFERENCE.fullmatch(reference)
    if relative is not None:
        resource_type, resource_id = relative.groups()
        return [ReferenceValue(resource_type, resource_id, f"{resource_type}/{resource_id}")]
    absolute = _ABSOLUTE_REFERENCE_TAIL.search(reference) if "://" in reference else None
    if absolute is not None:
        return [ReferenceValue(absolute.group(1), absolute.group(2), reference[: absolute.end(2)])]
    return [ReferenceValue(None, None, reference)]


def canonical_values(canonical: str) -> list[IndexValue]:
    """A canonical or uri used as a reference: the url without its `|version`."""
    url = canonical.split("|", 1)[0]
    return [ReferenceValue(None, None, url)] if url else []


def resource_reference(resource: dict) -> list[IndexValue]:
    """A resource found where a reference was expected (e.g. `Bundle.entry[0].resource`)."""
    resource_type, resource_id = _str_or_none(resource.get("resourceType")), _str_or_none(resource.get("id"))
    if resource_type is None or resource_id is None:
        return []
    return [ReferenceValue(resource_type, resource_id, f"{resource_type}/{resource_id}")]


def reference_values(element: object) -> list[IndexValue]:
    if type(element) is str:
        return canonical_values(element)
    if type(element) is not dict:
        return []
    reference = element.get("reference")
    if type(reference) is str:
        return reference_string_values(reference)
    if "resourceType" in element:
        return resource_reference(element)
    return []  # identifier- or display-only references are not indexed


# dates


def date_string_values(text: str) -> list[IndexValue]:
    bounds = date_range(text)
    return [DateValue(*bounds)] if bounds is not None else []


def period_values(period: dict) -> list[IndexValue]:
    start, end = period.get("start"), period.get("end")
    if start is None and end is None:
        return []
    lo_range = date_range(start) if type(start) is str else None
    hi_range = date_range(end) if type(end) is str else None
    if (start is not None and lo_range is None) or (end is not None and hi_range is None):
        return []
    lo = lo_range[0] if lo_range is not None else MIN_MS
    hi = hi_range[1] if hi_range is not None else MAX_MS
    return [DateValue(lo, hi)]


def timing_values(timing: dict) -> list[IndexValue]:
    """The events of a Timing (its repeat rules are not expanded)."""
    events = timing.get("event")
    if type(events) is not list:
        return []
    out: list[IndexValue] = []
    for event in events:
        if type(event) is str:
            out.extend(date_string_values(event))
    return out


def date_values(element: object) -> list[IndexValue]:
    if type(element) is str:
        return date_string_values(element)
    if type(element) is not dict:
        return []
    if "start" in element or "end" in element:
        return period_values(element)
    if "event" in element:
        return timing_values(element)
    return []


# numbers and quantities


def _decimal_of(element: object, key: str) -> Decimal | None:
    return as_decimal(element.get(key)) if type(element) is dict else None


def range_bounds(range_: dict) -> tuple[Decimal | None, Decimal | None]:
    return _decimal_of(range_.get("low"), "value"), _decimal_of(range_.get("high"), "value")


def range_number_values(range_: dict) -> list[IndexValue]:
    """A Range where a number is expected: lo/hi are the precision ends of low/high (open when absent)."""
    low, high = range_bounds(range_)
    if low is None and high is None:
        return []
    lo = number_range(low)[1] if low is not None else float("-inf")
    hi = number_range(high)[2] if high is not None else float("inf")
    return [NumberValue(float(low if low is not None else high), lo, hi)]


def number_values(element: object) -> list[IndexValue]:
    if type(element) is dict:
        return range_number_values(element) if "low" in element or "high" in element else []
    found = value_range(element)
    return [NumberValue(*found)] if found is not None else []


def quantity_values(quantity: dict) -> list[IndexValue]:
    found = value_range(quantity.get("value"))
    if found is None:
        return []
    system, code = _str_or_none(quantity.get("system")), _str_or_none(quantity.get("code"))
    return [QuantityValue(*found, system, code, _str_or_none(quantity.get("unit")))]


def money_values(money: dict) -> list[IndexValue]:
    found = value_range(money.get("value"))
    if found is None:
        return []
    return [QuantityValue(*found, None, _str_or_none(money.get("currency")), None)]


def range_quantity_values(range_: dict) -> list[IndexValue]:
    """A Range where a quantity is expected: value is low (else high), units from the same bound."""
    low, high = range_bounds(range_)
    if low is None and high is None:
        return []
    bound = range_.get("low") if low is not None else range_.get("high")
    lo = number_range(low)[1] if low is not None else float("-inf")
    hi = number_range(high)[2] if high is not None else float("inf")
    system, code = _str_or_none(bound.get("system")), _str_or_none(bound.get("code"))
    value = float(low if low is not None else high)
    return [QuantityValue(value, lo, hi, system, code, _str_or_none(bound.get("unit")))]


def quantity_param_values(element: object) -> list[IndexValue]:
    if type(element) is not dict:
        found = value_range(element)
        return [QuantityValue(*found, None, None, None)] if found is not None else []
    if "currency" in element:
        return money_values(element)
    if "value" in element:
        return quantity_values(element)
    if "low" in element or "high" in element:
        return range_quantity_values(element)
    return []  # SampledData and others are not indexed


# uris


def uri_values(element: object) -> list[IndexValue]:
    return [UriValue(element)] if type(element) is str and element else []


CONVERTERS: dict[str, Converter] = {
    "string": string_values,
    "token": token_values,
    "reference": reference_values,
    "date": date_values,
    "number": number_values,
    "quantity": quantity_param_values,
    "uri": uri_values,
}
