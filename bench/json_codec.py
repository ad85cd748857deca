"""The JSON codec's cost per resource: parse + serialise of each official R4 example with exact_json
(decimals keep their text) beside plain orjson (the baseline: floats, text lost), in the same run.

Each round times, per example, `loads` then `dumps` of its bytes, both codecs one after the other on the
same example (alternating which goes first), and reports over the examples the median and p99 of
microseconds per resource, per codec and their difference; the figures are the medians over --rounds.
The examples whose numbers a float would change (105.00, 1e2 ...) are reported apart: only those take the
JsonNumber path.

  .venv/bin/python bench/json_codec.py [--examples DIR] [--rounds 5]
      DIR: the unpacked npm package hl7.fhir.r4.examples@4.0.1 (tests fetch it into .cache/; default), else
      ../shared/fhir-examples
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nphies_facade import exact_json  # noqa: E402

PACKAGE = ROOT / ".cache" / "hl7.fhir.r4.examples-4.0.1" / "package"
SHARED = ROOT.parent / "shared" / "fhir-examples"


def _resources(folder: Path) -> list[bytes]:
    bodies = []
    for path in sorted(folder.glob("*.json")):
        body = path.read_bytes()
        parsed = orjson.loads(body)
        if isinstance(parsed, dict) and "resourceType" in parsed:
            bodies.append(body)
    return bodies


def _round_trip_us(loads, dumps, body: bytes) -> float:
    start = time.perf_counter_ns()
    dumps(loads(body))
    return (time.perf_counter_ns() - start) / 1000


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _round(bodies: list[bytes], flip: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"orjson": [], "exact_json": []}
    codecs = [("orjson", orjson.loads, orjson.dumps), ("exact_json", exact_json.loads, exact_json.dumps)]
    for body in bodies:
        for name, loads, dumps in reversed(codecs) if flip else codecs:
            times[name].append(_round_trip_us(loads, dumps, body))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=Path, default=PACKAGE if PACKAGE.is_dir() else SHARED)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    bodies = _resources(args.examples)
    tricky = [b for b in bodies if exact_json.dumps(exact_json.loads(b)) != orjson.dumps(orjson.loads(b))]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"examples: {args.examples} ({len(bodies)} resources, {len(tricky)} with numbers a float changes)")
    for label, group in (("all resources", bodies), ("numbers a float changes", tricky)):
        medians: dict[str, list[float]] = {"orjson": [], "exact_json": []}
        p99s: dict[str, list[float]] = {"orjson": [], "exact_json": []}
        deltas = []
        for number in range(args.rounds):
            times = _round(group, flip=number % 2 == 1)
            for name, values in times.items():
                medians[name].append(statistics.median(values))
                p99s[name].append(_percentile(values, 0.99))
            deltas.append(
                statistics.median(e - o for e, o in zip(times["exact_json"], times["orjson"], strict=True))
            )
        print(
            f"\n{label} ({len(group)}), parse + serialise, us per resource, median of {args.rounds} rounds:"
        )
        for name in ("orjson", "exact_json"):
            print(
                f"  {name:<11} median {statistics.median(medians[name]):7.2f}   "
                f"p99 {statistics.median(p99s[name]):8.1f}"
            )
        print(f"  exact_json - orjson, median per resource: {statistics.median(deltas):+.2f} us")


if __name__ == "__main__":
    main()
