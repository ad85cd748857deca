"""Every official R4 example of a type the server accepts survives create and read unchanged but for id and
meta, numbers to the character."""

import functools
import json
from pathlib import Path

import orjson
import pytest

from nphies_facade import exact_json
from nphies_facade.resources.types import is_supported
from nphies_facade.server.settings import Settings

from .conftest import FHIR_EXAMPLES, requires_shared
from .json_text import parsed, same_text
from .validation.examples import invalid_examples, refused_by_rules
from .validation.test_examples_references import refused_by_references

EXAMPLES = sorted(FHIR_EXAMPLES.glob("*.json")) if FHIR_EXAMPLES.is_dir() else []


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Referential integrity off: each example is posted alone, and refers to resources of its own
    server (tests/test_references.py covers the check)."""
    return Settings(
        data_dir=tmp_path / "data", base_url="http://fhir.test", auth="off", referential_integrity="off"
    )


@pytest.fixture
def each_store_settings() -> dict:
    """The same for the full package on each store: its examples refer to one another and to resources
    the package does not hold."""
    return {"referential_integrity": "off"}


def _without_id_and_meta(resource: dict) -> dict:
    kept = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        kept["meta"] = meta
    return kept


def _as_sent(body: bytes) -> object:
    """The resource without id and meta, numbers compared by their text."""
    return same_text(_without_id_and_meta(parsed(body)))


@requires_shared()
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_example_round_trips(client, path):
    sent = path.read_bytes()
    resource = json.loads(sent)
    assert is_supported(resource["resourceType"])
    created = await client.post(f"/{resource['resourceType']}", content=sent)
    assert created.status_code == 201, created.text
    read = await client.get(f"/{resource['resourceType']}/{created.json()['id']}")
    assert read.status_code == 200
    assert _as_sent(read.content) == _as_sent(sent)
    by_id = await client.put(f"/{resource['resourceType']}/{resource['id']}", content=sent)
    assert by_id.status_code == 201, by_id.text
    assert _as_sent(by_id.content) == _as_sent(sent)


@functools.cache
def _decimals_orjson_changes(package: Path) -> list[Path]:
    """The examples holding a number that orjson, parsing to a float, would write back differently (found
    fast with the codec itself; the test then compares numbers by the text of what was sent)."""
    changed = []
    for path in sorted(package.glob("*.json")):
        sent = path.read_bytes()
        if exact_json.dumps(exact_json.loads(sent)) != orjson.dumps(orjson.loads(sent)):
            changed.append(path)
    return changed


async def test_every_official_example_whose_decimals_a_float_would_change_reads_back_exactly(
    client_on_each_store, r4_package
):
    """The full package: each example but those R4 itself makes invalid (tests/fixtures/r4-examples-*.json)
    is accepted, and comes back from read, vread and search with its numbers as written (37 examples hold
    such numbers: 105.00, 0.40, 1E-22, 66.899999999999991 ...)."""
    client = client_on_each_store
    changed = _decimals_orjson_changes(r4_package)
    assert len(changed) >= 37
    accepted = []
    for path in changed:
        sent = path.read_bytes()
        resource_type = json.loads(sent)["resourceType"]
        created = await client.post(f"/{resource_type}", content=sent)
        if created.status_code != 201:
            assert created.status_code < 500, (path.name, created.text)
            continue
        accepted.append(path.name)
        url = f"/{resource_type}/{created.json()['id']}"
        assert _as_sent(created.content) == _as_sent(sent), path.name
        assert _as_sent((await client.get(url)).content) == _as_sent(sent), path.name
        assert _as_sent((await client.get(f"{url}/_history/1")).content) == _as_sent(sent), path.name
        found = parsed((await client.get(f"/{resource_type}", params={"_id": created.json()["id"]})).content)
        [entry] = found["entry"]
        assert same_text(_without_id_and_meta(entry["resource"])) == _as_sent(sent), path.name
    invalid = set(invalid_examples()) | set(refused_by_rules()) | set(refused_by_references())
    expected = [path.name for path in changed if path.name not in invalid]
    assert accepted == expected, f"{len(accepted)} of {len(changed)} accepted: {accepted}"
