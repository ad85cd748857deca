"""The compiled accessors extract exactly what fhirpathpy extracts, on every official example and beyond.

This is the proof that the compiler is right: for each parameter the compiler handles, the values from
the compiled accessor equal the values from evaluating the same (rewritten) expression with fhirpathpy.
"""

import copy
from datetime import date, datetime
from pathlib import Path

import orjson
import pytest
from fhirpathpy.engine.nodes import TypeInfo
from hypothesis import given, settings
from hypothesis import strategies as st

from nphies_facade.resources.search.definitions import SearchRegistry
from nphies_facade.resources.search.extraction import Extractor

EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fhir-examples"
CORE_TYPES = ("Patient", "Claim", "Coverage", "Encounter", "Task", "Practitioner", "Organization")
UCUM = "http://unitsofmeasure.org"

REGISTRY = SearchRegistry()
COMPILED = Extractor(REGISTRY)
FHIRPATHPY = Extractor(REGISTRY, use_compiler=False)


def official_resources() -> list[tuple[str, dict]]:
    """(id, resource) for every example file, every entry of the example Bundles, every SearchParameter."""
    if not EXAMPLES.is_dir():
        return []
    found: list[tuple[str, dict]] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        resource = orjson.loads(path.read_bytes())
        if path.stem == "Bundle-searchParams":
            found += [(f"searchParams/{e['resource']['id']}", e["resource"]) for e in resource["entry"]]
            continue
        found.append((path.stem, resource))
        for index, entry in enumerate(
            resource.get("entry", []) if resource["resourceType"] == "Bundle" else []
        ):
            if "resource" in entry:
                found.append((f"{path.stem}/entry{index}", entry["resource"]))
    return found


def compiled_codes(resource_type: str) -> set[str]:
    return {plan.code for plan in COMPILED.plans(resource_type) if plan.compiled}


def assert_compiled_matches_fallback(resource: dict) -> None:
    # fhirpathpy's ofType() matches subtypes only once some `is`/`as` evaluation has set this global;
    # the compiler (like a fresh fhirpathpy) matches the exact choice variant.
    TypeInfo.model = None
    before = copy.deepcopy(resource)
    codes = compiled_codes(resource["resourceType"])
    compiled = COMPILED.extract(resource)
    reference = FHIRPATHPY.extract(resource)
    assert {code: values for code, values in compiled.items() if code in codes} == {
        code: values for code, values in reference.items() if code in codes
    }
    assert resource == before  # neither path changes the resource


OFFICIAL = official_resources()


@pytest.mark.skipif(not OFFICIAL, reason="../shared/fhir-examples is not available")
def test_compiled_extraction_equals_fhirpathpy_on_every_official_example() -> None:
    assert len(OFFICIAL) > 1375
    for _name, resource in OFFICIAL:
        assert_compiled_matches_fallback(resource)


@pytest.mark.skipif(not OFFICIAL, reason="../shared/fhir-examples is not available")
def test_official_examples_yield_values_for_most_parameters_of_the_core_types() -> None:
    seen: dict[str, set[str]] = {}
    for _name, resource in OFFICIAL:
        seen.setdefault(resource["resourceType"], set()).update(COMPILED.extract(resource))
    for resource_type in CORE_TYPES:
        assert len(seen[resource_type]) >= 10, resource_type


def test_compiled_and_fallback_counts_per_type(capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for resource_type in REGISTRY.resource_types():
        plans = COMPILED.plans(resource_type)
        compiled = sum(plan.compiled for plan in plans)
        rows.append((resource_type, compiled, len(plans) - compiled, len(COMPILED.skipped(resource_type))))
    with capsys.disabled():
        total = [sum(row[i] for row in rows) for i in (1, 2, 3)]
        print(
            f"\nsearch parameters over {len(rows)} types: compiled {total[0]}, fallback {total[1]}, "
            f"skipped {total[2]}"
        )
        for row in rows:
            if row[0] in CORE_TYPES or row[2] or row[3]:
                print(f"  {row[0]}: compiled {row[1]}, fallback {row[2]}, skipped {row[3]}")
    for resource_type, _compiled, fallback, skipped in rows:
        if resource_type in CORE_TYPES:
            assert fallback == 0 and skipped == 0, resource_type


CHOICE_AND_COMPOSITE_RESOURCES = [
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Weight"},
        "valueQuantity": {"value": 72.50, "unit": "kg", "system": UCUM, "code": "kg"},
        "effectivePeriod": {"start": "2024-01-01", "end": "2024-01-02T10:00:00Z"},
        "component": [
            {"code": {"text": "a"}, "valueCodeableConcept": {"coding": [{"system": "s", "code": "c"}]}},
            {"code": {"coding": [{"code": "b"}]}, "valueString": "Höhe"},
            {"code": {"coding": [{"code": "q"}]}, "valueRange": {"low": {"value": 1}}},
        ],
    },
    {
        "resourceType": "Observation",
        "code": {"text": "x"},
        "valueString": "Négatif",
        "effectiveInstant": "2024-02-02T00:00:00.5Z",
    },
    {"resourceType": "Observation", "code": {"text": "x"}, "valueCodeableConcept": {"text": "pos"}},
    {"resourceType": "Observation", "code": {"text": "x"}, "valueDateTime": "2021-03"},
    {"resourceType": "Observation", "code": {"text": "x"}, "valuePeriod": {"end": "2021"}},
    {
        "resourceType": "Observation",
        "code": {"text": "x"},
        "valueSampledData": {"origin": {"value": 0}, "data": "1"},
    },
    {
        "resourceType": "Condition",
        "onsetAge": {"value": 4, "system": UCUM, "code": "a"},
        "abatementString": "gone",
    },
    {"resourceType": "Condition", "onsetDateTime": "2019", "abatementPeriod": {"start": "2020-01-01"}},
    {"resourceType": "Condition", "onsetRange": {"low": {"value": 1, "code": "a"}, "high": {"value": 3.5}}},
    {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "characteristic": [
            {"code": {"text": "smoker"}, "valueBoolean": True, "exclude": False},
            {
                "code": {"coding": [{"code": "sex"}]},
                "valueCodeableConcept": {"coding": [{"code": "F"}]},
                "exclude": True,
            },
            {"code": {"text": "age"}, "valueQuantity": {"value": 40}, "exclude": False},
            {
                "code": {"text": "span"},
                "valueRange": {"low": {"value": 1}, "high": {"value": 2}},
                "exclude": False,
            },
        ],
    },
    {
        "resourceType": "RiskAssessment",
        "prediction": [{"probabilityDecimal": 0.25}, {"probabilityRange": {"high": {"value": 0.5}}}],
    },
    {"resourceType": "Patient", "deceasedDateTime": "2020-01-01T10:00:00+03:00"},
    {"resourceType": "Patient", "deceasedBoolean": True},
    {"resourceType": "ConceptMap", "sourceUri": "http://a", "targetCanonical": "http://b|2.0"},
    {
        "resourceType": "ChargeItem",
        "priceOverride": {"value": 10.5, "currency": "SAR"},
        "factorOverride": 0.8,
    },
    {
        "resourceType": "Invoice",
        "totalGross": {"value": 100, "currency": "SAR"},
        "totalNet": {"value": 90.00, "currency": "SAR"},
    },
    {
        "resourceType": "MolecularSequence",
        "referenceSeq": {
            "chromosome": {"coding": [{"code": "1"}]},
            "referenceSeqId": {"text": "NC_1"},
            "windowStart": 10,
            "windowEnd": 20,
        },
        "variant": [{"start": 12, "end": 13}, {"start": 15, "end": 16}],
    },
    {
        "resourceType": "ActivityDefinition",
        "useContext": [
            {"code": {"code": "age"}, "valueRange": {"low": {"value": 18, "code": "a"}}},
            {"code": {"code": "focus"}, "valueCodeableConcept": {"coding": [{"code": "x"}]}},
            {"code": {"code": "weight"}, "valueQuantity": {"value": 3, "code": "kg"}},
        ],
        "relatedArtifact": [
            {"type": "depends-on", "resource": "http://x/Library/a|1"},
            {"type": "composed-of", "resource": "http://x/Library/b"},
        ],
    },
    {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [
            {
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": "h1",
                    "eventCoding": {"code": "claim-request"},
                }
            }
        ],
    },
    {
        "resourceType": "Goal",
        "startDate": "2020-02-02",
        "target": [{"dueDate": "2021"}, {"dueDuration": {"value": 1}}],
    },
    {
        "resourceType": "CarePlan",
        "activity": [
            {"detail": {"scheduledTiming": {"event": ["2020-01-01T10:00:00Z"]}}},
            {"detail": {"scheduledString": "daily"}},
        ],
        "subject": {"reference": "http://x/fhir/Group/g1"},
    },
    {
        "resourceType": "Composition",
        "relatesTo": [
            {"code": "replaces", "targetReference": {"reference": "Composition/c0"}},
            {"code": "appends", "targetIdentifier": {"value": "i1"}},
        ],
    },
    {
        "resourceType": "Medication",
        "ingredient": [
            {"itemCodeableConcept": {"text": "para"}},
            {"itemReference": {"reference": "Substance/s1"}},
        ],
    },
    {
        "resourceType": "Task",
        "for": {"reference": "Patient/p1/_history/3"},
        "owner": {"reference": "urn:uuid:a-b"},
    },
    {
        "resourceType": "Encounter",
        "subject": {"reference": "Group/g1"},
        "participant": [{"individual": {"reference": "PractitionerRole/r1"}}],
    },
]


@pytest.mark.parametrize("resource", CHOICE_AND_COMPOSITE_RESOURCES, ids=lambda r: r["resourceType"])
def test_compiled_extraction_equals_fhirpathpy_on_choice_types_and_composites(resource: dict) -> None:
    assert COMPILED.extract(resource)
    assert_compiled_matches_fallback(resource)


# Random Patient-shaped resources

words = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=12)
uris = st.sampled_from(["http://nphies.sa/identifier/iqama", "urn:oid:1.2.3", "http://x.org/mrn"])
offsets = st.sampled_from(["Z", "+03:00", "-05:30", "+00:00"])


@st.composite
def fhir_dates(draw: st.DrawFn) -> str:
    day = draw(st.dates(min_value=date(1900, 1, 1)))
    return day.isoformat()[: draw(st.sampled_from([4, 7, 10]))]


@st.composite
def fhir_datetimes(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1)))
    text = moment.isoformat(timespec=draw(st.sampled_from(["minutes", "seconds", "milliseconds"])))
    return text + draw(offsets)


codings = st.fixed_dictionaries({}, optional={"system": uris, "code": words, "display": words})
concepts = st.fixed_dictionaries({}, optional={"coding": st.lists(codings, max_size=2), "text": words})
references = st.one_of(
    st.builds(
        lambda i: {"reference": f"Organization/{i}"}, st.from_regex(r"[A-Za-z0-9\-.]{1,10}", fullmatch=True)
    ),
    st.builds(
        lambda i: {"reference": f"http://h/fhir/Practitioner/{i}"},
        st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    ),
    st.just({"reference": "#contained"}),
    st.just({"reference": "urn:uuid:0f1e"}),
    st.just({"identifier": {"system": "http://nphies.sa/license", "value": "1"}}),
)
human_names = st.fixed_dictionaries(
    {},
    optional={
        "use": st.sampled_from(["official", "usual", "maiden"]),
        "text": words,
        "family": words,
        "given": st.lists(words, max_size=3),
        "prefix": st.lists(words, max_size=1),
        "suffix": st.lists(words, max_size=1),
    },
)
identifiers = st.fixed_dictionaries(
    {"value": words},
    optional={"system": uris, "use": st.sampled_from(["usual", "official"]), "type": concepts},
)
telecoms = st.fixed_dictionaries(
    {},
    optional={
        "system": st.sampled_from(["phone", "email", "fax", "url"]),
        "value": words,
        "use": st.sampled_from(["home", "work", "mobile"]),
        "rank": st.integers(1, 3),
    },
)
addresses = st.fixed_dictionaries(
    {},
    optional={
        "use": st.sampled_from(["home", "work"]),
        "line": st.lists(words, max_size=2),
        "city": words,
        "state": words,
        "postalCode": words,
        "country": words,
    },
)
patients = st.fixed_dictionaries(
    {"resourceType": st.just("Patient")},
    optional={
        "id": st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
        "meta": st.fixed_dictionaries(
            {},
            optional={
                "lastUpdated": fhir_datetimes(),
                "tag": st.lists(codings, max_size=2),
                "profile": st.lists(uris, max_size=1),
                "source": uris,
            },
        ),
        "active": st.booleans(),
        "name": st.lists(human_names, max_size=3),
        "identifier": st.lists(identifiers, max_size=3),
        "telecom": st.lists(telecoms, max_size=3),
        "gender": st.sampled_from(["male", "female", "other", "unknown"]),
        "birthDate": fhir_dates(),
        "deceasedBoolean": st.booleans(),
        "address": st.lists(addresses, max_size=2),
        "generalPractitioner": st.lists(references, max_size=2),
        "managingOrganization": references,
        "communication": st.lists(st.fixed_dictionaries({"language": concepts}), max_size=2),
        "link": st.lists(
            st.fixed_dictionaries({"other": references, "type": st.just("seealso")}), max_size=1
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(patients, st.none() | fhir_datetimes())
def test_compiled_extraction_equals_fhirpathpy_on_random_patients(
    patient: dict, deceased: str | None
) -> None:
    if deceased is not None and "deceasedBoolean" not in patient:
        patient["deceasedDateTime"] = deceased
    assert_compiled_matches_fallback(patient)
