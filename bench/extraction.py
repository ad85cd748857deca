"""Benchmark search-index extraction: compiled accessors against pure fhirpathpy, per resource type.

Run: .venv/bin/python bench/extraction.py [--rounds N]
Reads the official R4 examples from ../shared/fhir-examples (each example file of a type, plus the Bundle
entries of that type); prints, per type, the median microseconds per resource of each way.
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

from nphies_facade.resources.search.definitions import SearchRegistry  # noqa: E402
from nphies_facade.resources.search.extraction import Extractor  # noqa: E402

EXAMPLES = REPO / ".." / "shared" / "fhir-examples"
TYPES = ("Patient", "Claim", "Coverage", "Encounter", "Task", "Practitioner", "Organization")
ROUND_SECONDS = 0.2


def examples_by_type() -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.stem == "Bundle-searchParams":
            continue
        resource = orjson.loads(path.read_bytes())
        found.setdefault(resource["resourceType"], []).append(resource)
        if resource["resourceType"] == "Bundle":
            for entry in resource.get("entry", []):
                if "resource" in entry:
                    found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return found


def microseconds_per_resource(extractor: Extractor, resources: list[dict], rounds: int) -> float:
    """Median over rounds of the mean time per resource; each round runs about ROUND_SECONDS."""
    start = time.perf_counter()
    for resource in resources:
        extractor.extract(resource)
    once = time.perf_counter() - start
    repeats = max(1, int(ROUND_SECONDS / max(once, 1e-9)))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            for resource in resources:
                extractor.extract(resource)
        samples.append((time.perf_counter() - start) / (repeats * len(resources)) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not EXAMPLES.is_dir():
        sys.exit(f"{EXAMPLES} not found: the benchmark reads the official examples from ../shared")

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"cpu_count={os.cpu_count()}, python {platform.python_version()}"
    )

    start = time.perf_counter()
    registry = SearchRegistry()
    loaded = time.perf_counter()
    compiled = Extractor(registry)
    warmed = time.perf_counter()
    fhirpathpy = Extractor(registry, use_compiler=False)
    print(
        f"start-up: load definitions {(loaded - start) * 1e3:.0f} ms, build plans for "
        f"{len(registry.resource_types())} types {(warmed - loaded) * 1e3:.0f} ms"
    )
    print(f"median microseconds per resource over {args.rounds} rounds of ~{ROUND_SECONDS}s each\n")

    examples = examples_by_type()
    header = f"{'type':<13}{'examples':>9}{'params':>8}{'compiled':>10}{'fallback':>10}"
    print(f"{header}{'compiled us':>13}{'fhirpathpy us':>15}{'speed-up':>10}")
    for resource_type in TYPES:
        resources = examples[resource_type]
        plans = compiled.plans(resource_type)
        n_compiled = sum(plan.compiled for plan in plans)
        fast = microseconds_per_resource(compiled, resources, args.rounds)
        slow = microseconds_per_resource(fhirpathpy, resources, args.rounds)
        print(
            f"{resource_type:<13}{len(resources):>9}{len(plans):>8}{n_compiled:>10}{len(plans) - n_compiled:>10}"
            f"{fast:>13.1f}{slow:>15.1f}{slow / fast:>9.1f}x"
        )


if __name__ == "__main__":
    main()
