"""A user's first hour with ``kkt-hil``, from a fresh clone: every mistake is one line on stderr
(or, with ``probe --json``, one JSON object on stdout) with the right exit status and never a
traceback; ``--debug`` shows the traceback; a bug is one "internal error" line; and the help
of run, report, probe, devices and faults teaches every option with its default, and examples.

Only loopback: an HTTP-ish server on 127.0.0.1 that answers a register's request with an HTTP
error, a silent one, a refused port.  No sleeps: every wait is on an event or a process, with a
deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import cli
from harness.cli.run import plugin_options
from harness.inventory import suggest_entry

from .cli_helpers import RUN_TIMEOUT, Proc, assert_clean_failure, kkt_hil, one_line, run_cli
from .tcp_peers import AnsweringPeer, LoopbackPeer

HTTP_ERROR = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
EXIT_TIMEOUT = 10.0


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text and "Exception ignored" not in text, text


def _json_failure(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Exit ``code``, exactly one JSON object ``{"ok": false, "error": ...}`` on stdout, nothing on
    stderr; returns the error."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    _no_traceback(result)
    assert result.stderr == ""
    reply = json.loads(one_line(result.stdout))
    assert reply["ok"] is False and set(reply) == {"ok", "error"}, reply
    error = reply["error"]
    assert isinstance(error, str) and error and "\n" not in error
    return error


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpServer(LoopbackPeer):
    """What a user reaches with a wrong port: a web server.  It answers the first request on a
    connection with an HTTP error, then (``hang_up=False``) keeps the connection open and says
    nothing more, as a keep-alive server waiting for a real request does."""

    def __init__(self, *, hang_up: bool) -> None:
        self.hang_up = hang_up
        super().__init__(self._serve_http)

    def _serve_http(self, conn: socket.socket) -> None:
        answered = False
        while not self.stopping.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if not answered:
                conn.sendall(HTTP_ERROR)
                answered = True
                if self.hang_up:
                    return


@pytest.fixture(params=[False, True], ids=["keeps-open", "hangs-up"])
def http_server(request: pytest.FixtureRequest) -> Iterator[HttpServer]:
    with HttpServer(hang_up=request.param) as server:
        yield server


# ================================================================================ probe


@pytest.mark.parametrize("model", ["kf", "atol"])
def test_probe_of_an_http_server_says_what_answered(http_server: HttpServer, tmp_path: Path, model: str) -> None:
    url = f"socket://127.0.0.1:{http_server.port}"
    result = run_cli("probe", url, "--model", model, "--timeout", "1", cwd=tmp_path)
    line = assert_clean_failure(result, 1)
    assert url in line and "no answer" not in line and "disconnected" not in line, line
    assert ("not a Pirit frame" if model == "kf" else "АТОЛ" if http_server.hang_up else "not ATOL") in line, line
    assert "48 54 54 50" in line, line
    assert result.stdout == ""


def test_probe_of_an_http_server_says_it_is_not_a_pirit_frame(tmp_path: Path) -> None:
    with HttpServer(hang_up=False) as server:
        url = f"socket://127.0.0.1:{server.port}"
        result = run_cli("probe", url, "--model", "kf", "--timeout", "1", cwd=tmp_path)
    line = assert_clean_failure(result, 1)
    assert line.startswith(f"kkt-hil: {url} answered with something that is not a Pirit frame: 48 54 54 50 "), line


def test_probe_json_of_an_http_server_is_one_json_object(tmp_path: Path) -> None:
    with HttpServer(hang_up=False) as server:
        result = run_cli(
            "probe", f"socket://127.0.0.1:{server.port}", "--model", "kf", "--json", "--timeout", "1", cwd=tmp_path
        )
    error = _json_failure(result, 1)
    assert "not a Pirit frame" in error and not error.startswith("kkt-hil")


def test_probe_of_a_silent_port_still_says_no_answer(tmp_path: Path) -> None:
    with AnsweringPeer(bytes) as device:
        result = run_cli("probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", "1", cwd=tmp_path)
    assert "no answer" in assert_clean_failure(result, 1)


def test_probe_of_a_refused_port_says_it_once(tmp_path: Path) -> None:
    url = f"socket://127.0.0.1:{_closed_port()}"
    result = run_cli("probe", url, "--model", "kf", "--timeout", "1", cwd=tmp_path)
    line = assert_clean_failure(result, 1)
    assert line == f"kkt-hil: cannot open {url}: Connection refused", line


def test_probe_json_of_a_refused_port(tmp_path: Path) -> None:
    url = f"socket://127.0.0.1:{_closed_port()}"
    result = run_cli("probe", url, "--model", "kf", "--json", "--timeout", "1", cwd=tmp_path)
    assert _json_failure(result, 1) == f"cannot open {url}: Connection refused"


def test_probe_json_usage_errors_are_json_too(tmp_path: Path) -> None:
    for args in (["--model", "kf", "--json"], ["x", "--model", "nosuch", "--json"], ["x", "--json", "--model"]):
        error = _json_failure(run_cli("probe", *args, cwd=tmp_path), 2)
        assert "kkt-hil: kkt-hil" not in error


def test_a_usage_error_names_the_command_once(tmp_path: Path) -> None:
    result = run_cli("probe", "--model", "kf", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert line.startswith("kkt-hil probe: the following arguments are required: URL"), line
    assert "kkt-hil: kkt-hil" not in line and line.count("kkt-hil probe") == 2  # and "see kkt-hil probe --help"


# ================================================================================ every mistake, one line


def _files(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "bad.toml").write_text("[[device]\nid = 1\n")
    (tmp_path / "latin1.toml").write_bytes(b"id = '\xe9'\n")
    return {"DIR": str(folder), "FILE": str(tmp_path / "a-file"), "MISSING": str(tmp_path / "missing")}


MISTAKES: list[tuple[str, list[str], int, str]] = [
    ("unknown-command", ["frobnicate"], 2, "frobnicate"),
    ("unknown-option", ["probe", "x", "--model", "kf", "--bogus"], 2, "kkt-hil probe: unrecognized arguments: --bogus"),
    ("missing-value", ["run", "--report"], 2, "kkt-hil run: argument --report"),
    ("bad-number", ["probe", "x", "--model", "kf", "--timeout", "abc"], 2, "invalid float value: 'abc'"),
    ("nan", ["devices", "--timeout", "nan"], 2, "--timeout"),
    ("ipv6-url", ["probe", "socket://[::1", "--model", "kf"], 2, "bad device URL"),
    ("no-port", ["probe", "socket://127.0.0.1", "--model", "kf"], 2, "HOST:PORT"),
    ("port-not-a-number", ["probe", "socket://127.0.0.1:http", "--model", "kf"], 2, "bad device URL"),
    ("port-out-of-range", ["probe", "socket://127.0.0.1:99999", "--model", "kf"], 2, "bad device URL"),
    ("no-host", ["probe", "rfc2217://", "--model", "kf"], 2, "HOST:PORT"),
    ("scheme", ["probe", "ftp://127.0.0.1:1", "--model", "kf"], 2, "ftp"),
    ("missing-tty", ["probe", "MISSING", "--model", "kf", "--timeout", "1"], 1, "No such file or directory"),
    ("dir-as-tty", ["probe", "DIR", "--model", "kf", "--timeout", "1"], 1, "Is a directory"),
    ("missing-inventory", ["devices", "--inventory", "MISSING"], 2, "cannot read the inventory"),
    ("dir-as-inventory", ["devices", "--inventory", "DIR"], 2, "Is a directory"),
    ("bad-toml", ["devices", "--inventory", "bad.toml"], 2, "bad.toml:1:"),
    ("not-utf8", ["devices", "--inventory", "latin1.toml"], 2, "not UTF-8"),
    ("missing-results", ["report", "MISSING"], 2, "no results directory"),
    ("file-as-results", ["report", "FILE"], 2, "FILE"),
    ("empty-results", ["report", "DIR"], 2, "DIR"),
    ("compare-missing", ["compare", "MISSING", "DIR"], 2, "MISSING"),
    ("compare-bad-percent", ["compare", "DIR", "DIR", "--latency-threshold", "lots"], 2, "a percentage"),
    ("matrix-file", ["matrix", "FILE"], 2, "FILE"),
    ("faults-schedule", ["faults", "--upstream", "tcp://127.0.0.1:1", "--faults", "seed:x"], 2, "seed"),
    ("faults-url", ["faults", "--upstream", "udp://127.0.0.1:1", "--faults", "seed:1"], 2, "udp"),
]


@pytest.mark.parametrize("args, code, expected", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_every_mistake_is_one_line(tmp_path: Path, args: list[str], code: int, expected: str) -> None:
    files = _files(tmp_path)
    argv = [files.get(arg, arg) for arg in args]
    result = run_cli(*argv, cwd=tmp_path)
    line = assert_clean_failure(result, code)
    assert files.get(expected, expected) in line, line
    assert "kkt-hil: kkt-hil" not in line and "Could not open port" not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_inventory_is_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "lab.toml"
    inventory.write_text("")
    inventory.chmod(0)
    assert "Permission denied" in assert_clean_failure(
        run_cli("devices", "--inventory", str(inventory), cwd=tmp_path), 2
    )


def test_ctrl_c_is_one_line(spawn: Callable[..., Proc]) -> None:
    asked = threading.Event()

    def silent(_chunk: bytes) -> bytes:
        asked.set()
        return b""

    with AnsweringPeer(respond=silent) as device:
        proc = spawn("probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", "60")
        assert asked.wait(RUN_TIMEOUT), "the probe never asked"
        proc.popen.send_signal(signal.SIGINT)
        assert proc.popen.wait(EXIT_TIMEOUT) == 1
    assert proc.stderr().splitlines() == ["kkt-hil: interrupted"]
    assert proc.rest_of_stdout() == ""


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["report", "MISSING"]], ids=["help", "run", "error"])
def test_a_reader_that_left_ends_the_command_quietly(tmp_path: Path, args: list[str]) -> None:
    argv = [str(tmp_path / "missing") if arg == "MISSING" else arg for arg in args]
    read_end, write_end = os.pipe()
    os.close(read_end)  # `kkt-hil ... | head -0`: nobody reads stdout
    try:
        result = subprocess.run(
            [*kkt_hil(), *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    if args[-1] == "MISSING":  # an error goes to stderr, which is still there
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    else:
        assert result.returncode == 0 and result.stderr == ""


# ================================================================================ internal errors, --debug


@pytest.fixture
def broken_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bug: the serial port listing raises (devices without an inventory, in ``tmp_path``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KKT_HIL_INVENTORY", raising=False)

    def boom() -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr("serial.tools.list_ports.comports", boom)


@pytest.mark.usefixtures("broken_discovery")
def test_an_internal_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["devices"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["kkt-hil: internal error: RuntimeError: boom (run with --debug for the traceback)"]


@pytest.mark.usefixtures("broken_discovery")
@pytest.mark.parametrize("argv", [["--debug", "devices"], ["devices", "--debug"]], ids=["before", "after"])
def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):"), err
    assert "RuntimeError: boom" in err and "in cmd_devices" in err
    assert err.splitlines()[-1] == "kkt-hil: internal error: RuntimeError: boom"


def test_debug_shows_the_traceback_of_a_mistake_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["--debug", "report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "UsageError" in err
    assert err.splitlines()[-1] == f"kkt-hil: no results directory {tmp_path / 'missing'}"


def test_an_environment_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KKT_HIL_INVENTORY", raising=False)

    def denied() -> list[object]:
        raise PermissionError(13, "Permission denied", "/dev/serial")

    monkeypatch.setattr("serial.tools.list_ports.comports", denied)
    assert cli.main(["devices"]) == 1
    assert capsys.readouterr().err.splitlines() == ["kkt-hil: /dev/serial: Permission denied"]


def test_an_internal_error_with_json_is_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(_url: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("harness.cli.probe.check_device_url", boom)
    assert cli.main(["probe", "socket://127.0.0.1:1", "--model", "kf", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out) == {
        "ok": False,
        "error": "internal error: RuntimeError: boom (run with --debug for the traceback)",
    }


# ================================================================================ devices


def _devices(capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, timeout: str = "0.2") -> list[str]:
    """``kkt-hil devices`` in-process, with no serial port on the host and one inventory entry at ``url``."""
    inventory = tmp_path / "lab.toml"
    inventory.write_text(suggest_entry(id="bench1", model="kf", serial="0497000001", url=url))
    assert cli.main(["devices", "--inventory", str(inventory), "--timeout", timeout]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


@pytest.fixture
def no_serial_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("serial.tools.list_ports.comports", list)


@pytest.mark.usefixtures("no_serial_ports")
def test_devices_says_nothing_answered(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with AnsweringPeer(bytes) as device:
        url = f"socket://127.0.0.1:{device.port}"
        lines = _devices(capsys, tmp_path, url)
    assert lines[0] == f"inventory: {tmp_path / 'lab.toml'} (from --inventory, 1 register)"
    assert lines[1].split() == ["PORT", "WHERE", "WHAT", "ANSWERED"]
    line = next(line for line in lines if line.startswith(url))
    assert "inventory lab:bench1" in line
    assert line.endswith("nothing answered (tried pirit, atol within 0.2 s)"), line
    assert "n/a" not in "\n".join(lines)


@pytest.mark.usefixtures("no_serial_ports")
def test_devices_says_what_answered_instead(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with HttpServer(hang_up=False) as server:
        url = f"socket://127.0.0.1:{server.port}"
        line = next(line for line in _devices(capsys, tmp_path, url) if line.startswith(url))
    assert "something answered, but not as pirit or atol: 48 54 54 50" in line and "HTTP/1.1 400" in line, line


@pytest.mark.usefixtures("no_serial_ports")
def test_devices_says_a_refused_port_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"socket://127.0.0.1:{_closed_port()}"
    line = next(line for line in _devices(capsys, tmp_path, url) if line.startswith(url))
    assert line.endswith(f"cannot open {url}: Connection refused"), line


def test_devices_names_a_usb_adapter_by_what_an_inventory_entry_can_use() -> None:
    from harness.cli.probe import _port_where

    class Port:
        name = "ttyUSB0"
        vid, pid = 0x0403, 0x6001
        serial_number, location, description = "A10K3Q2Z", "1-1.4", "FT232R USB UART"

    class Legacy:
        name = "ttyS0"
        vid = pid = serial_number = location = None
        description = "n/a"

    assert _port_where(Port()).startswith("USB 0403:6001 usb_serial A10K3Q2Z port 1-1.4 FT232R USB UART")
    assert _port_where(Legacy()) == "serial port, not USB"


# ================================================================================ help


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_run_help_shows_the_pytest_pass_through_and_the_plugin_options(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(_help(capsys, "run").split())  # argparse wraps the option help
    assert "pytest pass-through" in text and "goes to pytest" in text
    for option in ("--kkt SPEC", "--inventory FILE", "--operator WHO", "--real-time-budget", "--allow-destructive"):
        assert option in text, option
    assert "--device-timeout-scale F" in text and "repeatable" in text
    assert "default reports/allure-results" in text and "default reports/allure-report" in text
    assert "examples:" in text and "kkt-hil run --kkt emulator:kf -k no_paper" in text
    assert "kkt-hil --debug run" in text


def test_run_help_lists_every_option_of_the_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    options = plugin_options()
    assert len(options) >= 6
    text = " ".join(_help(capsys, "run").split())
    for shown, help_text in options:
        assert shown.split()[0] in text
        assert " ".join(help_text.split())[:40] in text, shown


def test_report_help_explains_input_output_history_and_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "report")
    for word in ("input:", "output:", "history:", "matrix:", "RESULTS_DIR", "--output DIR", "index.html"):
        assert word in text, word
    assert "history.jsonl" in text and "matrix.html" in text and "run.json" in text
    assert "default reports/allure-results" in text and "default reports/allure-report" in text
    assert "examples:" in text


def test_probe_help_says_what_the_timeout_is(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "probe")
    assert "default 5" in text and "1.5 s" in text and "TIMEOUT/5" in text
    assert '{"ok": false, "error": "..."}' in text
    assert "examples:" in text and "kkt-hil probe /dev/ttyUSB0 --model kf" in text


def test_devices_help_shows_its_output(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "devices")
    assert "nothing answered (tried pirit, atol within 1 s)" in text and "default 1" in text
    assert "$KKT_HIL_INVENTORY" in text and "examples:" in text


def test_top_level_help_shows_debug_and_first_steps(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys)
    assert "--debug" in text and "first steps:" in text and "exit status:" in text


OURS = ("probe", "devices", "run", "report", "faults", "compare", "matrix")


@pytest.mark.parametrize("command", OURS)
def test_every_option_says_its_default(command: str) -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[command]._actions:
        if action.default in (None, False, [], argparse.SUPPRESS) or action.help == argparse.SUPPRESS:
            continue
        assert action.help and "default" in action.help, (command, action.dest, action.help)


@pytest.mark.parametrize("command", ["probe", "devices", "run", "report", "faults", "compare", "matrix"])
def test_every_command_of_ours_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert "example" in _help(capsys, command)


def test_debug_before_run_gives_pytest_full_trace(tmp_path: Path) -> None:
    """``kkt-hil --debug run``: pytest gets --full-trace (a bad spec stops it before any test)."""
    result = run_cli("--debug", "run", "--kkt", "bogus", "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("run: pytest ") and " --full-trace" in first and "--debug" not in first, first
