"""The whole scenario suite on all four emulators: wall time single-process and with ``-n 2``
(pytest-xdist), side by side in one run; then N consecutive single-process runs, counting flaky
results (a test whose outcome differs between runs).

    .venv/bin/python benchmarks/suite_time.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scenario_runs import run_scenarios


def run(extra: list[str]) -> tuple[float, dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcomes = run_scenarios(extra, Path(tmp), timeout=900)
        elapsed = time.perf_counter() - t0  # the run and reading its small JUnit XML back
    return elapsed, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    single, outcomes = run([])
    parallel, outcomes_n2 = run(["-n", "2"])
    counts: defaultdict[str, int] = defaultdict(int)
    for value in outcomes.values():
        counts[value] += 1
    print(f"scenarios on kf, dkf, start, atol: {len(outcomes)} tests ({dict(counts)})")
    print(f"wall time, single process : {single:6.2f} s")
    print(f"wall time, -n 2           : {parallel:6.2f} s   (speed-up {single / parallel:.2f}x)")
    print(f"same outcomes with -n 2   : {outcomes == outcomes_n2}")
    history: dict[str, set[str]] = defaultdict(set)
    for _ in range(args.repeat):
        _, result = run([])
        for name, value in result.items():
            history[name].add(value)
    flaky = sorted(name for name, values in history.items() if len(values) > 1)
    failing = sorted(name for name, values in history.items() if values == {"failed"})
    print(f"{args.repeat} consecutive runs: {len(flaky)} flaky tests, {len(failing)} always failing")
    for name in flaky:
        print(f"  flaky: {name} {sorted(history[name])}")


if __name__ == "__main__":
    main()
