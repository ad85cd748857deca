"""`nphies-facade db init` for MongoDB: checks the server, creates what is missing, says what it did."""

from .connection import connect, require_replica_set
from .indexes import INDEXES, collections, ensure_indexes


async def initialise(url: str, database: str) -> list[str]:
    """One line per collection and index: `created` when this run made it, `present` when it was there."""
    client = connect(url)
    try:
        hello = await require_replica_set(client)
        db = client[database]
        existing_collections = set(await db.list_collection_names())
        existing_indexes = {
            name: set(await db[name].index_information()) if name in existing_collections else set()
            for name in collections()
        }
        await ensure_indexes(db)
    finally:
        await client.close()
    lines = [f"database {database} on replica set {hello.get('setName', '(mongos)')}"]
    for name in collections():
        lines.append(f"collection {name}: {'present' if name in existing_collections else 'created'}")
    for spec in INDEXES:
        state = "present" if spec.name in existing_indexes[spec.collection] else "created"
        lines.append(f"index {spec.describe()}: {state}")
    return lines
