"""``kkt-hil run`` (the scenario suite through pytest, then the HTML report) and ``report``."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import HarnessError, UsageError
from ..report.results import Run
from .common import DEFAULT_REPORT, DEFAULT_RESULTS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliParser

_RUN_DESCRIPTION = """\
Run the scenario suite (scenarios/) with pytest on the chosen registers, then build the HTML
report.  At the end: a summary grid (one row per scenario, one column per register: ✓ passed,
✗ failed, ! broken, – skipped, · not run), the counts, "matrix: PATH" and, last, "report: PATH"."""

_RUN_EPILOG_HEAD = """\
pytest pass-through: every option and argument that kkt-hil run does not know goes to pytest
unchanged: test files, directories or node ids (scenarios/test_no_paper.py::test_x; without
one, the whole suite), -k EXPR, -m MARK, -x, --lf, -n 2 (pytest-xdist), -v, and the kkt-hil
plugin's own options:
"""

_RUN_EPILOG_TAIL = f"""
--kkt SPEC is repeatable: --kkt emulator:kf --kkt 'emulator:kf?firmware=2.27.0' runs every
scenario on both.  pytest's --alluredir DIR works like --results DIR.  The shipped scenarios
run without the hypothesis plugin (-p no:hypothesispytest: they do not use it, and it costs
every pytest process a fixed time), unless an argument names hypothesis.

exit status: pytest's: 0 every scenario passed (or was skipped with its reason), 1 some failed
or broke, or none ran, or pytest was interrupted; 2 a usage mistake (here, in pytest's
arguments, a bad --kkt spec, a register that cannot be reached before the run).

kkt-hil --debug run ... prints kkt-hil's own tracebacks and gives pytest --full-trace; after
`run`, --debug is pytest's own option (pytestdebug.log).

examples:
  kkt-hil run                                                 every scenario on every emulator
  kkt-hil run --kkt emulator:kf -k no_paper -n 2              one model, the no-paper scenarios, 2 workers
  kkt-hil run scenarios/test_no_paper.py --kkt emulator:kf --kkt emulator:atol
  kkt-hil run --kkt 'url:/dev/ttyUSB0#model=kf' -k test_idle_refusal        a real register
  kkt-hil run --inventory lab.toml --kkt lab:bench1 --allow-destructive --operator tty
  kkt-hil run --kkt emulator:kf --results runs/a --report runs/a-report    then: kkt-hil compare
  (defaults: --results {DEFAULT_RESULTS}, --report {DEFAULT_REPORT})
"""

_REPORT_DESCRIPTION = """\
Build the Allure HTML report from a results directory, or one report from several (runs on
several hosts, or several runs), without running anything: what `kkt-hil run` or
`pytest --alluredir DIR` wrote (*-result.json and their attachments).  Needs the Allure 3 CLI
from npm (make setup)."""

_REPORT_EPILOG = f"""\
input:   RESULTS_DIR (default {DEFAULT_RESULTS}): one run's allure results; --results DIR
         (repeatable, with or without RESULTS_DIR) merges several into one report, each result
         with its host («Хост») and register («Устройство», «ККТ»); no result counts twice (a
         directory given twice, or a copy of one, is refused).  Results of one history id from
         several hosts stay apart (in a merged report, «Хост» counts in the history id).
output:  DIR/index.html, the report (--output DIR or --report DIR): one self-contained HTML
         file (no server, no network).  An earlier report in DIR is replaced; a DIR holding
         anything else is refused.
history: DIR/../history.jsonl: every build into the same place adds to it; the report shows
         each scenario's earlier outcomes from it (trends, flaky results marked).
matrix:  DIR/matrix.html, the release matrix of the runs (scenario × register, one column per
         register of each run, its host where two would read the same; the register's response
         times per command); also attached to the report («Матрица выпуска»).
         RESULTS_DIR/run.json (of each results directory) names the report, so that kkt-hil
         compare and kkt-hil matrix link into it; "merged_with" names the other directories.
Last lines on stdout: "matrix: PATH", then "report: PATH".

examples:
  kkt-hil report                                     {DEFAULT_RESULTS} -> {DEFAULT_REPORT}
  kkt-hil report runs/a --output runs/a-report       its history in runs/history.jsonl
  pytest scenarios --alluredir out && kkt-hil report out --output out-report
  kkt-hil report --results host1/results --results host2/results --report merged
"""


def add_run_parsers(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the scenario suite (any pytest argument too), then build the HTML report",
        description=_RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [--kkt SPEC ...] [--results DIR] [--report DIR] [PYTEST ARGUMENTS ...]",
    )
    if isinstance(run, CliParser):
        run.late_epilog = _run_epilog  # the plugin's options: pytest is imported only for --help
    run.add_argument(
        "--kkt",
        action="append",
        default=[],
        metavar="SPEC",
        help="a register to run on (repeatable): emulator:kf, emulator:all, 'emulator:kf?firmware=2.25.0', "
        "'url:/dev/ttyUSB0#model=kf', lab:ID, pool:NAME (default emulator:all: every emulated model)",
    )
    run.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="DIR",
        help=f"allure results directory, emptied first (default {DEFAULT_RESULTS})",
    )
    run.add_argument(
        "--report",
        type=Path,
        default=DEFAULT_REPORT,
        metavar="DIR",
        help=f"HTML report directory: index.html, matrix.html (default {DEFAULT_REPORT})",
    )

    report = sub.add_parser(
        "report",
        help="build the Allure HTML report (and the release matrix) from a results directory",
        description=_REPORT_DESCRIPTION,
        epilog=_REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [RESULTS_DIR] [--results DIR ...] [--output DIR]",
    )
    report.add_argument(
        "results",
        nargs="?",
        type=Path,
        default=None,
        metavar="RESULTS_DIR",
        help=f"the allure results to build from (default {DEFAULT_RESULTS})",
    )
    report.add_argument(
        "--results",
        dest="more_results",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="results to merge into the same report (repeatable): several runs or hosts, one report",
    )
    report.add_argument(
        "--output",
        "--report",
        dest="output",
        type=Path,
        default=DEFAULT_REPORT,
        metavar="DIR",
        help=f"the report directory (default {DEFAULT_REPORT}; see below)",
    )


def plugin_options() -> list[tuple[str, str]]:
    """(``--option METAVAR``, help) of every pytest option the kkt-hil plugin adds, read from its
    ``pytest_addoption``, so that ``run --help`` never drifts from the plugin."""
    from .. import plugin

    options: list[tuple[str, str]] = []

    class Group:
        def addoption(self, *names: str, **kwargs: Any) -> None:
            metavar = kwargs.get("metavar")
            help_text = str(kwargs.get("help", "")).replace("%%", "%")
            repeat = " (repeatable)" if kwargs.get("action") == "append" and "repeatable" not in help_text else ""
            shown = ", ".join(names) + (f" {metavar}" if metavar else "") + repeat
            options.append((shown, help_text))

    class Parser:
        def getgroup(self, *_: Any, **__: Any) -> Group:
            return Group()

    plugin.pytest_addoption(Parser())  # type: ignore[arg-type]
    return options


def _run_epilog() -> str:
    lines = [_RUN_EPILOG_HEAD]
    try:
        options = plugin_options()
    except Exception as exc:  # noqa: BLE001 - the help must still show; it says why the list is missing
        options = [("(not listed)", f"the kkt-hil pytest plugin could not be loaded: {type(exc).__name__}: {exc}")]
    for shown, text in options:
        lines.append(f"  {shown}")
        indent = " " * 6
        lines.extend(
            textwrap.wrap(text, width=92, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)
        )
    return "\n".join(lines) + "\n" + _RUN_EPILOG_TAIL


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


def _writable_dir(path: Path, option: str) -> None:
    """``path`` exists (made if need be) and takes files: else one line, before anything runs."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".kkt-hil-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there: {exc.strerror or exc}") from None


#: What a results directory may hold; anything else in it is the user's, and is not deleted.
_RESULTS_FILES = ("*-result.json", "*-container.json", "*-attachment.*", "*.properties", "*.json")


def _only_results(path: Path) -> None:
    """pytest empties the results directory first (``--clean-alluredir``): refuse one that holds
    anything but Allure results (``--results .`` or ``--results /tmp`` would lose its files)."""
    if not path.is_dir():
        return
    foreign = [
        entry.name
        for entry in path.iterdir()
        if entry.is_dir() or not any(entry.match(pattern) for pattern in _RESULTS_FILES)
    ]
    if foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (", …" if len(foreign) > 3 else "")
        raise UsageError(
            f"--results {path}: it holds other files than Allure results ({shown}); the run empties its "
            "results directory first, so give it an empty or a results directory"
        )


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    results, extra = _take_alluredir(extra, args.results)
    _only_results(results)
    _writable_dir(results, "--results")
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
        *(_unused_plugins(extra) if all(_shipped(path) for path in paths) else []),
        *[f"--kkt={spec}" for spec in args.kkt],
        *(["--full-trace"] if getattr(args, "debug", False) else []),  # kkt-hil --debug run
        *extra,
    ]
    print("run: " + " ".join(command[2:]), flush=True)
    code = subprocess.call(command)
    if code in (2, 3, 4):  # interrupted, internal error, usage error: no report worth building
        return EXIT_USAGE if code == 4 else EXIT_FAILED
    if code == 5:  # nothing collected or all deselected: no result to build a report from
        print("kkt-hil: no scenario ran", file=sys.stderr)
        return EXIT_FAILED
    index, runs = _build_report([results], args.report)
    _after_report([results], index, runs, args.kkt, summary=True)
    return code


#: pytest plugins the shipped scenarios never use, each costing every pytest process of a run
#: (the controller and each -n worker) a fixed time: hypothesis's imports ~70 modules for its
#: terminal summary (0.2-0.4 s here), whether a test used it or not
UNUSED_PLUGINS = ("hypothesispytest",)


def _shipped(path: str) -> bool:
    """A test path among the shipped scenarios (scenarios/...)."""
    return Path(path.split("::")[0]).resolve().is_relative_to(scenarios_dir().resolve())


def _unused_plugins(extra: list[str]) -> list[str]:
    """``-p no:NAME`` for each of :data:`UNUSED_PLUGINS` the user's arguments do not mention
    (``--hypothesis-seed``, ``-p hypothesispytest``: then the plugin stays)."""
    mentioned = " ".join(extra)
    left_out: list[str] = []
    for name in UNUSED_PLUGINS:
        if name.removesuffix("pytest") not in mentioned:
            left_out += ["-p", f"no:{name}"]
    return left_out


def cmd_report(args: argparse.Namespace, _: list[str]) -> int:
    dirs = ([args.results] if args.results is not None else []) + list(args.more_results)
    dirs = dirs or [DEFAULT_RESULTS]
    for path in dirs:
        if not path.is_dir():
            raise UsageError(f"no results directory {path}")
    index, runs = _build_report(dirs, args.output, new_run=False)
    _after_report(dirs, index, runs, [], summary=False)
    return EXIT_OK


HISTORY_FILE = "history.jsonl"  # next to the report directory: successive builds make trends


MATRIX_ATTACHMENT = "Матрица выпуска.html"  # no glob characters: Allure globs the path


def _build_report(results: list[Path], output: Path, *, new_run: bool = True) -> tuple[Path, list[Run]]:
    """The HTML report, with its history, and the release matrix of these runs (with the
    registers' response times per command) attached to the whole report.  Several results
    directories are merged into one (harness.report.merge).  Only a new run adds to the
    history; a rebuild (``kkt-hil report``) reads it."""
    from .. import report
    from ..report.matrix import render_matrix
    from ..report.merge import merge_results
    from ..report.results import load_run

    with tempfile.TemporaryDirectory(prefix="kkt-hil-report-") as work:
        page = Path(work) / MATRIX_ATTACHMENT
        runs = [load_run(path) for path in results]  # each warns once about a result it cannot read
        source = results[0] if len(results) == 1 else merge_results(results, Path(work) / "results").path
        page.write_text(render_matrix(runs), encoding="utf-8")
        index = report.generate_html(
            source,
            output,
            history=output.parent / HISTORY_FILE,
            append_history=new_run,
            global_attachments=[page],
        )
    return index, runs


def _after_report(results: list[Path], index: Path, runs: list[Run], specs: list[str], *, summary: bool) -> None:
    """Beside the report: ``run.json`` in each results directory (where the report is),
    ``matrix.html`` next to ``index.html``; then the terminal summary (``run``), ``matrix: PATH``
    and, last of all (a contract), ``report: PATH``."""
    from ..report.matrix import MATRIX_FILE, write_matrix
    from ..report.results import read_manifest, specs_of, write_manifest
    from ..report.summary import display_path, render_summary

    try:
        for path in results:
            others = [other for other in results if other != path]
            write_manifest(path, index, specs_of(path) or specs, merged_with=others)
        runs = [replace(run, manifest=read_manifest(path)) for run, path in zip(runs, results, strict=True)]
        matrix = write_matrix(runs, index.parent / MATRIX_FILE)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise HarnessError(f"cannot write beside the report{where}: {exc.strerror or exc}") from None
    if summary:
        for line in render_summary(runs[0]):
            print(line)
    print(f"matrix: {display_path(matrix)}")
    print(f"report: {display_path(index)}", flush=True)
