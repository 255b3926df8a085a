"""The README's commands: each parsed as written, then run (see tests/readme_support.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import pytest

from harness import open_kkt
from harness.cli.run import plugin_options
from harness.device import PaperState
from harness.inventory import parse_text
from harness.spec import parse_spec

from . import readme_blocks as rb
from .cli_helpers import Proc, kkt_hil
from .readme_support import (
    COMMANDS,
    DESTRUCTIVE_SCENARIO,
    DOC,
    HARDWARE,
    NARROW,
    REPO,
    RUN_TIMEOUT,
    SAFETY_SKIP,
    START_CLOCK,
    _check_pytest_args,
    _clean_env,  # noqa: F401  (a fixture: pytest finds it by name here)
    _emulate,
    _ids,
    _in_repo,
    _label,
    _normal,
    _output_lines,
    _parse_kkt_hil,
    _program,
    _results,
    _run,
    _shown,
    _subparsers,
    _substituted,
    _template,
    _wait_exit,
    hub_url,  # noqa: F401  (a fixture: pytest finds it by name here)
    ofd_url,  # noqa: F401  (a fixture: pytest finds it by name here)
    served,
    standin,
)

# ====================================================================== commands: parsed


@pytest.mark.parametrize("snippet", COMMANDS, ids=_ids(COMMANDS))
def test_command_parses(snippet: rb.Snippet, pytestconfig: pytest.Config) -> None:
    """Every command line as written (each optional part in and out) is accepted: kkt-hil's
    argparse, its --kkt specs, what it hands to pytest; a make target exists; a script exists."""
    for argv in rb.variants(snippet.text):
        argv = _substituted(argv)
        head = argv[0]
        if head.endswith("kkt-hil"):
            if argv[-1] == "--help":
                with pytest.raises(SystemExit) as done:
                    _parse_kkt_hil(argv[1:])
                assert done.value.code == 0
                continue
            args, extra = _parse_kkt_hil(argv[1:])
            for spec in getattr(args, "kkt", []) or []:
                parse_spec(spec)
            if args.command == "run":
                _check_pytest_args(extra, pytestconfig)
        elif head == "make":
            result = _run(["make", "-n", *argv[1:]], REPO)
            assert result.returncode == 0, _shown(result)
        elif head.endswith("python"):
            if argv[1] == "-m":
                assert argv[2] == "pytest", argv
                _check_pytest_args(argv[3:], pytestconfig)
            else:
                assert (REPO / argv[1]).is_file(), f"no script {argv[1]}"
        else:
            raise AssertionError(f"a command of an unknown program: {argv}")


@pytest.mark.parametrize("snippet", rb.command_names(DOC), ids=_ids(rb.command_names(DOC)))
def test_command_name_exists(snippet: rb.Snippet) -> None:
    name = snippet.text.split()[-1]
    assert name in _subparsers(), f"kkt-hil has no command {name!r} (has: {', '.join(_subparsers())})"


# ====================================================================== commands: run


@dataclass
class Ctx:
    snippet: rb.Snippet
    tmp: Path
    request: pytest.FixtureRequest

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @property
    def output(self) -> list[str]:
        """The lines the README shows right after the command in its block (its output)."""
        return _output_lines(self.snippet)


def parse_only(ctx: Ctx, argv: list[str]) -> None:
    """Parsed (test_command_parses), never run: it would listen beyond loopback."""


def run_make(ctx: Ctx, argv: list[str]) -> None:
    """``make TARGET``: what it would run (``make -n``, first use too), then for ``report`` its
    command itself, narrowed, in a temporary directory (the report path is relative to it)."""
    target = argv[1]
    fresh = _run(["make", "-n", target, f"VENV={ctx.tmp}/venv", f"NODE_STAMP={ctx.tmp}/node_modules/.stamp"], REPO)
    assert fresh.returncode == 0, _shown(fresh)
    assert "-m venv" in fresh.stdout and "pip install" in fresh.stdout and "-e '.[dev]'" in fresh.stdout, fresh.stdout
    assert "npm ci" in fresh.stdout, "make does not set up node_modules (the pinned Allure CLI) on first use"
    recipe = _run(["make", "-n", target], REPO).stdout.splitlines()
    if target == "lint":
        assert {".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"} <= set(recipe), recipe
        assert not any("pytest" in line for line in recipe), recipe
    elif target == "test":
        assert {".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"} <= set(recipe), recipe
        assert any("-m pytest tests -q -n 2" in line for line in recipe), recipe
        ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert ci[-1].strip() == "make test", f".ci/run does not end in `make test`: {ci[-1]!r}"
    elif target == "report":
        assert recipe[-1].strip() == ".venv/bin/kkt-hil run", recipe  # no --kkt: every emulator
        result = _default_run(ctx)
        assert result.returncode == 0, _shown(result)
        lines = result.stdout.splitlines()
        claimed = [s.text for s in DOC.spans if s.text.startswith("report: ") and s.section == ctx.snippet.section]
        for claim in claimed:
            assert lines[-1] == claim, f"README: the last line is {claim!r}; make report printed {lines[-1]!r}"
        legend = "\n".join(lines)
        for model in ("kf", "dkf", "start", "atol"):
            assert f"(emulator:{model})" in legend, f"make report did not run on emulator:{model}:\n{legend}"
    else:
        raise AssertionError(f"no check for make {target}: add one to run_make")


def _default_run(ctx: Ctx) -> subprocess.CompletedProcess[str]:
    """``kkt-hil run`` with its defaults (narrowed), once for all workers: ``make report`` is shown twice."""

    def run(cwd: Path) -> dict[str, Any]:
        result = _run([*kkt_hil(), "run", "-k", NARROW], cwd, RUN_TIMEOUT)
        return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}

    done = _once(ctx.fixture("tmp_path_factory"), ctx.fixture("worker_id"), "default-run", run)
    return subprocess.CompletedProcess(["kkt-hil", "run"], **done)


def _once(factory: pytest.TempPathFactory, worker_id: str, name: str, make: Callable[[Path], Any]) -> Any:
    """``make(cwd)`` run once for all xdist workers of this session (a file lock); its JSON result."""
    shared = factory.getbasetemp().parent if worker_id != "master" else factory.getbasetemp()
    done = shared / f"readme-{name}.json"
    with filelock.FileLock(f"{done}.lock", timeout=300):
        if not done.exists():
            cwd = shared / f"readme-{name}"
            cwd.mkdir(exist_ok=True)
            done.write_text(json.dumps(make(cwd)))
        return json.loads(done.read_text())


def run_probe(ctx: Ctx, argv: list[str]) -> None:
    """``probe URL --model M``: on an emulator of M standing in for the register."""
    args, _ = _parse_kkt_hil(argv[1:])
    with served(args.model) as (url, _):
        wire = [url if arg == args.url else arg for arg in argv[1:]]
        result = _run([*kkt_hil(), *wire], ctx.tmp)
    assert result.returncode == 0, _shown(result)
    assert "status:" in result.stdout and "shift:" in result.stdout, result.stdout


def run_help(ctx: Ctx, argv: list[str]) -> None:
    result = _run(_program(argv), ctx.tmp)
    assert result.returncode == 0, _shown(result)
    if argv[1] == "run":  # "lists them, with the plugin's own options"
        for shown, _text in plugin_options():
            assert shown.split()[0] in result.stdout, f"kkt-hil run --help does not list {shown}"


def run_debug(ctx: Ctx, argv: list[str]) -> None:
    """``kkt-hil --debug COMMAND …``: a failing command shows its traceback, then its one line."""
    result = _run([*kkt_hil(), *_substituted(argv)[1:]], ctx.tmp)
    assert result.returncode == 2, _shown(result)
    assert "Traceback (most recent call last)" in result.stderr, _shown(result)
    assert result.stderr.splitlines()[-1].startswith("kkt-hil: "), _shown(result)


@contextmanager
def _stand_ins(ctx: Ctx, argv: list[str]) -> Iterator[list[str]]:
    """``argv`` with its hardware replaced: a tty or rfc2217 register by an emulator of its model
    on loopback, ``--inventory F --kkt lab:ID`` by a stand-in ``ID`` in F; repository paths absolute."""
    argv = [_in_repo(arg) for arg in argv]
    out = list(argv)
    with ExitStack() as stack:
        for index, arg in enumerate(argv):
            if arg == "--kkt" and index + 1 < len(argv):
                spec = parse_spec(argv[index + 1])[0]
                if spec.kind == "url" and HARDWARE.match(spec.url):
                    url, _ = stack.enter_context(served(spec.model))
                    out[index + 1] = spec.text.replace(spec.url, url, 1)
                elif spec.kind == "lab":
                    inventory = argv[argv.index("--inventory") + 1]
                    stand = stack.enter_context(standin(ctx.tmp, inventory, spec.target))
                    out[out.index("--inventory") + 1] = str(stand.inventory)
        yield out


def run_run(ctx: Ctx, argv: list[str]) -> None:
    """``kkt-hil run …`` for real, narrowed to one scenario where the README gives no ``-k``."""
    lab = "lab:" in " ".join(argv)
    if ctx.snippet.section.startswith("Comparing runs"):
        record = ctx.fixture("compare_runs")[ctx.snippet.line]
        done = subprocess.CompletedProcess(record["argv"], **record["result"])
        _check_run(ctx, record["argv"], done, Path(record["cwd"]))
        return
    with _stand_ins(ctx, argv[1:]) as wire:
        if "-k" not in wire:
            wire += ["-k", DESTRUCTIVE_SCENARIO if lab else NARROW]
        result = _run([*kkt_hil(), *wire], ctx.tmp, RUN_TIMEOUT)
        _check_run(ctx, wire, result, ctx.tmp)


def _check_run(ctx: Ctx, wire: list[str], result: subprocess.CompletedProcess[str], cwd: Path) -> None:
    shown = ctx.output
    if any(line.startswith(("ERROR", "kkt-hil:")) for line in shown):  # a mistake the README shows
        assert result.returncode == 2, _shown(result)
        both = result.stdout + result.stderr
        for line in shown:
            assert _template(line).search(both), f"README shows {line!r}; got:\n{_shown(result)}"
        assert "report: " not in result.stdout, "a refused spec still built a report"
        return
    assert result.returncode == 0, _shown(result)
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("report: ") and lines[-2].startswith("matrix: "), lines[-5:]
    index = cwd / lines[-1].removeprefix("report: ")
    assert index.name == "index.html" and index.is_file(), index
    assert (index.parent / "matrix.html").is_file(), "no matrix.html beside index.html"
    args, _ = _parse_kkt_hil(wire)
    results_dir = cwd / args.results
    assert (results_dir / "run.json").is_file(), f"no run.json in {results_dir}"
    outcomes = _results(results_dir)
    assert outcomes, "no scenario ran"
    destructive = [r for r in outcomes if "destructive" in _label(r, "tag")]
    specs = [parse_spec(s)[0] for s in args.kkt]
    for outcome in destructive:
        message = outcome.get("statusDetails", {}).get("message", "")
        if any(s.kind == "url" for s in specs) or (
            any(s.kind == "lab" for s in specs) and "--allow-destructive" not in wire
        ):
            # "a url: device cannot prove that and is never sent one"; lab: only with --allow-destructive
            assert outcome["status"] == "skipped" and SAFETY_SKIP in message, (
                outcome["name"],
                outcome["status"],
                message,
            )
        elif any(s.kind == "lab" for s in specs):  # sacrificial entry (the stand-in's) + --allow-destructive
            assert outcome["status"] == "passed", (outcome["name"], outcome["status"], message)


def run_report(ctx: Ctx, argv: list[str]) -> None:
    """``kkt-hil report``: rebuilds from ``reports/allure-results`` (a run's results copied there)."""
    record = next(iter(ctx.fixture("compare_runs").values()))
    shutil.copytree(Path(record["cwd"]) / "runs/a", ctx.tmp / "reports/allure-results")
    result = _run([*kkt_hil(), *argv[1:]], ctx.tmp, RUN_TIMEOUT)
    assert result.returncode == 0, _shown(result)
    assert result.stdout.splitlines()[-1] == "report: reports/allure-report/index.html", result.stdout


def run_compare(ctx: Ctx, argv: list[str]) -> None:
    """``compare``/``matrix`` of the two runs the same block shows (copied: they write beside them)."""
    record = next(iter(ctx.fixture("compare_runs").values()))
    shutil.copytree(Path(record["cwd"]) / "runs", ctx.tmp / "runs")
    result = _run([*kkt_hil(), *argv[1:]], ctx.tmp, RUN_TIMEOUT)
    assert result.returncode == 0, _shown(result)  # nothing regressed between the two
    args, _ = _parse_kkt_hil(argv[1:])
    written = getattr(args, "html", None) or getattr(args, "output", None)
    if written:
        assert (ctx.tmp / written).is_file(), f"{argv[1]} did not write {written}"


def run_devices(ctx: Ctx, argv: list[str]) -> None:
    inventory = argv[argv.index("--inventory") + 1]
    with standin(ctx.tmp, inventory, "bench1") as stand:
        result = _run([*kkt_hil(), *argv[1:]], ctx.tmp)
    assert result.returncode == 0, _shown(result)
    assert f"= lab:{stand.id}" in result.stdout, result.stdout


def run_standin(ctx: Ctx, argv: list[str]) -> None:
    """``standin``: its lines, its entry in the inventory (the rest of the file kept), and on
    SIGTERM exit 0 with only its own block taken out again."""
    args, _ = _parse_kkt_hil(argv[1:])
    inventory = ctx.tmp / args.inventory
    inventory.write_text("# the lab's own notes, kept\n", encoding="utf-8")
    proc = Proc(argv[1:], cwd=ctx.tmp)
    try:
        lines = [proc.readline(), proc.readline()]
        device_id = args.id or f"standin-{args.model}"
        expected = [line.replace("standin-kf", device_id) for line in ctx.output]
        assert lines == expected, (lines, ctx.output)
        entry = parse_text(inventory.read_text(encoding="utf-8"), inventory).device(device_id)
        assert entry.sacrificial is (args.sacrificial == "yes"), entry
        assert _wait_exit(proc) == 0, proc.stderr()
    finally:
        proc.kill()
    assert inventory.read_text(encoding="utf-8") == "# the lab's own notes, kept\n"


def run_server(ctx: Ctx, argv: list[str]) -> None:
    """``hub`` / ``ofd`` / ``emulate``: its first lines (as the README shows them), one exchange,
    and exit 0 on SIGTERM.  Ports 0; a ``--hub`` gets a hub, ``ofd=tcp://…`` a ``kkt-hil ofd``."""
    args, _ = _parse_kkt_hil(_substituted(argv)[1:])
    wire = [re.sub(r"127\.0\.0\.1:(\d+|PORT)$", "127.0.0.1:0", arg) for arg in argv[1:]]
    if "--hub" in wire:
        wire[wire.index("--hub") + 1] = ctx.fixture("hub_url")
    wire = [arg.replace("ofd=tcp://…", f"ofd={ctx.fixture('ofd_url')}") for arg in wire]
    wire = [re.sub(r"^(?:name|key)=value$", "shift_limit_inclusive=yes", arg) for arg in wire]
    if args.command == "emulate":
        wire += ["--frozen-clock", "--clock", START_CLOCK]
    proc, lines = _emulate(ctx.tmp, *wire)
    try:
        scheme = {"emulate": "socket", "hub": "http", "ofd": "tcp"}[args.command]
        assert re.fullmatch(rf"listening {scheme}://127\.0\.0\.1:\d+", lines[0]), lines
        expected = [*ctx.output, *re.findall(r"→ (listening \S+)", ctx.snippet.comment)]
        for got, shown in zip(lines, expected, strict=False):
            assert _template(shown).fullmatch(got), f"README shows {shown!r}, the command printed {got!r}"
        if args.command == "emulate":
            url = lines[0].removeprefix("listening ")
            control = f"&control={lines[1].removeprefix('control ')}" if len(lines) > 1 else ""
            with open_kkt(f"url:{url}#model={args.model}{control}") as handle:  # "speak Pirit to it"
                assert handle.kkt.info().model == args.model
                if control:
                    handle.lab.paper("out")
                    assert handle.kkt.status().paper is PaperState.OUT
        assert _wait_exit(proc) == 0, proc.stderr()  # "Stop it with Ctrl-C or SIGTERM; it exits 0"
    finally:
        proc.kill()


def run_benchmark(ctx: Ctx, argv: list[str]) -> None:
    """A benchmark's options parse (``--help``); the Pirit round trip runs for real, 20 rounds."""
    program = _program(argv)
    result = _run([*program, "--help"], ctx.tmp)
    assert result.returncode == 0 and "usage:" in result.stdout, _shown(result)
    if argv[1].endswith("pirit_roundtrip.py"):
        result = _run([*program, "--rounds", "20"], ctx.tmp, 60)
        assert result.returncode == 0 and "ratio driver/raw" in result.stdout, _shown(result)


def run_pytest(ctx: Ctx, argv: list[str]) -> None:
    """``python -m pytest FILE …``: collected only (the file is long), with the options given."""
    result = _run([*_program(argv), "--co", "-q", "-p", "no:cacheprovider"], REPO, 60)
    assert result.returncode == 0, _shown(result)
    assert re.search(r"^\d+ tests? collected", result.stdout, re.M), result.stdout[-500:]


def _beyond_loopback(text: str) -> bool:
    return bool(re.search(r"--(?:listen|control) tcp://(?!127\.0\.0\.1)", text))


RUNNERS: list[tuple[re.Pattern[str], Callable[[Ctx, list[str]], None]]] = [
    (re.compile(r"^make \S+$"), run_make),
    (re.compile(r"--allow-lan.*tcp://(?!127\.)|tcp://(?!127\.)\S+.*--allow-lan"), parse_only),
    (re.compile(r"^kkt-hil probe "), run_probe),
    (re.compile(r"^kkt-hil \w+ --help$"), run_help),
    (re.compile(r"^kkt-hil --debug COMMAND"), run_debug),
    (re.compile(r"^kkt-hil run( |$)"), run_run),
    (re.compile(r"^kkt-hil report( |$)"), run_report),
    (re.compile(r"^kkt-hil (compare|matrix) "), run_compare),
    (re.compile(r"^kkt-hil devices "), run_devices),
    (re.compile(r"^kkt-hil standin "), run_standin),
    (re.compile(r"^kkt-hil (hub|ofd|emulate)( |$)"), run_server),
    (re.compile(r"^\.venv/bin/python benchmarks/"), run_benchmark),
    (re.compile(r"^\.venv/bin/python -m pytest "), run_pytest),
]


def _runner(text: str) -> Callable[[Ctx, list[str]], None] | None:
    text = _normal(text)
    if _beyond_loopback(text):
        return parse_only
    return next((runner for pattern, runner in RUNNERS if pattern.search(text)), None)


@pytest.mark.parametrize("snippet", COMMANDS, ids=_ids(COMMANDS))
def test_command_runs(snippet: rb.Snippet, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    runner = _runner(snippet.text)
    assert runner is not None, f"README line {snippet.line} shows a command this test cannot check: add a runner"
    for number, argv in enumerate(rb.variants(_normal(snippet.text))):
        work = tmp_path / f"variant{number}"
        work.mkdir()
        runner(Ctx(snippet, work, request), argv)


@pytest.fixture(scope="module")
def compare_runs(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[int, dict[str, Any]]:
    """The ``kkt-hil run`` lines of "Comparing runs", run once for all workers: README line → its
    argv, result and working directory."""

    def make(cwd: Path) -> dict[int, dict[str, Any]]:
        records: dict[int, dict[str, Any]] = {}
        for snippet in COMMANDS:
            if snippet.section.startswith("Comparing runs") and _normal(snippet.text).startswith("kkt-hil run "):
                argv = [*rb.variants(_normal(snippet.text))[0][1:], "-k", NARROW]
                result = _run([*kkt_hil(), *argv], cwd, RUN_TIMEOUT)
                records[snippet.line] = {
                    "argv": argv,
                    "cwd": str(cwd),
                    "result": {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr},
                }
        return records

    records = {int(k): v for k, v in _once(tmp_path_factory, worker_id, "compare-runs", make).items()}
    assert len(records) >= 2, "the comparing block shows fewer than two runs"
    return records
