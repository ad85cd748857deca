"""Commands on a data dir that does not exist, or holds no store, say so and exit non-zero, and leave
no empty store behind (a mistyped --data-dir once gave "audit chain intact: 0 records", exit 0)."""

import pytest

from .server_process import run_cli

COMMANDS = [
    ["audit", "verify"],
    ["token", "--client", "local", "--scope", "system/*.rs"],
    ["clients", "list"],
    ["clients", "disable", "x"],
    ["users", "list"],
    ["apps", "list"],
    ["clients", "add", "--id", "x", "--jwks-url", "http://127.0.0.1:1/jwks", "--scope", "system/*.rs"],
    ["worker", "--redis-url", "redis://127.0.0.1:1/0"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_data_dir_that_does_not_exist_is_named_and_not_created(tmp_path, command):
    typo = tmp_path / "dta"
    ran = run_cli(*command, "--data-dir", str(typo))
    assert ran.code != 0
    assert f"the data dir {typo} does not exist" in ran.err
    assert "intact" not in ran.out
    assert not typo.exists()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_data_dir_without_a_store_is_named_and_left_empty(tmp_path, command):
    ran = run_cli(*command, "--data-dir", str(tmp_path))
    assert ran.code != 0
    assert "holds no store" in ran.err
    assert list(tmp_path.iterdir()) == []


def test_db_init_creates_the_store_the_other_commands_then_use(tmp_path):
    data_dir = tmp_path / "new"
    assert run_cli("db", "init", "--data-dir", str(data_dir)).code == 0
    verified = run_cli("audit", "verify", "--data-dir", str(data_dir))
    assert verified.code == 0 and "audit chain intact: 0 records" in verified.out
    assert f"store {data_dir}" in verified.err
