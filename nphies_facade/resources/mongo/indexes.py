"""The MongoDB indexes, as data: created idempotently when the store opens and by `nphies-facade db init`.

One static set serves every search parameter: index values live in the `idx` array of each resource
document, so a multikey compound index on (type, idx.p, idx.<column>) answers an `$elemMatch` on any
parameter's code and column, as SQLite's `idx` indexes on (pid, column) do.
"""

from dataclasses import dataclass

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, OperationFailure

NAMESPACE_EXISTS = 48
# Collections without indexes of their own: created up front all the same, as a transaction may not be
# the one to create a collection on older servers.
PLAIN_COLLECTIONS = ("outbox", "counters", "conditions", "relay_cursor", "leases", "sub_state", "clients")


@dataclass(frozen=True, slots=True)
class IndexSpec:
    collection: str
    name: str
    keys: tuple[str, ...]
    unique: bool = False

    def model(self) -> IndexModel:
        return IndexModel([(key, ASCENDING) for key in self.keys], name=self.name, unique=self.unique)

    def describe(self) -> str:
        keys = ", ".join(self.keys)
        return f"{self.collection}.{self.name} ({keys}){' unique' if self.unique else ''}"


INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec("resources", "resources_param_s", ("type", "idx.p", "idx.s1", "idx.s2")),
    IndexSpec("resources", "resources_param_n1", ("type", "idx.p", "idx.n1")),
    IndexSpec("resources", "resources_param_n2", ("type", "idx.p", "idx.n2")),
    IndexSpec("resources", "resources_created", ("type", "rid")),
    IndexSpec("resources", "resources_recent", ("type", "last_updated", "rid")),
    IndexSpec("resources", "resources_updated", ("type", "last_updated", "id")),
    IndexSpec("history", "history_version", ("type", "id", "version"), unique=True),
    IndexSpec("history", "history_type", ("type", "_id")),
    IndexSpec("sub_events", "sub_events_number", ("sub_id", "number"), unique=True),
    IndexSpec("sub_events", "sub_events_state", ("sub_id", "state", "number")),
    IndexSpec("sub_events", "sub_events_channel", ("channel", "_id")),
    IndexSpec("sub_events", "sub_events_recorded", ("state", "recorded")),
    IndexSpec("delivery_attempts", "delivery_attempts_sub", ("sub_id", "_id")),
    IndexSpec("delivery_attempts", "delivery_attempts_recorded", ("recorded",)),
    IndexSpec("jobs", "jobs_open", ("state", "next_at")),
    IndexSpec("jobs", "jobs_sub", ("sub_id", "state")),
    IndexSpec("audit", "audit_patient", ("patient_hash", "_id")),
    IndexSpec("audit", "audit_entity", ("entity", "_id")),
    IndexSpec("used_jti", "used_jti_expires", ("expires",)),
    IndexSpec("auth_records", "auth_records_kind", ("kind", "_id")),
    IndexSpec("auth_records", "auth_records_purge", ("purge_at",)),
)


def collections(specs: tuple[IndexSpec, ...] = INDEXES) -> list[str]:
    return sorted({spec.collection for spec in specs} | set(PLAIN_COLLECTIONS))


async def _create_collection(db: AsyncDatabase, name: str) -> None:
    try:
        await db.create_collection(name)
    except CollectionInvalid:
        pass
    except OperationFailure as exc:  # another process created it between the check and the create
        if exc.code != NAMESPACE_EXISTS:
            raise


async def ensure_indexes(db: AsyncDatabase, specs: tuple[IndexSpec, ...] = INDEXES) -> list[IndexSpec]:
    """Creates the collections and indexes that are missing (creating an existing index is a no-op)."""
    existing = set(await db.list_collection_names())
    for name in collections(specs):
        if name not in existing:
            await _create_collection(db, name)
    for name in sorted({spec.collection for spec in specs}):
        await db[name].create_indexes([spec.model() for spec in specs if spec.collection == name])
    return list(specs)
