"""The command line: `nphies-facade serve` and, as later parts land, its other commands."""

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from .settings import Settings


def _serve(args: argparse.Namespace) -> int:
    overrides = {"host": args.host, "port": args.port, "data_dir": args.data_dir, "workers": args.workers}
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"NPHIES_FACADE_{name.upper()}"] = str(value)
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        "nphies_facade.server.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nphies-facade", description="FHIR R4 facade server for NPHIES")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the FHIR server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="folder for the SQLite store (default ./data)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
