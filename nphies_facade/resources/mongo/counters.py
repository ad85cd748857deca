"""Monotonic sequence numbers from counter documents, taken inside the caller's transaction.

Two transactions that take a number from the same counter write the same document, so MongoDB lets
only one of them commit: numbers are handed out in commit order, which is what lets the outbox relay
read events by `seq > cursor` without ever skipping one committed late.
"""

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

HISTORY = "history"
OUTBOX = "outbox"


async def next_value(
    counters: AsyncCollection, name: str, session: AsyncClientSession | None, count: int = 1
) -> int:
    """The first of `count` consecutive numbers taken from the counter."""
    doc = await counters.find_one_and_update(
        {"_id": name},
        {"$inc": {"n": count}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return doc["n"] - count + 1
