"""The journeys' commands: `nphies-facade demo` and `nphies-facade simulate`."""

import argparse
import sys
from pathlib import Path


def add_commands(commands) -> None:
    demo = commands.add_parser(
        "demo", help="register a patient, verify eligibility, take a claim to paid; print the Task timelines"
    )
    demo.add_argument(
        "--data-dir", type=Path, help="keep the demo's SQLite store here (default: a temporary one)"
    )
    demo.set_defaults(run=_demo)
    simulate = commands.add_parser(
        "simulate", help="run synthetic journeys against the NPHIES simulator; print KPIs"
    )
    simulate.add_argument("--journey", choices=("eligibility", "claims"), required=True)
    simulate.add_argument("--n", type=int, default=1000, help="how many journeys (default 1000)")
    simulate.add_argument(
        "--concurrency", type=int, default=50, help="EMR posts in flight at once (default 50)"
    )
    simulate.add_argument(
        "--faults",
        default="",
        help="simulator faults by share, e.g. 5xx=0.05,timeout=0.01,latency=0.2,malformed=0.01",
    )
    simulate.add_argument(
        "--mix",
        help="cases by share: not-eligible, no-consent (both journeys), partial, queued (claims); default "
        "not-eligible=0.1,no-consent=0.02 and, for claims, partial=0.1,queued=0.1",
    )
    simulate.add_argument(
        "--on-time", type=float, default=0.8, help="share of manual reviews answered within their SLA"
    )
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--data-dir", type=Path, help="keep the run's SQLite store here (default: a temporary one)"
    )
    simulate.set_defaults(run=_simulate)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.data_dir)


def _simulate(args: argparse.Namespace) -> int:
    from .. import simulate

    try:
        plan = simulate.Plan(
            journey=args.journey,
            n=args.n,
            concurrency=args.concurrency,
            faults=simulate.shares(args.faults, simulate.FAULT_KINDS, "fault"),
            mix=(
                simulate.shares(args.mix, simulate.JOURNEY_KINDS[args.journey], f"{args.journey} case")
                if args.mix is not None
                else simulate.default_mix(args.journey)
            ),
            on_time=args.on_time,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"nphies-facade simulate: {exc}", file=sys.stderr)
        return 2
    if plan.n < 1 or plan.concurrency < 1 or not 0.0 <= plan.on_time <= 1.0:
        print(
            "nphies-facade simulate: --n and --concurrency are at least 1, --on-time is 0..1", file=sys.stderr
        )
        return 2
    return simulate.run(plan, args.data_dir)
