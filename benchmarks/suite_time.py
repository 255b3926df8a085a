"""The whole scenario suite on all four emulators: wall time single-process and with ``-n 2``
(pytest-xdist), side by side in one run; then N consecutive single-process runs, counting flaky
results (a test whose outcome differs between runs).

    .venv/bin/python benchmarks/suite_time.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(extra: list[str]) -> tuple[float, dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "scenarios"),
            "-q",
            "-p",
            "no:randomly",
            f"--junitxml={junit}",
            *extra,
        ]
        t0 = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
        elapsed = time.perf_counter() - t0
        outcomes = {}
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                outcomes[name] = "failed"
            elif case.find("skipped") is not None:
                outcomes[name] = "skipped"
            else:
                outcomes[name] = "passed"
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
