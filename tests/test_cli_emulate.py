"""``kkt-hil emulate`` and ``kkt-hil hub`` as subprocesses: the start-up lines, exit 0 on SIGTERM
and SIGINT (including the SIGNAL_RACE windows right after start), TCP and pty devices (with a
symlink removed on exit), and the ``--state`` file written on exit (its durability:
tests/test_durable_state_cli.py).  Process discipline
(deadlines, loopback only, a frozen clock) is described in tests/cli_helpers.py.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from harness.ofd.protocol import MessageReader, ReceiptMessage, encode_document

from .cli_helpers import (
    EXIT_TIMEOUT,
    IO_TIMEOUT,
    LINE_TIMEOUT,
    LISTEN_TCP,
    START_CLOCK,
    Control,
    enq,
    pty_enq,
    start_emulator,
)

# ================================================================================ start / stop
#
# SIGNAL_RACE: harness/cli.py prints "listening …" before installing its SIGTERM handler, and the
# handler calls threading.Event.set() on the Event the main thread is waiting on (a self-deadlock
# when the signal lands inside Event.wait's critical section).  A SIGTERM sent the instant the
# line is read therefore kills the process with -15 or hangs it (measured ~1 in 70 starts; more
# under pytest-xdist load).  The two strict xfail tests below reproduce both windows
# deterministically; everywhere else Proc.terminate() first waits (via /proc) until the handler
# is installed and the main thread sleeps in its wait, so the rest of the contract is tested
# without flakiness.


def test_emulate_prints_listening_and_control_lines_then_exits_0_on_sigterm(spawn) -> None:
    proc, port, control_port = start_emulator(spawn)
    assert control_port is not None
    # the advertised ports really serve: the device answers ENQ with ACK, the control answers JSON
    assert enq(port) == b"\x06"
    control = Control(control_port)
    try:
        assert control.state()["model"] == "kf"
    finally:
        control.close()
    assert proc.terminate(signal.SIGTERM) == 0
    assert proc.rest_of_stdout() == ""
    assert "Traceback" not in proc.stderr()
    # the ports are released
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT).close()


def test_emulate_exits_0_on_sigint(spawn) -> None:
    proc, port, _ = start_emulator(spawn, control=False)
    assert enq(port) == b"\x06"
    assert proc.terminate(signal.SIGINT) == 0
    assert "Traceback" not in proc.stderr()


def test_emulate_without_control_prints_only_the_listening_line(spawn) -> None:
    proc, port, _ = start_emulator(spawn, control=False)
    assert enq(port) == b"\x06"
    assert proc.terminate() == 0
    assert proc.rest_of_stdout() == ""


def test_emulate_default_listen_is_loopback_tcp(spawn) -> None:
    proc = spawn("emulate", "kf")
    match = LISTEN_TCP.match(proc.readline())
    assert match and int(match.group(1)) != 0
    assert enq(int(match.group(1))) == b"\x06"
    assert proc.terminate() == 0


def test_emulate_on_a_pty(spawn) -> None:
    proc = spawn("emulate", "kf", "--pty", "--frozen-clock", "--clock", START_CLOCK)
    first = proc.readline()
    match = re.fullmatch(r"listening (/dev/pts/\d+)", first)
    assert match, first
    path = match.group(1)
    assert os.path.exists(path)
    assert pty_enq(path) == b"\x06"  # raw mode: nothing echoed, nothing translated
    assert proc.terminate() == 0


def test_emulate_on_a_pty_with_a_symlink_removes_it_on_exit(spawn, tmp_path: Path) -> None:
    link = tmp_path / "kkt-pirit0"
    proc = spawn("emulate", "kf", "--pty", str(link))
    assert proc.readline() == f"listening {link}"
    assert link.is_symlink() and re.fullmatch(r"/dev/pts/\d+", os.readlink(link))
    assert pty_enq(str(link)) == b"\x06"  # the link leads to the device
    assert proc.terminate() == 0
    assert not link.exists() and not link.is_symlink()


def test_hub_prints_listening_http_url_and_exits_0_on_sigterm(spawn) -> None:
    proc = spawn("hub")
    line = proc.readline()
    match = re.fullmatch(r"listening http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    port = int(match.group(1))
    assert port != 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        connection.request("GET", "/admin/devices")
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"ok": True, "devices": []}
    finally:
        connection.close()
    assert proc.terminate() == 0
    assert "Traceback" not in proc.stderr()


def test_hub_with_explicit_loopback_port(spawn) -> None:
    with socket.socket() as probe:  # find a free port, then hand it over
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    proc = spawn("hub", "--listen", f"tcp://127.0.0.1:{free}")
    assert proc.readline() == f"listening http://127.0.0.1:{free}"
    socket.create_connection(("127.0.0.1", free), timeout=IO_TIMEOUT).close()  # really serving
    assert proc.terminate() == 0


def test_ofd_prints_listening_and_acknowledges_a_document(spawn) -> None:
    proc = spawn("ofd")
    match = re.fullmatch(r"listening tcp://127\.0\.0\.1:(\d+)", proc.readline())
    assert match
    with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=IO_TIMEOUT) as conn:
        conn.sendall(encode_document("9999078900000001", 7, "1234567890", 1, datetime(2021, 1, 1, 10, 0)))
        reader = MessageReader()
        answers: list[object] = []
        while not answers:
            chunk = conn.recv(4096)  # the socket's timeout bounds each wait
            assert chunk, "the OFD hung up without a receipt"
            answers = list(reader.feed(chunk))
    assert len(answers) == 1 and isinstance(answers[0], ReceiptMessage), answers
    assert (answers[0].fn_serial, answers[0].number) == ("9999078900000001", 7)
    assert proc.terminate() == 0
    assert "Traceback" not in proc.stderr()


# Runs the CLI in-process with a stdout that sends SIGTERM to the process right after the
# "listening" line is written: what a lab script does when it stops the emulator at once.
SIGTERM_AFTER_LISTENING = """
import os, signal, sys
class Out:
    def __init__(self, inner):
        self.inner = inner
    def write(self, text):
        n = self.inner.write(text)
        if text.startswith("listening "):
            self.inner.flush()
            os.kill(os.getpid(), signal.SIGTERM)
        return n
    def __getattr__(self, name):
        return getattr(self.inner, name)
sys.stdout = Out(sys.stdout)
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""

# Runs the CLI in-process; once a Python SIGTERM handler is installed, the first
# threading.Condition.wait on the main thread sends SIGTERM to the process, so the signal lands
# while Event.wait holds the Event's internal lock (the window a real SIGTERM hits by chance).
SIGTERM_INSIDE_EVENT_WAIT = """
import os, signal, sys, threading
fired = []
original = threading.Condition.wait
def wait(self, timeout=None):
    if not fired and threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGTERM)):
        fired.append(True)
        os.kill(os.getpid(), signal.SIGTERM)
    return original(self, timeout)
threading.Condition.wait = wait
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["emulate", "kf"], ["hub"], ["ofd"]], ids=["emulate", "hub", "ofd"])
def test_sigterm_right_after_the_listening_line_exits_0(spawn, command: list[str]) -> None:
    proc = spawn(*command, prefix=[sys.executable, "-c", SIGTERM_AFTER_LISTENING])
    try:
        code = proc.popen.wait(LINE_TIMEOUT)
    except subprocess.TimeoutExpired:  # a fixed CLI that ignores the early signal still must stop
        code = proc.terminate(settle=False)
    assert proc.rest_of_stdout().startswith("listening ")
    assert "Traceback" not in proc.stderr()
    assert code == 0, f"exit code {code}"


@pytest.mark.parametrize("command", [["emulate", "kf"], ["hub"], ["ofd"]], ids=["emulate", "hub", "ofd"])
def test_sigterm_while_the_main_thread_is_inside_event_wait_exits_0(spawn, command: list[str]) -> None:
    proc = spawn(*command, prefix=[sys.executable, "-c", SIGTERM_INSIDE_EVENT_WAIT])
    assert proc.readline().startswith("listening ")
    try:
        code = proc.popen.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = proc.terminate(settle=False)  # a second SIGTERM: still hangs with the bug (AssertionError)
    assert code == 0


# ================================================================================ --state FILE


def test_state_file_is_written_on_sigterm(spawn, tmp_path: Path) -> None:
    state_file = tmp_path / "kf-state.json"
    proc, _, control_port = start_emulator(spawn, "--state", str(state_file))
    assert control_port is not None
    assert state_file.exists()  # written at start (a path that cannot be written is refused then), again on exit
    control = Control(control_port)
    try:
        control.ok({"op": "paper", "state": "out"})
        control.ok({"op": "clock", "advance": 90})
        control.ok({"op": "firmware", "version": "2.25.0"})
    finally:
        control.close()
    assert proc.terminate() == 0
    snapshot = json.loads(state_file.read_text("utf-8"))
    assert snapshot["model"] == "kf"
    assert snapshot["serial"].startswith("0497")
    assert snapshot["printer"]["paper"] == "out"
    assert snapshot["firmware"] == "2.25.0"
    assert snapshot["clock"]["rtc"] == "2020-12-30T10:01:30"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
