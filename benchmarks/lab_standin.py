"""The lab path on the stand-in register, measured: how many scenarios pass on a register the
harness reaches only through its inventory entry (its port, a pyvisa bench supply, the OFD proxy,
a scripted operator), and how many destructive requests reach a register that fails a safety
condition, tried through every path.

    .venv/bin/python benchmarks/lab_standin.py [--model kf] [--model atol]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.inventory import entry_toml, write_inventory  # noqa: E402
from harness.standin import start_standin  # noqa: E402
from tests.refusal_matrix import run_matrix_on_own_standin  # noqa: E402
from tests.scenario_runs import run_scenarios  # noqa: E402


def skip_reasons(junit: Path) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            reasons[(skipped.get("message") or "").split(" — ")[-1][:110]] += 1
    return reasons


def suite(model: str, folder: Path) -> None:
    standin = start_standin(model, device_id="standin", sacrificial=True)
    try:
        inventory = folder / "lab.toml"
        write_inventory(inventory, [entry_toml(standin.entry)])
        started = time.monotonic()
        outcomes = run_scenarios(
            ["--kkt", "lab:standin", "--inventory", str(inventory), "--allow-destructive"], folder, timeout=1800
        )
        elapsed = time.monotonic() - started
    finally:
        standin.close()
    counts = Counter(outcomes.values())
    print(
        f"scenarios on the stand-in ({model}) via lab:standin: {counts['passed']} of {len(outcomes)} passed, "
        f"{counts['skipped']} skipped, {counts['failed']} failed or broken, in {elapsed:.1f} s"
    )
    for reason, n in skip_reasons(folder / "junit.xml").most_common():
        print(f"  skipped {n}: {reason}")


def matrix(model: str, folder: Path) -> None:
    result = run_matrix_on_own_standin(model, folder)
    tried, control = result.tried(), result.control()
    conditions = len({c for c, _ in result.cells}) - 1
    print(
        f"refusal matrix ({model}): {len(result.reached())} destructive requests reached the register in "
        f"{len(tried)} tries ({conditions} failing conditions x {len(control)} paths; the floor guards "
        f"registrations only); control row, all four conditions met: "
        f"{sum(v == 'REACHED' for v in control.values())} of {len(control)} paths got through"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a stand-in model (repeatable; default kf and atol)")
    args = parser.parse_args()
    for model in args.model or ["kf", "atol"]:
        folder = Path(tempfile.mkdtemp(prefix=f"kkt-hil-lab-{model}-"))
        (folder / "suite").mkdir()
        suite(model, folder / "suite")
        matrix(model, folder)


if __name__ == "__main__":
    main()
