"""Benchmark resource validation: CPU microseconds per resource (median, p99) over the official R4
examples, for this tree's `validate_resource` (the R4 JSON Schema, narrative, then the binding and
invariant rules) and its schema part alone, beside a baseline tree's (`--baseline DIR`, e.g. a
`git worktree add /tmp/base 4846c80`: the structure check and the R4B models) in the same run.

Run: .venv/bin/python bench/validation.py --baseline /tmp/base [--rounds 3] [--examples DIR]
Each tree is measured in its own process (the two cannot share one import of the package), the rounds
alternating between them; each resource's time is its thread CPU time (steadier than wall time on a
shared machine), and a round's figure is over all examples, the invalid ones included (refused: the
exception is caught). The examples come from `.cache/hl7.fhir.r4.examples-4.0.1/package` (the test
suite's `npm pack` cache) unless `--examples` names an unpacked package.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLES = REPO / ".cache" / "hl7.fhir.r4.examples-4.0.1" / "package"


def load(folder: Path) -> list[dict]:
    import orjson

    found = []
    for path in sorted(folder.glob("*.json")):
        if path.name in ("package.json", ".index.json"):
            continue
        resource = orjson.loads(path.read_bytes())
        if isinstance(resource, dict) and "resourceType" in resource:
            found.append(resource)
    return found


def measure(examples: Path, part: str) -> dict:
    """In a tree's process: per-resource CPU microseconds of one way of validating."""
    if part == "schema":
        from nphies_facade.resources.r4_schema import schema_issues as check
    else:
        from nphies_facade.resources.validation import validate_resource as check
    resources = load(examples)
    times = []
    refused = 0
    clock = time.thread_time_ns
    for resource in resources:
        start = clock()
        try:
            check(resource)
        except Exception:  # noqa: BLE001 - a refusal of the baseline's models, counted
            refused += 1
        times.append((clock() - start) / 1000)
    times.sort()
    return {
        "resources": len(times),
        "refused": refused,
        "median": statistics.median(times),
        "p99": times[int(len(times) * 0.99)],
        "mean": statistics.fmean(times),
    }


def run(tree: Path, examples: Path, part: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--measure", part, "--examples", str(examples)]
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the code before (e.g. /tmp/base)")
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.examples, args.measure)))
        return
    if not args.examples.is_dir():
        sys.exit(f"no examples at {args.examples}: run tests/validation once (npm pack) or pass --examples")
    ways = [("this tree: validate_resource", REPO, "all"), ("this tree: R4 schema part", REPO, "schema")]
    if args.baseline:
        ways.insert(0, (f"baseline {args.baseline}: validate_resource", args.baseline, "all"))
    print("command:", " ".join(sys.argv))
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    results: dict[str, list[dict]] = {name: [] for name, _, _ in ways}
    for round_number in range(1, args.rounds + 1):
        for name, tree, part in ways:
            figures = run(tree, args.examples, part)
            results[name].append(figures)
            print(
                f"round {round_number} {name}: median {figures['median']:.1f} us, p99 {figures['p99']:.0f} us, "
                f"mean {figures['mean']:.1f} us over {figures['resources']} resources ({figures['refused']} refused)"
            )
    print("\nmedian of the rounds (CPU microseconds per resource):")
    print(f"{'way':<60} {'median':>8} {'p99':>8} {'mean':>8} refused")
    for name, rounds in results.items():
        row = [statistics.median(r[key] for r in rounds) for key in ("median", "p99", "mean")]
        print(f"{name:<60} {row[0]:>8.1f} {row[1]:>8.0f} {row[2]:>8.1f} {rounds[0]['refused']}")


if __name__ == "__main__":
    main()
