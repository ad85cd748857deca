"""Connecting to MongoDB, and the start-up check that it can run transactions (a replica set)."""

from pymongo import AsyncMongoClient


class NotAReplicaSet(RuntimeError):
    """The server cannot run multi-document transactions, so the store refuses to start."""


def connect(url: str) -> AsyncMongoClient:
    return AsyncMongoClient(url, appname="nphies-facade", tz_aware=False)


async def require_replica_set(client: AsyncMongoClient) -> dict:
    """The server's `hello`; NotAReplicaSet unless it is a replica-set member or a mongos router."""
    hello = await client.admin.command("hello")
    if hello.get("setName") or hello.get("msg") == "isdbgrid":
        return hello
    raise NotAReplicaSet(
        "The MongoDB server named by NPHIES_FACADE_MONGODB_URL is a standalone server; the store writes "
        "in multi-document transactions, which need a replica set. Start mongod with --replSet rs0, run "
        "rs.initiate() once, and add ?replicaSet=rs0 to the URL (a single-node replica set will do; "
        "see docs/mongodb.md)."
    )
