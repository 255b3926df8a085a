"""``kkt-hil run`` (the scenario suite through pytest, then the HTML report) and ``report``."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from ..errors import HarnessError, UsageError
from ..report.results import Run
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def scenarios_dir() -> Path:
    import scenarios  # the suite ships with the package

    return Path(scenarios.__file__).parent


def _is_test_path(arg: str) -> bool:
    """A test file, directory or node id among pytest's arguments (not an option's value, such as
    ``--inventory lab.toml``)."""
    if arg.startswith("-"):
        return False
    path = Path(arg.split("::")[0])
    return path.is_dir() or (path.suffix == ".py" and path.exists())


def _take_alluredir(extra: list[str], default: Path) -> tuple[Path, list[str]]:
    """pytest's own ``--alluredir DIR`` among the extra arguments names the results directory
    (like ``--results``), so the HTML report is built from the results this run wrote."""
    results, rest = default, []
    args = iter(extra)
    for arg in args:
        if arg == "--alluredir":
            value = next(args, None)
            if value is None:
                raise UsageError("--alluredir needs a directory")
            results = Path(value)
        elif arg.startswith("--alluredir="):
            results = Path(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return results, rest


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    results, extra = _take_alluredir(extra, args.results)
    paths = [a for a in extra if _is_test_path(a)]
    command = [
        sys.executable,
        "-m",
        "pytest",
        *([] if paths else [str(scenarios_dir())]),
        "--rootdir",
        str(scenarios_dir().parent),
        f"--alluredir={results}",
        "--clean-alluredir",
        *[f"--kkt={spec}" for spec in args.kkt],
        *extra,
    ]
    print("run: " + " ".join(command[2:]), flush=True)
    code = subprocess.call(command)
    if code in (2, 3, 4):  # interrupted, internal error, usage error: no report worth building
        return EXIT_USAGE if code == 4 else EXIT_FAILED
    index, run = _build_report(results, args.report)
    _after_report(results, index, run, args.kkt, summary=True)
    if code == 5:
        print("kkt-hil: no scenario ran", file=sys.stderr)
        return EXIT_FAILED
    return code


def cmd_report(args: argparse.Namespace, _: list[str]) -> int:
    if not args.results.is_dir():
        raise UsageError(f"no results directory {args.results}")
    index, run = _build_report(args.results, args.output)
    _after_report(args.results, index, run, [], summary=False)
    return EXIT_OK


HISTORY_FILE = "history.jsonl"  # next to the report directory: successive builds make trends


MATRIX_ATTACHMENT = "Матрица выпуска.html"  # no glob characters: Allure globs the path


def _build_report(results: Path, output: Path) -> tuple[Path, Run]:
    """The HTML report, with its history, and the release matrix of this run (with the
    register's response times per command) attached to the whole report."""
    from .. import report
    from ..report.matrix import render_matrix
    from ..report.results import load_run

    with tempfile.TemporaryDirectory(prefix="kkt-hil-report-") as work:
        page = Path(work) / MATRIX_ATTACHMENT
        run = load_run(results)  # warns once about a result it cannot read
        page.write_text(render_matrix([run]), encoding="utf-8")
        index = report.generate_html(results, output, history=output.parent / HISTORY_FILE, global_attachments=[page])
    return index, run


def _after_report(results: Path, index: Path, run: Run, specs: list[str], *, summary: bool) -> None:
    """Beside the report: ``run.json`` in the results (where the report is), ``matrix.html`` next
    to ``index.html``; then the terminal summary (``run``), ``matrix: PATH`` and, last of all (a
    contract), ``report: PATH``."""
    from ..report.matrix import MATRIX_FILE, write_matrix
    from ..report.results import read_manifest, specs_of, write_manifest
    from ..report.summary import display_path, render_summary

    try:
        write_manifest(results, index, specs_of(results) or specs)
        run = replace(run, manifest=read_manifest(results))  # now it knows its report
        matrix = write_matrix([run], index.parent / MATRIX_FILE)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise HarnessError(f"cannot write beside the report{where}: {exc.strerror or exc}") from None
    if summary:
        for line in render_summary(run):
            print(line)
    print(f"matrix: {display_path(matrix)}")
    print(f"report: {display_path(index)}", flush=True)
