"""Command-line entry of the simulator: `nphies-facade simulator` and `python -m nphies_facade.nphies.simulator`."""

import argparse
from pathlib import Path

from .app import run_simulator
from .settings import SimulatorSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nphies-simulator", description="NPHIES simulator ($process-message)"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9090, help="port to listen on (default 9090)")
    parser.add_argument(
        "--config", type=Path, help="JSON file of SimulatorSettings (rules, faults, licenses)"
    )


def run_from_args(args: argparse.Namespace) -> int:
    settings = SimulatorSettings.from_file(args.config) if args.config else SimulatorSettings()
    run_simulator(args.host, args.port, settings)
    return 0
