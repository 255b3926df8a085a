"""The scenario suite (scenarios/) run as a separate pytest process, read back from its JUnit XML:
used by tests/test_detection_matrix.py and benchmarks/suite_time.py."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scenarios_command(*extra_args: str) -> list[str]:
    """``python -m pytest scenarios -q -p no:randomly`` plus ``extra_args`` (run in the repository
    root): the scenario suite as the stand's tests start it."""
    return [sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-q", "-p", "no:randomly", *extra_args]


def run_scenarios(
    extra_args: Sequence[str], tmp_dir: Path, *, timeout: float, messages: dict[str, str] | None = None
) -> dict[str, str]:
    """``pytest scenarios -q -p no:randomly --junitxml=...`` plus ``extra_args`` in the repository
    root; ``{"classname::name": "passed" | "failed" | "skipped"}`` for every test case (an error
    counts as failed; ``messages``, when given, gets each failure's message).  AssertionError with
    the end of the output when no report was written."""
    junit = tmp_dir / "junit.xml"
    command = scenarios_command(f"--junitxml={junit}", *extra_args)
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert junit.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            outcomes[name] = "failed"
            if messages is not None:
                messages[name] = problem.get("message") or ""
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes
