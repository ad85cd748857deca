"""What a command-line command acts on: the server's base URL (`--base-url`, or the same host, port and
NPHIES_FACADE_BASE_URL settings as `serve`) and its data dir, which must already hold a store.

Commands print what they act on to stderr, so stdout stays the command's answer (a token, a listing)."""

import argparse
import sys
from pathlib import Path

from .settings import Settings


class NoStore(Exception):
    """The data dir holds no store: a command that reads or adds to it would create an empty one."""


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="folder of the SQLite store (default ./data)")


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--base-url, --host and --port: the server acted on, as `serve` was told."""
    parser.add_argument(
        "--base-url",
        help="the server's public base URL (default NPHIES_FACADE_BASE_URL, else from host/port)",
    )
    parser.add_argument("--host", help="the server's host when no base URL is set (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="the server's port when no base URL is set (default 8080)")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the options given on the command line winning."""
    overrides = {
        name: getattr(args, name)
        for name in ("data_dir", "base_url", "host", "port")
        if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def existing_store(settings: Settings) -> Path:
    """The SQLite file of the data dir; NoStore when the dir or the file does not exist."""
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        raise NoStore(
            f"the data dir {data_dir} does not exist; pass the --data-dir the server runs with "
            "(it is created by `nphies-facade serve` or `nphies-facade db init --data-dir DIR`)"
        )
    if not settings.database_path.is_file():
        raise NoStore(
            f"the data dir {data_dir} holds no store ({settings.database_path.name}); pass the --data-dir "
            "the server runs with (a store is created by `nphies-facade serve` or `nphies-facade db init`)"
        )
    return settings.database_path


def say(message: str) -> None:
    """A note about what the command acts on, on stderr."""
    print(f"nphies-facade: {message}", file=sys.stderr)
