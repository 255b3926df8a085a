"""The README as executable documentation: every command, spec, control request, inventory and
Python block it shows is run or, where it needs hardware, checked by the product's own parsers,
so a false claim fails and names its line (``test_command[L45 .venv/bin/kkt-hil run ...]``).

What runs, and what stands in for what the README assumes:
- every command in a temporary working directory (repository paths made absolute), with short
  deadlines; the whole suite narrowed with ``-k`` to one or two scenarios;
- a register on ``/dev/ttyUSB0`` or ``rfc2217://lab-host:4001``: an emulator of the same model on
  loopback TCP (the command is also parsed as written);
- ``lab.toml`` with ``lab:ID``: the stand-in (``kkt-hil standin``) with that id;
- fixed ports (50003, 7000, PORT): port 0, and the output the README shows matched with any port;
- an address beyond loopback (``tcp://0.0.0.0:…``): parsed, never bound;
- ``make`` targets: ``make -n`` (what they would run), then the report's command itself;
- benchmarks: ``--help`` (their options parse); the Pirit round trip for real with 20 rounds.

Every ``--kkt`` spec is parsed with harness.spec and, when it can be, opened; every control
request is sent to a real ``kkt-hil emulate`` and must be accepted; the op list must be the
product's; the inventory block must load (with each alternative its comments offer).
Extraction is in tests/readme_blocks.py; the minimum counts below keep it from going vacuous.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import filelock
import pytest

from devices.emulator.defects import DEFECTS
from devices.emulator.profiles import profile
from harness import cli, families, open_kkt
from harness.cli.run import plugin_options
from harness.connect import DeviceHandle
from harness.device import PaperState, TaxSystem
from harness.errors import DeviceError, SafetyRefusal, UsageError
from harness.families import Emulated
from harness.inventory import DEFAULT_FILE, ENV_VAR, inventory_path, parse_text
from harness.spec import DeviceSpec, parse_spec
from harness.transport import check_url

from . import readme_blocks as rb
from .cli_helpers import Control, Proc, kkt_hil

REPO = rb.REPO
DOC = rb.readme()
RUN_TIMEOUT = 120.0  # one narrowed `kkt-hil run` (pytest start, 1-2 scenarios, the Allure build)
SHORT = 30.0  # any other command
START_CLOCK = "2020-12-30T10:00:00"
HARDWARE = re.compile(r"^(/dev/tty(?:USB|ACM|S)\d+|rfc2217://[^#\s]+)$")
NARROW = "test_idle_refusal"  # one fast scenario, where the README gives no -k
DESTRUCTIVE_SCENARIO = "test_reregistration_with_unsent_documents"  # destructive, needs no operator
URL_PARAMS = {"control", "baud", "hub", "faults"}  # what harness.connect / the plugin read from a url: spec
SAFETY_SKIP = "Безопасность"

COMMANDS = rb.commands(DOC)
SPECS = rb.specs(DOC)
REQUESTS = rb.control_requests(DOC)
OP_BULLETS = rb.listed_ops(DOC)
INVENTORIES = rb.fences_of(DOC, "toml", "[[device]]")
PYTHON_BLOCKS = rb.fences_of(DOC, "python")
FRAGMENTS = rb.option_fragments(DOC)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands see the environment a user's shell would, not this pytest's."""
    for name in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "KKT_HIL_BUILD", ENV_VAR):
        monkeypatch.delenv(name, raising=False)


def test_readme_is_not_vacuous() -> None:
    """A README reformat must not make this file test nothing."""
    assert len(COMMANDS) >= 25, [c.label for c in COMMANDS]
    assert len(SPECS) >= 15, [s.label for s in SPECS]
    assert len(REQUESTS) >= 12, [r.snippet.label for r in REQUESTS]
    assert len(OP_BULLETS) >= 10, OP_BULLETS
    assert len(INVENTORIES) == 1 and len(PYTHON_BLOCKS) >= 1
    assert len(FRAGMENTS) >= 20, [f.label for f in FRAGMENTS]
    assert len(rb.command_names(DOC)) >= 3
    ran = [c for c in COMMANDS if _runner(c.text) is not parse_only]
    assert len(ran) >= 20, [c.label for c in ran]


# ====================================================================== helpers


def _ids(items: list[Any]) -> list[str]:
    return [getattr(item, "label", None) or item.snippet.label for item in items]


def _program(argv: list[str]) -> list[str]:
    """README's program word → what runs here: the venv's kkt-hil / python, repo paths absolute."""
    head, *rest = argv
    if head.endswith("kkt-hil"):
        return [*kkt_hil(), *rest]
    if head.endswith("python"):
        return [sys.executable, *[_in_repo(arg) for arg in rest]]
    return argv


def _in_repo(arg: str) -> str:
    """A repository-relative path (``scenarios/…``, ``tests/…``, ``benchmarks/…``) made absolute."""
    if re.match(r"^(scenarios|tests|benchmarks)/", arg) and (REPO / arg.split("::")[0]).exists():
        return str(REPO / arg)
    return arg


def _normal(text: str) -> str:
    """The command text with its program word as ``kkt-hil`` (what the runners match)."""
    return re.sub(r"^\.venv/bin/kkt-hil\b", "kkt-hil", text)


def _run(argv: list[str], cwd: Path, timeout: float = SHORT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
    )


def _shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


def _template(line: str) -> re.Pattern[str]:
    """An output line the README shows, as a pattern: ``…`` anything, ports and pty numbers any."""
    pattern = re.escape(line.strip())
    pattern = pattern.replace("…", ".*").replace(r"\.\.\.", ".*")
    pattern = re.sub(r"127\\\.0\\\.0\\\.1:(?:\d+|PORT)", r"127\\.0\\.0\\.1:\\d+", pattern)
    pattern = pattern.replace("/dev/pts/N", r"/dev/pts/\d+").replace("PORT", r"\d+")
    return re.compile(pattern)


def _wait_exit(proc: Proc, sig: int = signal.SIGTERM) -> int:
    return proc.terminate(sig, timeout=10.0)


@contextmanager
def served(model: str, *, control: bool = False) -> Iterator[tuple[str, str | None]]:
    """An emulator of ``model`` on loopback TCP, in this process: its pyserial URL and control URL."""
    record = families.model(model)
    emulated = families.family(record.family).start_emulator(record.id, {}, flowing_clock=True)
    try:
        url = emulated.serve("tcp://127.0.0.1:0")
        control_url = emulated.serve_control("tcp://127.0.0.1:0") if control else None
        yield url, control_url
    finally:
        emulated.close()


def _emulate(cwd: Path, *args: str, prefix: list[str] | None = None) -> tuple[Proc, list[str]]:
    """``kkt-hil emulate`` (or any serving command) started, with its first line(s) read."""
    proc = Proc(list(args), cwd=cwd, prefix=prefix)
    lines = [proc.readline()]
    if "--control" in args:
        lines.append(proc.readline())
    return proc, lines


@dataclass
class Standin:
    proc: Proc
    inventory: Path
    id: str


@contextmanager
def standin(cwd: Path, inventory: str, device_id: str, *extra: str) -> Iterator[Standin]:
    path = cwd / inventory
    proc = Proc(["standin", "kf", "--inventory", str(path), "--id", device_id, *extra], cwd=cwd)
    try:
        lines = [proc.readline(), proc.readline()]
        assert lines[1] == f"device {device_id}", lines
        yield Standin(proc, path, device_id)
        assert _wait_exit(proc) == 0, proc.stderr()
    finally:
        proc.kill()


def _results(directory: Path) -> list[dict[str, Any]]:
    found = []
    for path in directory.glob("*-result.json"):
        found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


def _label(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result.get("labels", []) if label["name"] == name]


# ---------------------------------------------------------------------- kkt-hil's parser


@cache
def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("kkt-hil has no subcommands")


def _session_options(config: pytest.Config) -> frozenset[str]:
    """The options of this pytest session (the same installed plugins as the one ``kkt-hil run``
    starts: pytest's own, xdist's, allure's, the kkt-hil plugin's)."""
    parser = config._parser
    return frozenset(
        name for group in [parser._anonymous, *parser._groups] for o in group.options for name in o.names()
    )


@cache
def _subprocess_options() -> frozenset[str]:
    """The options of a fresh ``python -m pytest`` (when this session has a plugin disabled)."""
    result = _run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], REPO)
    assert result.returncode == 0, result.stderr
    return frozenset(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", result.stdout))


def _pytest_knows(name: str, config: pytest.Config) -> bool:
    return name in _session_options(config) or name in _subprocess_options()


def _check_pytest_args(extra: list[str], config: pytest.Config) -> None:
    """What ``kkt-hil run`` passes on to pytest: options pytest knows, test paths that exist."""
    for arg in extra:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            assert _pytest_knows(name, config), f"pytest does not know {name!r} (passed on by kkt-hil run)"
        elif arg.endswith(".py") or "/" in arg:
            assert (REPO / arg.split("::")[0]).exists(), f"no such test path {arg!r}"


PLACEHOLDERS = [  # what a README placeholder stands for, for parsing
    (re.compile(r"^COMMAND$"), "report"),
    (re.compile(r"^…$"), "no-such-results"),
    (re.compile(r"tcp://…"), "tcp://127.0.0.1:1"),
    (re.compile(r"\bPORT\b"), "1"),
    (re.compile(r"^(?:name|key)=value$"), "shift_limit_inclusive=yes"),
]


def _substituted(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        for pattern, value in PLACEHOLDERS:
            arg = pattern.sub(value, arg)
        out.append(arg)
    return out


def _parse_kkt_hil(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``argv`` (after the program word) through the real parser, as ``kkt-hil`` parses it."""
    args, extra = cli.build_parser().parse_known_args(argv)
    if args.command != "run":
        assert not extra, f"kkt-hil {args.command}: unrecognized arguments {extra}"
    return args, extra


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


def _output_lines(snippet: rb.Snippet) -> list[str]:
    if not snippet.fenced:
        return []
    for fence in DOC.fences:
        numbers = [n for n, _ in fence.lines]
        if snippet.line in numbers:
            after = fence.lines[numbers.index(snippet.line) + 1 :]
            shown = []
            for _, line in after:
                if line.strip().lstrip("$ ").startswith(rb.COMMAND_PREFIXES) or line.startswith("#"):
                    break
                shown.append(line)
            return shown
    return []


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


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[str]:
    proc, lines = _emulate(tmp_path, "hub", "--listen", "tcp://127.0.0.1:0")
    try:
        yield lines[0].removeprefix("listening ")
    finally:
        proc.kill()


@pytest.fixture
def ofd_url(tmp_path: Path) -> Iterator[str]:
    proc, lines = _emulate(tmp_path, "ofd", "--listen", "tcp://127.0.0.1:0")
    try:
        yield lines[0].removeprefix("listening ")
    finally:
        proc.kill()


# ====================================================================== specs

REAL_DEFECTS = "ignore_24h_rule,use_utc_date"  # for the README's placeholder defects=a,b


def _coerced(value: str) -> str:
    """A spec value as ``ModelProfile.settings_help`` shows it (booleans as True/False)."""
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return "True"
    if lowered in ("0", "false", "no", "off"):
        return "False"
    return value


@pytest.mark.parametrize("snippet", SPECS, ids=_ids(SPECS))
def test_spec(snippet: rb.Snippet, request: pytest.FixtureRequest) -> None:
    """Every spec parses; an emulator spec opens and its parameters show in the register; a
    loopback ``url:`` spec reaches an emulator of its model (with its control channel as the lab);
    a hardware URL passes the transport's check; a ``lab:`` id is in the README's inventory."""
    text = snippet.text.replace("defects=a,b", f"defects={REAL_DEFECTS}").replace(
        "name=value", "shift_limit_inclusive=1"
    )
    if "tcp://…" in text:
        text = text.replace("tcp://…", request.getfixturevalue("ofd_url"))
    text = text.replace("socket://…", "socket://127.0.0.1:1")
    parsed = parse_spec(text)
    refused = [
        line for c in COMMANDS if c.line == snippet.line for line in _output_lines(c) if line.startswith("ERROR")
    ]
    if refused:  # the README shows this spec refused, with its line
        with pytest.raises(UsageError) as error:
            _open_emulator_spec(parsed[0])
        assert _template(refused[0].removeprefix("ERROR: ")).fullmatch(str(error.value)), (refused, str(error.value))
    elif parsed[0].kind == "emulator":
        if text.split("?")[0] == "emulator:all":
            assert [s.id for s in parsed] == [f"emulator-{m}" for m in ("kf", "dkf", "start", "atol")], parsed
        for spec in parsed:
            _open_emulator_spec(spec)
    elif parsed[0].kind == "url":
        _check_url_spec(parsed[0], text)
    else:
        (inventory,) = INVENTORIES
        ids = list(parse_text(inventory.text, Path("lab.toml")).devices)
        assert parsed[0].target in ids, f"lab:{parsed[0].target} is not in the README's inventory ({ids})"


def _emulator(handle: DeviceHandle) -> Emulated:
    assert handle.emulator is not None, "an emulator spec opened no emulator"
    return handle.emulator


def _settings(handle: DeviceHandle) -> dict[str, str]:
    """Every setting of the emulator's profile with its value (``ModelProfile.settings_help``)."""
    settings: dict[str, str] = cast(Any, _emulator(handle)).profile.settings_help()
    return settings


def _open_emulator_spec(spec: DeviceSpec) -> None:
    with open_kkt(spec.text) as handle:
        handle.kkt.status()
        snapshot = _emulator(handle).snapshot()
        settings = _settings(handle)
        for key, value in spec.params.items():
            if key == "firmware":
                assert snapshot["firmware"] == value
            elif key == "fn":
                assert snapshot["fn"]["kind"] == value
            elif key == "defects":
                assert sorted(snapshot["defects"]) == sorted(value.split(","))
            elif key == "clock":
                assert snapshot["clock"]["rtc"].startswith(value), snapshot["clock"]
            elif key in settings:
                assert settings[key] == _coerced(value), (key, settings[key], value)
            else:
                assert key in ("transport", "ofd", "faults"), f"{spec.text}: the register shows no {key!r}"


def _check_url_spec(spec: DeviceSpec, text: str) -> None:
    assert set(spec.params) <= URL_PARAMS, f"{spec.text}: the harness reads no {set(spec.params) - URL_PARAMS}"
    check_url(spec.url)
    if HARDWARE.match(spec.url) or not spec.url.startswith("socket://"):
        return  # a register on a tty or a lab host: parsed and checked, not reachable here
    with served(spec.model, control="control" in spec.params) as (url, control):
        wired = text.replace(spec.url, url, 1)
        if control:
            wired = wired.replace(spec.params["control"], control)
        with open_kkt(wired) as handle:
            assert handle.kkt.info().model == spec.model
            if control:  # "with its control channel as the lab"
                handle.lab.paper("out")
                assert handle.kkt.status().paper is PaperState.OUT


# ====================================================================== the control channel


@pytest.fixture(scope="module")
def linked_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``kkt-hil emulate kf`` with its control channel and linked to a ``kkt-hil hub`` (so the
    ``hub`` op answers too): the control port."""
    cwd = tmp_path_factory.mktemp("readme-control")
    hub, hub_lines = _emulate(cwd, "hub", "--listen", "tcp://127.0.0.1:0")
    try:
        proc, lines = _emulate(
            cwd,
            "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0",
            "--frozen-clock", "--clock", START_CLOCK, "--hub", hub_lines[0].removeprefix("listening "),
        )  # fmt: skip
        try:
            yield int(lines[1].rsplit(":", 1)[1])
        finally:
            proc.kill()
    finally:
        hub.kill()


@pytest.fixture
def control(linked_emulator: int) -> Iterator[Control]:
    client = Control(linked_emulator)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize("shown", REQUESTS, ids=_ids(REQUESTS))
def test_control_request(shown: rb.ControlRequest, control: Control) -> None:
    """Each request the README shows is accepted as written; a JSON reply it promises is the reply."""
    reply = control(shown.request)
    assert reply["ok"] is True, f"README line {shown.snippet.line}: {shown.request} → {reply}"
    if shown.promised is not None:
        assert {k: reply.get(k) for k in shown.promised} == shown.promised, reply


PROMISED = [r for r in REQUESTS if r.promise_text and r.promised is None]


@pytest.mark.parametrize("shown", PROMISED, ids=_ids(PROMISED))
def test_control_promise(shown: rb.ControlRequest) -> None:
    """What the README says a request does (``-> …`` in prose), on an emulator in process."""
    from scenarios.conftest import SUGAR

    op = shown.request["op"]
    with open_kkt("emulator:kf") as handle:
        control = _emulator(handle).control
        assert control({"op": "ofd", "online": False})["ok"]
        handle.kkt.open_shift()
        handle.kkt.sell([SUGAR])
        if op == "clock" and "0x0A" in shown.promise_text:
            assert control(shown.request)["ok"]
            with pytest.raises(DeviceError) as refused:
                handle.kkt.sell([SUGAR])
            assert refused.value.code == 0x0A, refused.value
        elif op == "ofd" and "drains" in shown.promise_text:
            assert handle.kkt.ofd_queue().count >= 1
            reply = control(shown.request)
            assert reply["ok"] and reply["unsent"] == 0, reply
            assert handle.kkt.ofd_queue().count == 0
        else:
            raise AssertionError(f"README line {shown.snippet.line} promises {shown.promise_text!r}: add its check")


def test_op_list_is_the_products(control: Control) -> None:
    """The op list (plus the ``hub`` op of its own section) is every op the emulator answers."""
    listed = {name for bullet in OP_BULLETS for name in bullet.names}
    shown = listed | {r.request["op"] for r in REQUESTS}
    product = set(control.ok({"op": "ops"})["ops"])
    assert shown == product, f"README lists {sorted(shown - product)} extra, misses {sorted(product - shown)}"


@pytest.mark.parametrize("bullet", OP_BULLETS, ids=[f"L{b.line} {' '.join(b.names)}" for b in OP_BULLETS])
def test_listed_op(bullet: rb.OpBullet, control: Control) -> None:
    """An op in the list is shown with its arguments (a JSON example), or needs none; each value
    of an ``a`` | ``b`` list in its bullet is accepted in the argument of the example it fits."""
    for name in bullet.names:
        examples = [r.request for r in REQUESTS if r.request["op"] == name]
        if not examples:
            reply = control({"op": name})
            assert reply["ok"] is True, f"README line {bullet.line}: {name!r} shows no arguments, but {reply}"
        for values in bullet.alternations():
            fits = [(e, k) for e in examples for k, v in e.items() if k != "op" and v in values]
            assert fits, f"README line {bullet.line}: {values} fit no argument of {examples}"
            example, key = fits[0]
            for value in values:
                reply = control({**example, key: value})
                assert reply["ok"] is True, (example, key, value, reply)


# ====================================================================== inventory, Python, names


def _inventory_cases() -> list[tuple[str, str]]:
    """The README's inventory, and the same with each alternative its comments offer."""
    cases: list[tuple[str, str]] = []
    for block in INVENTORIES:
        cases.append((f"L{block.line} as written", block.text))
        for number, line in block.lines:
            key, _, rest = line.partition("=")
            _value, _, comment = rest.partition("#")
            key, comment = key.strip(), comment.strip()
            alternatives: list[str] = []
            if key == "model" and ":" in comment:
                alternatives = [f'model = "{m.strip()}"' for m in comment.split(":", 1)[1].split(",")]
            elif comment.startswith("or:"):
                alternatives = [alt.strip() for alt in comment[3:].split("|")]
            elif "|" in comment:
                alternatives = [f'{key} = "{re.sub(r" .*", "", alt.strip())}"' for alt in comment.split("|")]
            for alternative in alternatives:
                alternative = alternative.replace("PORT", "7001")
                text = block.text.replace(line, alternative, 1)
                cases.append((f"L{number} {alternative}", text))
    return cases


INVENTORY_CASES = _inventory_cases()


@pytest.mark.parametrize(("label", "text"), INVENTORY_CASES, ids=[c[0] for c in INVENTORY_CASES])
def test_inventory(label: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    inventory = parse_text(text, path)
    assert inventory.devices, label


def test_inventory_models_are_the_catalogue() -> None:
    (block,) = INVENTORIES
    (line,) = [line for _, line in block.lines if line.startswith("model")]
    listed = {m.strip() for m in line.split("#", 1)[1].split(":", 1)[1].split(",")}
    assert listed == set(families.model_ids()), "the inventory comment's model list is not the catalogue's"


def test_inventory_is_found_as_the_readme_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README: found through `--inventory FILE`, then `$KKT_HIL_INVENTORY`, then `./kkt-hil.toml`."""
    assert {"$KKT_HIL_INVENTORY", "./kkt-hil.toml", "--inventory FILE"} <= {s.text for s in DOC.spans}
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEFAULT_FILE).write_text("")
    assert inventory_path(None) == tmp_path / DEFAULT_FILE
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.toml"))
    assert inventory_path(None) == tmp_path / "env.toml"
    assert inventory_path("given.toml") == Path("given.toml")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"L{b.line} python" for b in PYTHON_BLOCKS])
def test_python_block(block: rb.Fence, tmp_path: Path) -> None:
    result = _run([sys.executable, "-c", block.text], tmp_path, 60)
    assert result.returncode == 0, _shown(result)


def test_entry_point_block() -> None:
    """The third-party family block is a pyproject table of the group the product reads."""
    blocks = [b for b in DOC.fences if b.lang == "toml" and "entry-points" in b.text]
    assert blocks
    ours = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    for block in blocks:
        for group in tomllib.loads(block.text)["project"]["entry-points"]:
            assert group in ours, f"no entry-point group {group!r} in the product"
    assert hasattr(families, "Family")


@cache
def _kkt_hil_options() -> frozenset[str]:
    names: set[str] = set()
    for sub in _subparsers().values():
        names.update(sub._option_string_actions)
    names.update(shown.split()[0].rstrip(",") for shown, _ in plugin_options())
    return frozenset(names)


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=_ids(FRAGMENTS))
def test_option_fragment(fragment: rb.Snippet, pytestconfig: pytest.Config) -> None:
    name = re.split(r"[ =]", fragment.text)[0]
    known = name in _kkt_hil_options() or _pytest_knows(name, pytestconfig)
    assert known, f"no command of kkt-hil (nor pytest) takes {name}"


def test_defect_list_is_the_products() -> None:
    items = rb.bullets_under(DOC, "emulated register for POS", "Seeded firmware defects")
    listed = {name for _, text in items for name in re.findall(r"`([a-z0-9_]+)`", text)}
    assert listed == set(DEFECTS), f"extra {sorted(listed - set(DEFECTS))}, missing {sorted(set(DEFECTS) - listed)}"


# what each bullet of "profile settings" says of the defaults, per model
SETTING_DEFAULTS = {
    "shift_limit_inclusive": ("Default: no", {"kf": "False", "dkf": "False", "start": "False", "atol": "False"}),
    "rereg_requires_empty_queue": (
        "Старт and АТОЛ refuse",
        {"kf": "False", "dkf": "False", "start": "True", "atol": "True"},
    ),
    "ofd_block_allows_shift_open": ("shift open are refused", {"kf": "False", "atol": "False"}),
    "ofd_block_allows_shift_close": ("shift close is allowed", {"kf": "True", "atol": "True"}),
    "tax_mismatch_code": ("(the default)", {"kf": "fn"}),
    "auto_open_shift": ("off on Pirit, on for АТОЛ", {"kf": "False", "start": "False", "atol": "True"}),
    "paper_check_before_commit": ("refused before the ФН", {"kf": "True", "atol": "True"}),
}
SETTING_BULLETS = rb.bullets_under(DOC, "profile settings")


@pytest.mark.parametrize(("line", "text"), SETTING_BULLETS, ids=[f"L{n} {t[:60]}" for n, t in SETTING_BULLETS])
def test_profile_setting(line: int, text: str) -> None:
    """Each choice names its setting; the setting is overridable per spec with each value the
    bullet names (booleans both ways), its defaults are as the bullet says, and a bad value is refused."""
    names = [n for n in re.findall(r"`([a-z_]+)`", text) if n in SETTING_DEFAULTS or "_" in n]
    assert names, f"README line {line} names no setting"
    for name in names:
        assert name in SETTING_DEFAULTS, f"README line {line}: {name!r}: add what the bullet says to SETTING_DEFAULTS"
        phrase, defaults = SETTING_DEFAULTS[name]
        assert phrase in text, f"README line {line} no longer says {phrase!r}: update SETTING_DEFAULTS"
        for model, default in defaults.items():
            assert profile(model).settings_help()[name] == default, (name, model)
        model = next(iter(defaults))
        values = [v for v in re.findall(r"`([a-z_]+)`", text) if v not in names] or ["yes", "no"]
        for value in values:
            with open_kkt(f"emulator:{model}?{name}={value}") as handle:
                assert _settings(handle)[name] == _coerced(value)
        with pytest.raises(Exception, match=name if values == ["yes", "no"] else "|".join(values)):
            with open_kkt(f"emulator:{model}?{name}=bogus"):
                pass


# ====================================================================== claims in prose

PROSE = " ".join(" ".join(text.split()) for _, text, _ in DOC.prose)


def _claim(phrase: str) -> None:
    """The README still says ``phrase`` (else the test below checks a claim no longer made)."""
    assert " ".join(phrase.split()) in PROSE, f"README no longer says {phrase!r}: update this test"


def _control_port(lines: list[str]) -> int:
    return int(lines[1].rsplit(":", 1)[1])


def test_claim_ctrl_c_exits_0(tmp_path: Path) -> None:
    _claim("Stop it with Ctrl-C or SIGTERM; it exits 0.")
    proc, _ = _emulate(tmp_path, "emulate", "kf", "--listen", "tcp://127.0.0.1:0")
    try:
        assert _wait_exit(proc, signal.SIGINT) == 0, proc.stderr()
    finally:
        proc.kill()


def test_claim_emulate_options(tmp_path: Path) -> None:
    """``--firmware 2.25.0``, ``--fn fn15``, ``--defect NAME``, ``--clock …``, ``--frozen-clock``
    as the README shows them, seen in the register's state; ``--pty`` names a /dev/pts/N."""
    shown = {f.text.split()[0]: f.text for f in FRAGMENTS if f.section.startswith("An emulated register")}
    for option in ("--firmware", "--fn", "--defect", "--clock", "--frozen-clock", "--pty"):
        assert option in shown, f"README no longer shows {option} for kkt-hil emulate"
    defect = sorted(DEFECTS)[0]
    args = [shown[o].replace("NAME", defect) for o in ("--firmware", "--fn", "--defect", "--clock", "--frozen-clock")]
    argv = [word for arg in args for word in arg.split()]
    proc, lines = _emulate(
        tmp_path, "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0", *argv
    )
    try:
        client = Control(_control_port(lines))
        state = client.state()
        client.close()
        clock = shown["--clock"].split()[1]
        assert state["firmware"] == shown["--firmware"].split()[1]
        assert state["fn"]["kind"] == shown["--fn"].split()[1]
        assert state["defects"] == [defect]
        assert state["clock"]["rtc"] == clock and state["clock"]["flowing"] is False, state["clock"]
    finally:
        proc.kill()
    _claim("the first line then names `/dev/pts/N`")
    proc, lines = _emulate(tmp_path, "emulate", "kf", "--pty")
    try:
        assert re.fullmatch(r"listening /dev/pts/\d+", lines[0]), lines
    finally:
        proc.kill()


def test_claim_state_file(tmp_path: Path) -> None:
    """``--state FILE``: loaded at start, every ФН document kept through a SIGKILL, SIGTERM exits 0
    with FILE complete and the journal removed, an unwritable path is one line and exit 2."""
    _claim("loaded at start when it exists")
    _claim("the restarted register holds every document a client could have seen")
    _claim("SIGTERM exits 0 with FILE complete and the journal removed")
    _claim("is one line on stderr and exit 2 before anything listens")
    state = tmp_path / "kf.json"
    journal = Path(f"{state}.journal")
    base = ["emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0", "--frozen-clock"]
    proc, lines = _emulate(tmp_path, *base, "--clock", START_CLOCK, "--state", str(state))
    try:
        with open_kkt(f"url:{lines[0].removeprefix('listening ')}#model=kf") as handle:
            opened = handle.kkt.open_shift().number
        client = Control(_control_port(lines))
        client.ok({"op": "paper", "state": "near_end"})
        client.close()
        assert _wait_exit(proc) == 0, proc.stderr()
    finally:
        proc.kill()
    kept = json.loads(state.read_text(encoding="utf-8"))
    assert kept["fn"]["last_fd"] == opened and kept["printer"]["paper"] == "near_end", kept["fn"]["last_fd"]
    assert not journal.exists(), "the journal is still there after SIGTERM"

    proc, lines = _emulate(tmp_path, *base, "--state", str(state))  # loaded at start
    try:
        client = Control(_control_port(lines))
        again = client.state()
        client.close()
        assert (
            again["fn"]["last_fd"] == opened and again["shift"]["is_open"] and again["printer"]["paper"] == "near_end"
        )
        from scenarios.conftest import SUGAR

        with open_kkt(f"url:{lines[0].removeprefix('listening ')}#model=kf") as handle:
            sold = handle.kkt.sell([SUGAR]).number
        proc.popen.kill()  # SIGKILL: no shutdown at all
        proc.popen.wait(10)
    finally:
        proc.kill()
    proc, lines = _emulate(tmp_path, *base, "--state", str(state))
    try:
        client = Control(_control_port(lines))
        assert client.state()["fn"]["last_fd"] == sold, "a receipt the client saw was lost with SIGKILL"
        client.close()
        assert _wait_exit(proc) == 0
    finally:
        proc.kill()

    result = _run([*kkt_hil(), *base, "--state", "/proc/no-such-dir/kf.json"], tmp_path)
    assert result.returncode == 2 and "listening" not in result.stdout, _shown(result)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_claim_url_register_keeps_its_state() -> None:
    """An out-of-process emulator (``url:…&control=…``) is not fresh per test: what one handle
    left (paper out) the next one finds."""
    _claim("its state carries over from test to test")
    with served("kf", control=True) as (url, control):
        spec = f"url:{url}#model=kf&control={control}"
        with open_kkt(spec) as handle:
            handle.lab.paper("out")
        with open_kkt(spec) as handle:
            assert handle.kkt.status().paper is PaperState.OUT


def test_claim_sacrificial_entry_needed(tmp_path: Path) -> None:
    """A destructive request to a lab register not marked sacrificial is refused before its frame
    is written, even with ``--allow-destructive`` (in a scenario: a skip, see the lab run above)."""
    _claim("run on a real device only as a `lab:` inventory entry marked sacrificial, with `--allow-destructive`")
    with standin(tmp_path, "lab.toml", "bench1", "--sacrificial", "no") as stand:
        opened = open_kkt(
            "lab:bench1", inventory=stand.inventory, allow_destructive=True, destructive=True, operator="none"
        )
        with opened as handle:
            before = handle.kkt.fn()
            with pytest.raises(SafetyRefusal, match="sacrificial"):
                handle.kkt.reregister(TaxSystem.OSN if before.tax_systems != TaxSystem.OSN else TaxSystem.USN_INCOME)
            assert handle.kkt.fn().last_registration_fd == before.last_registration_fd


# ====================================================================== the hub's admin API

ADMIN_ROWS = [
    (s, m) for s in DOC.spans if (m := re.fullmatch(r"(GET|POST) (/admin/\S+)(?: (\{.*\}))?", s.text)) is not None
]


@pytest.fixture(scope="module")
def admin_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A ``kkt-hil hub`` with one emulated register that has polled it: (hub URL, serial)."""
    cwd = tmp_path_factory.mktemp("readme-hub")
    hub, hub_lines = _emulate(cwd, "hub", "--listen", "tcp://127.0.0.1:0")
    url = hub_lines[0].removeprefix("listening ")
    try:
        proc, lines = _emulate(
            cwd,
            "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0",
            "--frozen-clock", "--clock", START_CLOCK, "--hub", url,
        )  # fmt: skip
        try:
            client = Control(_control_port(lines))
            client.ok({"op": "hub", "poll": True})
            serial = client.state()["serial"]
            client.close()
            yield url, serial
        finally:
            proc.kill()
    finally:
        hub.kill()


def _http(url: str, method: str, path: str, body: bytes | None = None, kind: str = "application/json") -> Any:
    from urllib.request import Request, urlopen

    request = Request(url + path, data=body, method=method, headers={"Content-Type": kind})
    with urlopen(request, timeout=5) as answer:  # an HTTP error status raises: the test fails with it
        assert answer.status == 200
        return json.loads(answer.read())


def _body(shape: str, serial: str) -> bytes:
    """The README's ``{"serial", "withhold": true}`` as JSON: a bare key is the register's."""
    return shape.replace('{"serial"', f'{{"serial": "{serial}"').encode()


@pytest.mark.parametrize(("span", "call"), ADMIN_ROWS, ids=[s.label for s, _ in ADMIN_ROWS])
def test_hub_admin_call(span: rb.Snippet, call: re.Match[str], admin_hub: tuple[str, str]) -> None:
    """Each admin call of the table is answered as it says (the keys it shows are in the answer)."""
    url, serial = admin_hub
    method, path, shape = call.groups()
    _http(url, "POST", "/admin/tasks", _body('{"serial", "tax_systems": ["osn"], "date": "2021-01-01"}', serial))
    path = path.replace("<serial>", serial)
    row = next(line for number, line, _ in DOC.prose if number == span.line)
    if path == "/admin/import":
        csv_header = re.search(r"text/csv: `([^`]+)`", row)
        assert csv_header, row
        body: bytes | None = f"{csv_header.group(1)}\n{serial},2021-01-01,osn\n".encode()
        answer = _http(url, method, path, body, "text/csv")
    else:
        body = _body(shape, serial) if shape else (b"{}" if method == "POST" else None)
        answer = _http(url, method, path, body)
    assert answer["ok"] is True, answer
    effect = row.split("|")[2]
    shown = re.search(r"`\{(.*?)\}`", effect)
    if shown:  # its top-level keys (lists shown inside are not looked into)
        for key in re.findall(r'"(\w+)"', re.sub(r"\[[^\[\]]*\]", "", shown.group(1))):
            assert key in answer, f"README line {span.line}: the answer has no {key!r}: {answer}"
    if path == "/admin/tasks" and method == "GET":
        states = set(re.findall(r"`(\w+)`", effect))
        assert {t["state"] for t in answer["tasks"]} <= states, answer
    if path == "/admin/tasks" and method == "POST" and "tax systems" in effect:
        for name in re.findall(r"`(\w+)`", effect.split("tax systems", 1)[1]):
            TaxSystem.from_names([name])  # a name the product knows
    if path == "/admin/offline":
        _http(url, "POST", path, _body('{"serial", "offline": false}', serial))
