"""The scenario suite through the fault-injecting link, against the same suite without faults.

    .venv/bin/python benchmarks/suite_faults.py [--p 0.01] [--seeds 7,8] [--models kf,atol]

Runs the scenario suite once on a clean link (``faults=seed:0``: the same link layer, no fault)
and once per seed with every byte hit with probability ``p``, each with pytest-xdist on 2
workers, and compares test by test from the Allure results:

- every test that does not pass under faults must be *broken* (the lab failed), never *failed*
  (which would blame the firmware), and carry the fault schedule (label ``faults``);
- no test may leave more fiscal documents of a kind in the register's journal than it does on a
  clean link (a duplicated receipt, shift or re-registration), and no FD number may appear twice.

Prints one line per run and exits 1 on any breach.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = re.compile(r"(shift opened|shift closed|receipt closed|re-registration|registration)\b.*?\bFD (\d+)")
JOURNAL = "Журнал ККТ"


def run_suite(models: list[str], faults: str, results: Path) -> float:
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", str(ROOT / "scenarios")]
    for model in models:
        args += ["--kkt", f"emulator:{model}?faults={faults}"]
    args += ["--device-timeout-scale", "0.05", f"--alluredir={results}"]
    began = time.monotonic()
    subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    return time.monotonic() - began


def outcomes(results: Path) -> dict[str, tuple[str, bool, Counter[str], list[int]]]:
    """test and device (without the faults) -> (status, has the faults label, documents by kind, FDs)."""
    journals: dict[str, str] = {}
    for path in results.glob("*-container.json"):
        container = json.loads(path.read_text(encoding="utf-8"))
        for after in container.get("afters", []):
            for attachment in after.get("attachments", []):
                if attachment["name"] == JOURNAL:
                    text = (results / attachment["source"]).read_text(encoding="utf-8")
                    for child in container.get("children", []):
                        journals[child] = text
    found = {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        labels = {label["name"]: label["value"] for label in result.get("labels", [])}
        spec = re.sub(r"[?&]faults=[^&]*", "", labels.get("kkt_spec", ""))
        name = f"{result.get('fullName', result['name'])} on {spec}"
        labelled = "faults" in labels
        documents: Counter[str] = Counter()
        numbers = []
        for kind, number in DOCUMENT.findall(journals.get(result["uuid"], "")):
            documents[kind] += 1
            numbers.append(int(number))
        found[name] = (result["status"], labelled, documents, numbers)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=float, default=0.01, help="per-byte fault probability (default 0.01)")
    parser.add_argument("--seeds", default="7,8", help="comma-separated seeds (default 7,8)")
    parser.add_argument("--models", default="kf,atol", help="emulated models (default kf,atol)")
    args = parser.parse_args()
    models = args.models.split(",")
    breaches = 0
    with tempfile.TemporaryDirectory(prefix="suite-faults-") as tmp:
        clean_dir = Path(tmp) / "clean"
        took = run_suite(models, "seed:0", clean_dir)
        clean = outcomes(clean_dir)
        statuses = Counter(status for status, *_ in clean.values())
        print(f"clean link: {len(clean)} tests, {dict(statuses)}, {took:.0f} s")
        for seed in args.seeds.split(","):
            schedule = f"seed:{seed},p:{args.p:g}"
            folder = Path(tmp) / f"seed{seed}"
            took = run_suite(models, schedule, folder)
            faulty = outcomes(folder)
            statuses = Counter(status for status, *_ in faulty.values())
            failed = [n for n, (s, *_) in faulty.items() if s == "failed"]
            unlabelled = [n for n, (s, labelled, *_) in faulty.items() if s == "broken" and not labelled]
            extra = []
            reused = []
            for name, (_, _, documents, numbers) in faulty.items():
                baseline = clean.get(name, (None, None, Counter(), []))[2]
                extra += [f"{name}: {k} {n} > {baseline[k]}" for k, n in documents.items() if n > baseline[k]]
                if len(numbers) != len(set(numbers)):
                    reused.append(name)
            breaches += len(failed) + len(unlabelled) + len(extra) + len(reused)
            print(
                f"faults {schedule}: {len(faulty)} tests, {dict(statuses)}, {took:.0f} s: "
                f"{len(failed)} failed (must be broken), {len(unlabelled)} broken without the schedule, "
                f"{len(extra)} with more documents than on a clean link, {len(reused)} with an FD number twice"
            )
            for line in (failed + unlabelled + extra + reused)[:10]:
                print(f"  {line}")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
