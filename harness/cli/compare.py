"""``kkt-hil compare`` (what changed between two runs; exit 1 on a regression) and ``kkt-hil matrix``
(the release matrix page over one or more runs)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..report.compare import (
    DEFAULT_LATENCY_MIN_MS,
    DEFAULT_LATENCY_MIN_SAMPLES,
    DEFAULT_LATENCY_THRESHOLD,
    compare,
    render_html,
    render_text,
)
from ..report.matrix import MATRIX_FILE, write_matrix
from ..report.results import load_run
from .common import DEFAULT_REPORT, EXIT_FAILED, EXIT_OK

DEFAULT_MATRIX = DEFAULT_REPORT / MATRIX_FILE

_COMPARE_EPILOG = f"""\
Scenarios are matched by test, model and fault schedule, so a run on emulator:kf matches one on
'emulator:kf?firmware=2.27.0' or on a lab register of the same model.  Listed, one line each:
REGRESSION (passed -> failed/broken, or other steps while failing in B), FIXED, CHANGED (another
status), BEHAVIOUR (same status, other steps: the first differing step is shown), ONLY-A, ONLY-B,
and SLOWER/FASTER commands (median response time; a slower one is a regression).  Unchanged
scenarios are only counted, on the last line.  Links point into each run's report when its
results directory holds run.json (written by `kkt-hil run` and `kkt-hil report`).

exit status: 0 nothing regressed, 1 a regression, 2 a usage mistake.

example:
  kkt-hil run --kkt emulator:kf --results runs/a --report runs/a-report
  kkt-hil run --kkt 'emulator:kf?firmware=2.27.0' --results runs/b --report runs/b-report
  kkt-hil compare runs/a runs/b --html runs/compare.html
  (thresholds: --latency-threshold {DEFAULT_LATENCY_THRESHOLD * 100:g} --latency-min-ms {DEFAULT_LATENCY_MIN_MS:g})
"""

_MATRIX_EPILOG = f"""\
Rows are scenarios grouped by feature (section anchors are those of the results' «Матрица
сценариев» links), columns the registers of every run (model and firmware), cells the outcome
linked to the test's page in that run's Allure report (when the results hold run.json).  The page
is self-contained.  `kkt-hil run` and `kkt-hil report` write it themselves as matrix.html beside
the report's index.html.

example:
  kkt-hil matrix runs/kf-2.26 runs/kf-2.27 runs/atol --output release/matrix.html
  (default --output {DEFAULT_MATRIX})
"""


def add_compare_parsers(sub: Any) -> None:
    compare_ = sub.add_parser(
        "compare",
        help="scenarios whose outcome or behaviour changed between two runs; exit 1 on a regression",
        description="Compare two allure results directories (run A = before, run B = after).",
        epilog=_COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare_.add_argument("run_a", type=Path, metavar="RUN_A", help="results directory of the reference run")
    compare_.add_argument("run_b", type=Path, metavar="RUN_B", help="results directory of the run under test")
    compare_.add_argument("--html", type=Path, metavar="FILE", help="also write the comparison as an HTML page")
    compare_.add_argument(
        "--latency-threshold",
        type=_percent,
        default=DEFAULT_LATENCY_THRESHOLD,
        metavar="PCT",
        help=f"flag a command whose median moved by more than PCT %% (default {DEFAULT_LATENCY_THRESHOLD * 100:g})",
    )
    compare_.add_argument(
        "--latency-min-ms",
        type=_milliseconds,
        default=DEFAULT_LATENCY_MIN_MS,
        metavar="MS",
        help=f"... and by more than MS milliseconds (default {DEFAULT_LATENCY_MIN_MS:g}: below is noise)",
    )
    compare_.add_argument(
        "--latency-min-samples",
        type=_samples,
        default=DEFAULT_LATENCY_MIN_SAMPLES,
        metavar="N",
        help=f"... over at least N answers to the command in each run (default {DEFAULT_LATENCY_MIN_SAMPLES})",
    )

    matrix = sub.add_parser(
        "matrix",
        help="the release matrix page (scenario × register) over one or more runs",
        description="Build the release matrix HTML page from allure results directories.",
        epilog=_MATRIX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    matrix.add_argument("results", nargs="+", type=Path, metavar="RESULTS_DIR", help="allure results directory")
    matrix.add_argument(
        "--output", type=Path, default=DEFAULT_MATRIX, metavar="FILE", help=f"the page (default {DEFAULT_MATRIX})"
    )


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{what}, not {text!r}")
    return value


def _percent(text: str) -> float:
    """``50`` or ``50%`` → 0.5."""
    return _number(text.strip().removesuffix("%"), "a percentage such as 50") / 100.0


def _milliseconds(text: str) -> float:
    return _number(text, "milliseconds, a number 0 or above")


def _samples(text: str) -> int:
    value = _number(text, "a whole number of answers, 1 or more")
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"a whole number of answers, 1 or more, not {text!r}")
    return int(value)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_compare(args: argparse.Namespace, _: list[str]) -> int:
    run_a, run_b = load_run(args.run_a), load_run(args.run_b)
    comparison = compare(run_a, run_b, args.latency_threshold, args.latency_min_ms, args.latency_min_samples)
    if args.html is not None:
        _write(args.html, render_html(comparison))
        print(f"html: {args.html}")
    for line in render_text(comparison):  # the counts line last
        print(line)
    sys.stdout.flush()
    return EXIT_FAILED if comparison.regressed else EXIT_OK


def cmd_matrix(args: argparse.Namespace, _: list[str]) -> int:
    runs = [load_run(path) for path in args.results]
    try:
        path = write_matrix(runs, args.output)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"matrix: {path}", flush=True)
    return EXIT_OK
