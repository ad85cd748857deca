"""How versions, index values and outbox events are laid out as MongoDB documents, and read back.

resources  {_id: "Type/id", type, id, version, last_updated, deleted, method, position, rid, body, idx}
           `body` holds the exact JSON bytes (BSON binary), so a read returns what was written byte for
           byte; `idx` holds one sub-document per index value, {p: code, s1.., n1..}, the same columns
           as an SQLite idx row (sqlite/index_rows.py), absent where the row has NULL (a composite's
           also holds its components' entries in `c`, so each can be matched on its own); `rid` is the
           history position of version 1, so sorting on it is creation order (SQLite's rowid order).
history    {_id: position, type, id, version, last_updated, method, body}
outbox     {_id: seq, type, id, version, action, at, trace_id}
"""

from ..search.values import CompositeValue, IndexValue
from ..sqlite.index_rows import row_for
from ..store import IndexValues, OutboxEvent, StoredVersion

ROW_FIELDS = ("s1", "s2", "s3", "s4", "n1", "n2", "n3")


def resource_key(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}/{resource_id}"


def entry_for(value: IndexValue) -> dict | None:
    """The columns of the value's SQLite idx row that are not NULL (numbers as SQLite's REAL); a
    composite also carries its components' entries in `c`, in component order."""
    row = row_for(value)
    if row is None:
        return None
    entry = {
        field: float(item) if field.startswith("n") else item
        for field, item in zip(ROW_FIELDS, row, strict=True)
        if item is not None
    }
    if isinstance(value, CompositeValue):
        entry["c"] = [entry_for(part) or {} for _, part in value.parts]
    return entry


def index_entries(index: IndexValues) -> list[dict]:
    entries = []
    for code, values in index.items():
        for value in values:
            entry = entry_for(value)
            if entry is not None:
                entries.append({"p": code, **entry})
    return entries


def action_of(version: StoredVersion) -> str:
    if version.body is None:
        return "delete"
    return "create" if version.version == 1 else "update"


def current_fields(version: StoredVersion, index: IndexValues, position: int) -> dict:
    """The fields of a resource document that each new version replaces."""
    return {
        "version": version.version,
        "last_updated": version.last_updated,
        "deleted": version.body is None,
        "method": version.method,
        "position": position,
        "body": version.body,
        "idx": index_entries(index),
    }


def new_resource(version: StoredVersion, index: IndexValues, position: int) -> dict:
    return {
        "_id": resource_key(version.resource_type, version.id),
        "type": version.resource_type,
        "id": version.id,
        "rid": position,
        **current_fields(version, index, position),
    }


def history_document(version: StoredVersion, position: int) -> dict:
    return {
        "_id": position,
        "type": version.resource_type,
        "id": version.id,
        "version": version.version,
        "last_updated": version.last_updated,
        "method": version.method,
        "body": version.body,
    }


def outbox_document(event: OutboxEvent) -> dict:
    return {
        "_id": event.seq,
        "type": event.resource_type,
        "id": event.id,
        "version": event.version,
        "action": event.action,
        "at": event.at,
        "trace_id": event.trace_id,
    }


def _bytes(body: object) -> bytes | None:
    return None if body is None else bytes(body)


def current_version(doc: dict) -> StoredVersion:
    """The current version as a transaction sees it: method and position of the history row."""
    return StoredVersion(
        doc["type"],
        doc["id"],
        doc["version"],
        doc["last_updated"],
        doc["method"],
        _bytes(doc["body"]),
        doc["position"],
    )


def read_version(doc: dict) -> StoredVersion:
    """The current version as `Store.read` returns it (as SQLite: method "DELETE" or "", no position)."""
    method = "DELETE" if doc["deleted"] else ""
    return StoredVersion(
        doc["type"], doc["id"], doc["version"], doc["last_updated"], method, _bytes(doc["body"])
    )


def history_version(doc: dict) -> StoredVersion:
    return StoredVersion(
        doc["type"],
        doc["id"],
        doc["version"],
        doc["last_updated"],
        doc["method"],
        _bytes(doc["body"]),
        doc["_id"],
    )


def outbox_event(doc: dict) -> OutboxEvent:
    return OutboxEvent(
        doc["_id"], doc["type"], doc["id"], doc["version"], doc["action"], doc["at"], doc["trace_id"]
    )


VERSION_PROJECTION = {"idx": False}
