"""The command line: `nphies-facade serve` and, as later parts land, its other commands."""

import argparse
import asyncio
import os
import sys
from pathlib import Path

import uvicorn

from ..nphies.simulator import cli as simulator_cli
from ..resources.tracing import configure_logging
from ..workflows import metrics_dir
from ..workflows.journeys import cli as journey_cli
from . import remote_cli
from .auth import cli as security_cli
from .auth import people_cli
from .cli_target import NoStore, existing_store
from .settings import Settings


def _serve(args: argparse.Namespace) -> int:
    overrides = {"host": args.host, "port": args.port, "data_dir": args.data_dir, "workers": args.workers}
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"NPHIES_FACADE_{name.upper()}"] = str(value)
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir.prepare(settings.data_dir, fresh=True)
    configure_logging(settings.log_level, settings.log_format, settings.access_log)
    uvicorn.run(
        "nphies_facade.server.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,  # the server's own access log (server/access_log.py) writes one line a request
        log_config=None,  # uvicorn's lines go through the root logging configured above (text or JSON)
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    overrides = {"data_dir": args.data_dir, "redis_url": args.redis_url}
    settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    if not settings.redis_url:
        print("nphies-facade worker needs NPHIES_FACADE_REDIS_URL (or --redis-url)", file=sys.stderr)
        return 2
    if not settings.mongodb_url:  # on SQLite the worker shares the API server's store: it must exist
        try:
            existing_store(settings)
        except NoStore as exc:
            print(f"nphies-facade worker: {exc}", file=sys.stderr)
            return 2
    metrics_dir.prepare(settings.data_dir, fresh=False)
    configure_logging(settings.log_level, settings.log_format, settings.access_log)
    from . import worker_process  # arq is needed by the worker only

    asyncio.run(worker_process.run(settings))
    return 0


def _db_init(args: argparse.Namespace) -> int:
    settings = Settings(data_dir=args.data_dir) if args.data_dir is not None else Settings()
    url = args.mongodb_url or settings.mongodb_url
    if not url:
        from ..resources.sqlite.store import SqliteStore

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(settings.database_path)
        asyncio.run(_open_and_close(store))
        print(f"SQLite store {settings.database_path}: schema ready")
        return 0
    from pymongo.errors import PyMongoError  # pymongo is needed by this backend only

    from ..resources.mongo.database_init import initialise

    try:
        lines = asyncio.run(initialise(url, args.database or settings.mongodb_database))
    except (PyMongoError, RuntimeError) as exc:
        print(f"nphies-facade db init: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


async def _open_and_close(store) -> None:
    await store.open()
    await store.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nphies-facade", description="FHIR R4 facade server for NPHIES")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the FHIR server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="folder for the SQLite store (default ./data)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.set_defaults(run=_serve)
    worker = commands.add_parser("worker", help="run the subscription relay and workflow jobs (needs Redis)")
    worker.add_argument("--data-dir", type=Path, help="folder of the SQLite store (default ./data)")
    worker.add_argument("--redis-url", help="Redis for the job queue, e.g. redis://127.0.0.1:6379/0")
    worker.set_defaults(run=_worker)
    simulator = commands.add_parser("simulator", help="run the NPHIES simulator ($process-message)")
    simulator_cli.add_arguments(simulator)
    simulator.set_defaults(run=simulator_cli.run_from_args)
    security_cli.add_commands(commands)
    people_cli.add_commands(commands)
    journey_cli.add_commands(commands)
    remote_cli.add_commands(commands)
    db = commands.add_parser("db", help="store administration").add_subparsers(
        dest="db_command", required=True
    )
    init = db.add_parser("init", help="create the store's collections and indexes (idempotent); print them")
    init.add_argument("--mongodb-url", help="MongoDB to initialise (default NPHIES_FACADE_MONGODB_URL)")
    init.add_argument("--database", help="database name (default NPHIES_FACADE_MONGODB_DATABASE)")
    init.add_argument("--data-dir", type=Path, help="folder of the SQLite store to create (default ./data)")
    init.set_defaults(run=_db_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
