"""Every official R4 example of a type the server accepts survives create and read unchanged but for id and meta."""

import json

import pytest

from nphies_facade.resources.types import is_supported

from .conftest import FHIR_EXAMPLES, requires_shared

EXAMPLES = sorted(FHIR_EXAMPLES.glob("*.json")) if FHIR_EXAMPLES.is_dir() else []


def _without_id_and_meta(resource: dict) -> dict:
    kept = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        kept["meta"] = meta
    return kept


@requires_shared()
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_example_round_trips(client, path):
    resource = json.loads(path.read_text())
    assert is_supported(resource["resourceType"])
    created = await client.post(f"/{resource['resourceType']}", json=resource)
    assert created.status_code == 201, created.text
    read = await client.get(f"/{resource['resourceType']}/{created.json()['id']}")
    assert read.status_code == 200
    assert _without_id_and_meta(read.json()) == _without_id_and_meta(resource)
    by_id = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert by_id.status_code == 201, by_id.text
    assert _without_id_and_meta(by_id.json()) == _without_id_and_meta(resource)
