"""The lock document that makes conditional interactions with the same criteria collide.

A conditional create checks that nothing matches and then writes; two of them running at once would
both find nothing. Inside its transaction each first increments the document keyed by its normalised
(type, sorted criteria), so two transactions with the same criteria write the same document: MongoDB
commits one, the other gets a write conflict, runs again, and then finds what the first created.
"""

import hashlib
from urllib.parse import urlencode

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection


def condition_text(resource_type: str, criteria: list[tuple[str, str]]) -> str:
    return f"{resource_type}?{urlencode(sorted(criteria))}"


def condition_key(resource_type: str, criteria: list[tuple[str, str]]) -> str:
    return hashlib.sha256(condition_text(resource_type, criteria).encode()).hexdigest()


async def lock_condition(
    conditions: AsyncCollection,
    resource_type: str,
    criteria: list[tuple[str, str]],
    session: AsyncClientSession,
) -> None:
    await conditions.update_one(
        {"_id": condition_key(resource_type, criteria)},
        {"$inc": {"n": 1}, "$setOnInsert": {"condition": condition_text(resource_type, criteria)}},
        upsert=True,
        session=session,
    )
