"""Benchmark the rule checks of validation (required bindings and invariants, resources/rules.py) per
resource over every official R4 example, against the structure check measured in the same run.

Run: .venv/bin/python bench/validation_rules.py [--package DIR] [--repeat N]
DIR is the unpacked npm package hl7.fhir.r4.examples@4.0.1 (default: .cache/, where the tests put it).
Each resource is timed N times per check, alternating the checks, and its fastest time kept; the figures
are the median and p99 of those over the resources, in microseconds.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nphies_facade.resources import rules  # noqa: E402
from nphies_facade.resources.invariants import evaluate  # noqa: E402
from nphies_facade.resources.r4_schema import schema_issues  # noqa: E402

DEFAULT_PACKAGE = REPO / ".cache" / "hl7.fhir.r4.examples-4.0.1" / "package"


def load(package: Path) -> list[dict]:
    resources = []
    for path in sorted(package.glob("*.json")):
        if path.name in ("package.json", ".index.json"):
            continue
        resource = orjson.loads(path.read_bytes())
        if isinstance(resource, dict) and "resourceType" in resource:
            resources.append(resource)
    return resources


def structure(resource: dict) -> None:
    schema_issues(resource)


def bindings_walk(resource: dict) -> None:
    rules.walk(resource)


def invariants_only(resource: dict, contexts: list) -> None:
    for context in contexts:
        for invariant in rules.INVARIANTS[context.path]:
            evaluate(invariant, context.node, context.type_path, context.resource, context.root)


def fastest(function, *args, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{name:<34} median {statistics.median(ordered):8.1f} us   p99 {p99:10.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.package.is_dir():
        sys.exit(f"{args.package} is missing: npm pack hl7.fhir.r4.examples@4.0.1 and unpack it there")
    resources = load(args.package)
    print(f"command: python bench/validation_rules.py --repeat {args.repeat}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    print(f"resources: {len(resources)} official R4 examples ({args.package})")
    timings: dict[str, list[float]] = {"structure": [], "walk": [], "invariants": [], "rules": []}
    for resource in resources:
        contexts = rules.walk(resource)[1]
        timings["structure"].append(fastest(structure, resource, repeat=args.repeat))
        timings["walk"].append(fastest(bindings_walk, resource, repeat=args.repeat))
        timings["invariants"].append(fastest(invariants_only, resource, contexts, repeat=args.repeat))
        timings["rules"].append(fastest(rules.rule_issues, resource, repeat=args.repeat))
    print(summary("baseline: schema check", timings["structure"]))
    print(summary("walk + bindings + contexts", timings["walk"]))
    print(summary("invariants on the contexts", timings["invariants"]))
    print(summary("rule_issues (bindings + invariants)", timings["rules"]))


if __name__ == "__main__":
    main()
