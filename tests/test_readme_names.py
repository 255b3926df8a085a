"""The README's inventory, Python blocks, names, claims in prose and the hub's admin API
(see tests/readme_support.py); the minimum counts that keep all test_readme_* files from going vacuous."""

from __future__ import annotations

import json
import re
import signal
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from devices.emulator.defects import DEFECTS
from devices.emulator.profiles import profile
from harness import families, open_kkt
from harness.cli.run import plugin_options
from harness.device import PaperState, TaxSystem
from harness.errors import SafetyRefusal
from harness.inventory import DEFAULT_FILE, ENV_VAR, inventory_path, parse_text

from . import readme_blocks as rb
from .cli_helpers import Control, kkt_hil
from .readme_support import (
    COMMANDS,
    DOC,
    FRAGMENTS,
    INVENTORIES,
    OP_BULLETS,
    PYTHON_BLOCKS,
    REPO,
    REQUESTS,
    SPECS,
    START_CLOCK,
    _clean_env,  # noqa: F401  (a fixture: pytest finds it by name here)
    _coerced,
    _emulate,
    _ids,
    _pytest_knows,
    _run,
    _settings,
    _shown,
    _subparsers,
    _wait_exit,
    served,
    standin,
)
from .test_readme_commands import _runner, parse_only


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
    "batch_scope": ("the default", {"kf": "document", "start": "document"}),
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
