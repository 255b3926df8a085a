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
Extraction is in tests/readme_blocks.py; the minimum counts in tests/test_readme_names.py keep it
from going vacuous. This module holds what the test_readme_* files share; the tests are in
tests/test_readme_commands.py, tests/test_readme_specs_control.py and tests/test_readme_names.py.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest

from harness import cli, families
from harness.connect import DeviceHandle
from harness.families import Emulated
from harness.inventory import ENV_VAR

from . import readme_blocks as rb
from .cli_helpers import Proc, kkt_hil

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


def _coerced(value: str) -> str:
    """A spec value as ``ModelProfile.settings_help`` shows it (booleans as True/False)."""
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return "True"
    if lowered in ("0", "false", "no", "off"):
        return "False"
    return value


def _emulator(handle: DeviceHandle) -> Emulated:
    assert handle.emulator is not None, "an emulator spec opened no emulator"
    return handle.emulator


def _settings(handle: DeviceHandle) -> dict[str, str]:
    """Every setting of the emulator's profile with its value (``ModelProfile.settings_help``)."""
    settings: dict[str, str] = cast(Any, _emulator(handle)).profile.settings_help()
    return settings


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
