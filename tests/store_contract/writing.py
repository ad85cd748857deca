"""Writing versions straight through the store port, as FhirService would (for the contract tests)."""

import orjson

from nphies_facade.resources.search.extraction import Extractor
from nphies_facade.resources.store import OutboxEvent, Store, StoredVersion

NID = "http://nphies.sa/identifier/nationalid"


def patient(resource_id: str, national_id: str | None = None, **fields: object) -> dict:
    resource: dict = {"resourceType": "Patient", "id": resource_id, **fields}
    if national_id is not None:
        resource["identifier"] = [{"system": NID, "value": national_id}]
    return resource


def version_of(resource: dict, version: int, at: str, method: str = "PUT") -> StoredVersion:
    stamped = {**resource, "meta": {"versionId": str(version), "lastUpdated": at}}
    return StoredVersion(resource["resourceType"], resource["id"], version, at, method, orjson.dumps(stamped))


async def write(
    store: Store,
    extractor: Extractor,
    resource: dict,
    version: int = 1,
    at: str = "2024-01-01T00:00:00Z",
    trace_id: str = "trace",
) -> tuple[StoredVersion, OutboxEvent]:
    stored = version_of(resource, version, at, "POST" if version == 1 else "PUT")
    async with store.transaction() as tx:
        event = await tx.write(stored, extractor.extract(orjson.loads(stored.body)), trace_id)
    return stored, event


async def delete(store: Store, resource_type: str, resource_id: str, version: int, at: str) -> OutboxEvent:
    tombstone = StoredVersion(resource_type, resource_id, version, at, "DELETE", None)
    async with store.transaction() as tx:
        return await tx.write(tombstone, {}, "trace")


async def write_deferred(
    store: Store, extractor: Extractor, resource: dict, version: int = 1, at: str = "2024-01-02T00:00:00Z"
) -> None:
    """Writes one version in a deferred transaction (on SQLite: through the group commit)."""
    stored = version_of(resource, version, at)
    async with store.deferred_transaction() as tx:
        await tx.write(stored, extractor.extract(orjson.loads(stored.body)), "t")
