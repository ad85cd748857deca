"""The collections of one MongoDB store database, by concern."""

from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True, slots=True)
class Collections:
    db: AsyncDatabase
    resources: AsyncCollection
    history: AsyncCollection
    outbox: AsyncCollection
    counters: AsyncCollection
    conditions: AsyncCollection

    @classmethod
    def of(cls, db: AsyncDatabase) -> "Collections":
        return cls(db, db["resources"], db["history"], db["outbox"], db["counters"], db["conditions"])
