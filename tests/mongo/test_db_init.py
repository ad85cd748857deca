"""`nphies-facade db init` on MongoDB: creates collections and indexes once, reports them as present after."""

from nphies_facade.resources.mongo import database_init
from nphies_facade.resources.mongo.indexes import INDEXES, collections
from nphies_facade.server.cli import main

from .fake_client import FakeMongoClient


def test_db_init_creates_then_finds_every_collection_and_index(monkeypatch, capsys):
    server = FakeMongoClient()
    monkeypatch.setattr(database_init, "connect", lambda url: server)
    assert main(["db", "init", "--mongodb-url", "mongodb://db.test/?replicaSet=rs0", "--database", "x"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[0] == "database x on replica set rs0"
    assert len(first) == 1 + len(collections()) + len(INDEXES)
    assert all(line.endswith(": created") for line in first[1:])
    assert "index resources.resources_param_s (type, idx.p, idx.s1, idx.s2): created" in first
    main(["db", "init", "--mongodb-url", "mongodb://db.test/?replicaSet=rs0", "--database", "x"])
    assert all(line.endswith(": present") for line in capsys.readouterr().out.splitlines()[1:])


def test_db_init_refuses_a_standalone_server(monkeypatch, capsys):
    monkeypatch.setattr(database_init, "connect", lambda url: FakeMongoClient(replica_set=False))
    assert main(["db", "init", "--mongodb-url", "mongodb://db.test/"]) == 1
    assert "replica set" in capsys.readouterr().err
