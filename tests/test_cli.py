"""``kkt-hil`` as a subprocess: the command-line contract of DESIGN.md ("Command line").

Every process is started through the ``spawn`` fixture and killed in its teardown; every read
from a pipe, socket or pty has a deadline; nothing binds or connects outside 127.0.0.1 (a
"bad" non-loopback address is only ever handed to the CLI to check that it refuses it, and a
wrapper records every ``bind`` to prove nothing was bound).  No ``time.sleep``: the emulator
runs with a frozen virtual clock moved through the control channel.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devices.emulator.defects import DEFECTS

LINE_TIMEOUT = 15.0  # first output lines of a starting process (cold imports on a busy CI host)
EXIT_TIMEOUT = 5.0  # SIGTERM → exit, per the contract
RUN_TIMEOUT = 30.0  # a short-lived command (usage errors, probe)
IO_TIMEOUT = 5.0  # one control-channel or wire exchange
START_CLOCK = "2020-12-30T10:00:00"
KNOWN_DEFECTS = tuple(sorted(DEFECTS))  # the product's registry: the CLI must name every one


def kkt_hil() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m harness.cli``."""
    script = shutil.which("kkt-hil", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "harness.cli"]


# ------------------------------------------------------------------------------ process helper


class Proc:
    """A running ``kkt-hil``: stdout read line by line with deadlines (selectors, no blocking)."""

    def __init__(self, args: list[str], *, cwd: Path, prefix: list[str] | None = None) -> None:
        self.args = args
        self._stderr_path = cwd / f"stderr-{os.getpid()}-{id(self)}.txt"
        self._stderr_file = self._stderr_path.open("wb")
        self.popen = subprocess.Popen(
            [*(prefix if prefix is not None else kkt_hil()), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            cwd=cwd,
        )
        assert self.popen.stdout is not None
        os.set_blocking(self.popen.stdout.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.popen.stdout, selectors.EVENT_READ)
        self._buffer = b""
        self._eof = False

    def readline(self, timeout: float = LINE_TIMEOUT) -> str:
        """One stdout line without the newline; AssertionError on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self._eof:
                raise AssertionError(f"kkt-hil {self.args} closed stdout; stderr: {self.stderr()!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"kkt-hil {self.args}: no line within {timeout} s; got {self._buffer!r}")
            if not self._selector.select(remaining):
                continue
            assert self.popen.stdout is not None
            chunk = os.read(self.popen.stdout.fileno(), 4096)
            if not chunk:
                self._eof = True
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8")

    def rest_of_stdout(self, timeout: float = EXIT_TIMEOUT) -> str:
        """Everything still on stdout up to EOF (call after the process has exited)."""
        deadline = time.monotonic() + timeout
        while not self._eof and time.monotonic() < deadline:
            if self._selector.select(max(0.0, deadline - time.monotonic())):
                assert self.popen.stdout is not None
                chunk = os.read(self.popen.stdout.fileno(), 4096)
                if not chunk:
                    self._eof = True
                self._buffer += chunk
        return self._buffer.decode("utf-8", "replace")

    def stderr(self) -> str:
        self._stderr_file.flush()
        return self._stderr_path.read_text("utf-8", "replace")

    def wait_signal_ready(self, timeout: float = LINE_TIMEOUT) -> None:
        """Until the process has a SIGTERM handler and its main thread is blocked (see SIGNAL_RACE).

        Linux /proc: SigCgt (a handler) or SigBlk (blocked for sigwait) has bit 15-1; the main thread's
        state is 'S' once it sleeps in its wait.  Polled on the stdout selector (wakes on exit).
        """
        deadline = time.monotonic() + timeout
        pid = self.popen.pid
        while self.popen.poll() is None:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return  # exited meanwhile
            caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M).group(1), 16)  # type: ignore[union-attr]
            blocked = 0  # sigwait unblocks SIGTERM for the waiting thread; its workers keep the mask
            for task in Path(f"/proc/{pid}/task").iterdir():
                try:
                    found = re.search(r"^SigBlk:\s*([0-9a-f]+)$", (task / "status").read_text(), re.M)
                except OSError:
                    continue
                blocked |= int(found.group(1), 16) if found else 0
            # ready: SIGTERM is handled, or blocked and collected with sigwait by the sleeping main thread
            if (caught | blocked) & (1 << (signal.SIGTERM - 1)) and state == "S":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"kkt-hil {self.args}: no SIGTERM handler after {timeout} s")
            self._selector.select(0.005)

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = EXIT_TIMEOUT, *, settle: bool = True) -> int:
        """Send ``sig``; return the exit code; AssertionError if it did not exit within ``timeout``."""
        if settle:
            self.wait_signal_ready()
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"kkt-hil {self.args} still running {timeout} s after signal {sig}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            try:
                self.popen.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._selector.close()
        if self.popen.stdout:
            self.popen.stdout.close()
        self._stderr_file.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def start(*args: str, prefix: list[str] | None = None) -> Proc:
        proc = Proc(list(args), cwd=tmp_path, prefix=prefix)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.kill()


def run_cli(*args: str, cwd: Path, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kkt_hil(), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL
    )


def one_line(text: str) -> str:
    """The single non-empty line of ``text`` (AssertionError otherwise)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {text!r}"
    return lines[0]


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Exit ``code``, exactly one line on stderr, no traceback; returns that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return one_line(result.stderr)


LISTEN_TCP = re.compile(r"^listening socket://127\.0\.0\.1:(\d+)$")
CONTROL_TCP = re.compile(r"^control tcp://127\.0\.0\.1:(\d+)$")


def start_emulator(spawn: Callable[..., Proc], *extra: str, control: bool = True) -> tuple[Proc, int, int | None]:
    args = ["emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--frozen-clock", "--clock", START_CLOCK, *extra]
    if control:
        args += ["--control", "tcp://127.0.0.1:0"]
    proc = spawn(*args)
    first = proc.readline()
    match = LISTEN_TCP.match(first)
    assert match, f"first line {first!r}"
    port = int(match.group(1))
    assert port != 0
    control_port = None
    if control:
        second = proc.readline()
        cmatch = CONTROL_TCP.match(second)
        assert cmatch, f"second line {second!r}"
        control_port = int(cmatch.group(1))
        assert control_port not in (0, port)
    return proc, port, control_port


# ------------------------------------------------------------------------------ control client


class Control:
    """Line-oriented JSON client written from DESIGN.md (not the product's ControlClient)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.settimeout(IO_TIMEOUT)
        self._buffer = b""

    def send_raw(self, line: bytes) -> dict[str, Any]:
        self.sock.sendall(line)
        return self.read_reply()

    def read_reply(self) -> dict[str, Any]:
        deadline = time.monotonic() + IO_TIMEOUT
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no control reply within {IO_TIMEOUT} s"
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            assert chunk, "control channel closed the connection"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line.decode("utf-8"))
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
        return reply

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.send_raw((json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8"))

    def ok(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = self(request)
        assert reply["ok"] is True, (request, reply)
        return reply

    def state(self) -> dict[str, Any]:
        state = self.ok({"op": "state"})["state"]
        assert isinstance(state, dict)
        return state

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def emulator(spawn: Callable[..., Proc]) -> Iterator[tuple[Proc, int, Control]]:
    proc, port, control_port = start_emulator(spawn)
    assert control_port is not None
    control = Control(control_port)
    try:
        yield proc, port, control
    finally:
        control.close()


def enq(port: int) -> bytes:
    """ENQ on the device link; the reply byte(s), b"" when the device stays silent."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"\x05")
        ready, _, _ = select.select([sock], [], [], 1.0)
        return sock.recv(16) if ready else b""


def pty_enq(path: str) -> bytes:
    """ENQ on a pty device path; the first reply bytes (AssertionError after IO_TIMEOUT)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fd, b"\x05")
        ready, _, _ = select.select([fd], [], [], IO_TIMEOUT)
        assert ready, f"no answer on {path}"
        return os.read(fd, 16)
    finally:
        os.close(fd)


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


@pytest.mark.parametrize("command", [["emulate", "kf"], ["hub"]], ids=["emulate", "hub"])
def test_sigterm_right_after_the_listening_line_exits_0(spawn, command: list[str]) -> None:
    proc = spawn(*command, prefix=[sys.executable, "-c", SIGTERM_AFTER_LISTENING])
    try:
        code = proc.popen.wait(LINE_TIMEOUT)
    except subprocess.TimeoutExpired:  # a fixed CLI that ignores the early signal still must stop
        code = proc.terminate(settle=False)
    assert proc.rest_of_stdout().startswith("listening ")
    assert "Traceback" not in proc.stderr()
    assert code == 0, f"exit code {code}"


@pytest.mark.parametrize("command", [["emulate", "kf"], ["hub"]], ids=["emulate", "hub"])
def test_sigterm_while_the_main_thread_is_inside_event_wait_exits_0(spawn, command: list[str]) -> None:
    proc = spawn(*command, prefix=[sys.executable, "-c", SIGTERM_INSIDE_EVENT_WAIT])
    assert proc.readline().startswith("listening ")
    try:
        code = proc.popen.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = proc.terminate(settle=False)  # a second SIGTERM: still hangs with the bug (AssertionError)
    assert code == 0


# ================================================================================ control channel


def test_control_state_is_a_full_snapshot(emulator) -> None:
    _, _, control = emulator
    state = control.state()
    assert state["model"] == "kf"
    assert state["serial"].startswith("0497")
    assert state["clock"]["rtc"] == START_CLOCK
    assert state["clock"]["flowing"] is False
    assert state["printer"]["paper"] == "ok" and state["printer"]["cover_open"] is False
    assert state["ofd_online"] is False
    assert state["powered"] is True
    assert state["shift"]["is_open"] is False
    assert state["fn"]["serial"] and state["fn"]["phase"] == 3
    # a frozen clock does not move between two reads
    assert control.state()["clock"]["rtc"] == START_CLOCK


@pytest.mark.parametrize("paper", ["near_end", "out", "ok"])
def test_control_paper(emulator, paper: str) -> None:
    _, _, control = emulator
    if paper == "ok":
        control.ok({"op": "paper", "state": "out"})
        assert control.state()["printer"]["paper"] == "out"
    reply = control.ok({"op": "paper", "state": paper})
    assert reply["paper"] == paper
    assert control.state()["printer"]["paper"] == paper


def test_control_cover(emulator) -> None:
    _, _, control = emulator
    assert control.ok({"op": "cover", "open": True})["cover_open"] is True
    assert control.state()["printer"]["cover_open"] is True
    control.ok({"op": "cover", "open": False})
    assert control.state()["printer"]["cover_open"] is False


def test_control_ofd(emulator) -> None:
    _, _, control = emulator
    reply = control.ok({"op": "ofd", "online": True})
    assert reply["online"] is True and reply["unsent"] == 0
    assert control.state()["ofd_online"] is True
    control.ok({"op": "ofd", "online": False})
    assert control.state()["ofd_online"] is False


def test_control_clock_set_and_advance(emulator) -> None:
    _, _, control = emulator
    fn_before = control.state()["clock"]["fn_seconds"]
    reply = control.ok({"op": "clock", "set": "2020-12-31T23:50:00"})
    assert reply["now"] == "2020-12-31T23:50:00"
    state = control.state()
    assert state["clock"]["rtc"] == "2020-12-31T23:50:00"
    # "also moves the ФН timer": by the same 37 h 50 min
    moved = (datetime(2020, 12, 31, 23, 50) - datetime(2020, 12, 30, 10, 0)).total_seconds()
    assert state["clock"]["fn_seconds"] == pytest.approx(fn_before + moved, abs=1)

    reply = control.ok({"op": "clock", "advance": 3600})
    assert reply["now"] == "2021-01-01T00:50:00"
    state = control.state()
    assert state["clock"]["rtc"] == "2021-01-01T00:50:00"
    assert state["clock"]["fn_seconds"] == pytest.approx(fn_before + moved + 3600, abs=1)

    # a bare {"op": "clock"} reads the clock without moving it
    assert control.ok({"op": "clock"})["now"] == "2021-01-01T00:50:00"


def test_control_power(emulator) -> None:
    _, port, control = emulator
    assert control.ok({"op": "power", "action": "off"})["powered"] is False
    assert control.state()["powered"] is False
    assert enq(port) == b""  # a powered-off register answers nothing
    assert control.ok({"op": "power", "action": "on"})["powered"] is True
    state = control.state()
    assert state["powered"] is True and state["initialised"] is False
    assert enq(port) == b"\x06"

    events_before = [e["event"] for e in control.ok({"op": "journal"})["journal"]]
    assert control.ok({"op": "power", "action": "cycle"})["powered"] is True
    events = [e["event"] for e in control.ok({"op": "journal"})["journal"]]
    assert events[len(events_before):] == ["power off", "power on"]
    assert control.state()["powered"] is True


def test_control_firmware(emulator) -> None:
    _, _, control = emulator
    assert control.state()["firmware"] == "2.26.0"
    assert control.ok({"op": "firmware", "version": "2.25.0"})["firmware"] == "2.25.0"
    assert control.state()["firmware"] == "2.25.0"


def test_control_defects(emulator) -> None:
    _, _, control = emulator
    reply = control.ok({"op": "defects", "enable": ["ignore_24h_rule"]})
    assert reply["defects"] == ["ignore_24h_rule"]
    assert sorted(reply["known"]) == list(KNOWN_DEFECTS)
    assert "ignore_24h_rule" in KNOWN_DEFECTS
    assert control.state()["defects"] == ["ignore_24h_rule"]
    control.ok({"op": "defects", "disable": ["ignore_24h_rule"]})
    assert control.state()["defects"] == []


def test_control_journal_and_tape(emulator) -> None:
    _, _, control = emulator
    journal = control.ok({"op": "journal"})["journal"]
    assert isinstance(journal, list) and journal
    assert all({"at", "event", "detail"} <= set(entry) for entry in journal)
    control.ok({"op": "paper", "state": "near_end"})
    last = control.ok({"op": "journal"})["journal"][-1]
    assert last["event"] == "paper" and last["detail"] == "near_end"
    assert last["at"] == START_CLOCK  # journal time is device (virtual) time
    tape = control.ok({"op": "tape"})["tape"]
    assert tape == []  # nothing printed yet (the wire sale flow is in test_pirit_blackbox.py)


def test_control_lists_its_ops(emulator) -> None:
    _, _, control = emulator
    ops = set(control.ok({"op": "ops"})["ops"])
    assert {"state", "paper", "cover", "ofd", "clock", "power", "firmware", "defects", "journal", "tape"} <= ops


BAD_REQUESTS: list[tuple[str, bytes]] = [
    ("unknown op", b'{"op": "explode"}\n'),
    ("no op", b'{"paper": "out"}\n'),
    ("paper wet", b'{"op": "paper", "state": "wet"}\n'),
    ("paper missing state", b'{"op": "paper"}\n'),
    ("cover not a bool", b'{"op": "cover", "open": "yes"}\n'),
    ("ofd not a bool", b'{"op": "ofd", "online": 1}\n'),
    ("clock set tomorrow", b'{"op": "clock", "set": "tomorrow"}\n'),
    ("clock set with zone", b'{"op": "clock", "set": "2020-12-31T23:50:00+03:00"}\n'),
    ("clock advance -5", b'{"op": "clock", "advance": -5}\n'),
    ("clock advance text", b'{"op": "clock", "advance": "3600"}\n'),
    ("clock advance bool", b'{"op": "clock", "advance": true}\n'),
    ("clock bad key", b'{"op": "clock", "jump": 5}\n'),
    ("power reboot", b'{"op": "power", "action": "reboot"}\n'),
    ("firmware not a string", b'{"op": "firmware", "version": 2.25}\n'),
    ("firmware not a version", b'{"op": "firmware", "version": "two"}\n'),
    ("defects unknown", b'{"op": "defects", "enable": ["nosuch"]}\n'),
    ("defects not a list", b'{"op": "defects", "enable": "ignore_24h_rule"}\n'),
    ("bad JSON", b'{"op": "state"\n'),
    ("not JSON at all", b"paper out\n"),
    ("JSON array", b'["state"]\n'),
    ("JSON string", b'"state"\n'),
    ("not UTF-8", b'{"op": "\xff\xfe"}\n'),
]


@pytest.mark.parametrize("request_line", [line for _, line in BAD_REQUESTS], ids=[name for name, _ in BAD_REQUESTS])
def test_control_bad_request_gets_ok_false_and_the_connection_stays_usable(emulator, request_line: bytes) -> None:
    _, _, control = emulator
    before = control.state()
    reply = control.send_raw(request_line)
    assert reply["ok"] is False
    assert isinstance(reply["error"], str) and reply["error"].strip()
    after = control.state()  # same connection still answers
    # a refused request changes nothing
    for key in ("printer", "clock", "powered", "firmware", "defects", "ofd_online"):
        assert after[key] == before[key], key


def test_control_error_messages_say_what_is_wrong(emulator) -> None:
    _, _, control = emulator
    assert "explode" in control({"op": "explode"})["error"]
    assert "wet" in control({"op": "paper", "state": "wet"})["error"]
    assert "tomorrow" in control({"op": "clock", "set": "tomorrow"})["error"]
    assert "nosuch" in control({"op": "defects", "enable": ["nosuch"]})["error"]
    assert "JSON" in control.send_raw(b"{oops\n")["error"]


def test_control_many_requests_on_one_connection_and_blank_lines(emulator) -> None:
    _, _, control = emulator
    # two requests in one segment, a blank line in between (blank lines get no reply)
    control.sock.sendall(b'{"op": "paper", "state": "out"}\n\n{"op": "state"}\n')
    first = control.read_reply()
    second = control.read_reply()
    assert first == {"ok": True, "paper": "out"}
    assert second["ok"] is True and second["state"]["printer"]["paper"] == "out"


def test_control_two_clients_see_the_same_device(emulator) -> None:
    _, _, control = emulator
    other = Control(control.sock.getpeername()[1])
    try:
        other.ok({"op": "cover", "open": True})
        assert control.state()["printer"]["cover_open"] is True
    finally:
        other.close()


# ================================================================================ --state FILE


def test_state_file_is_written_on_sigterm(spawn, tmp_path: Path) -> None:
    state_file = tmp_path / "kf-state.json"
    proc, _, control_port = start_emulator(spawn, "--state", str(state_file))
    assert control_port is not None
    assert not state_file.exists()  # only on exit
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


# ================================================================================ probe


@pytest.fixture
def device_port(spawn) -> int:
    _, port, _ = start_emulator(spawn, control=False)
    return port


def test_probe_prints_info(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "kf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^info:$", out, re.M)
    assert re.search(r"^\s+serial: 0497\d{6}$", out, re.M)
    assert re.search(r"^\s+firmware: 2\.26\.0$", out, re.M)
    for section in ("status:", "fn:", "ofd_queue:"):
        assert re.search(rf"^{section}$", out, re.M), section
    assert "raw" not in out
    assert result.stderr == ""


def test_probe_json(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "kf", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["info"]["serial"].startswith("0497")
    assert data["info"]["model"] == "kf"
    assert data["info"]["model_code"] == 9
    assert data["info"]["firmware"] == "2.26.0"
    assert data["fn"]["serial"] and data["fn"]["phase"] == 3
    assert data["ofd_queue"]["count"] == 0
    assert data["status"]["shift"] == "closed"
    # frozen emulator clock; probe did "start of work" with the device's own time (R3.4)
    assert data["clock"].startswith("2020-12-30T10:0")


def test_probe_wrong_model_is_a_usage_error(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "dkf", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "dkf" in line
    assert result.stdout == ""


def test_probe_unknown_model(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "nosuch", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "nosuch" in line and "kf" in line


def test_probe_without_model_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("probe", "socket://127.0.0.1:1", cwd=tmp_path)
    assert_clean_failure(result, 2)


def test_probe_bad_url_scheme(tmp_path: Path) -> None:
    result = run_cli("probe", "ftp://127.0.0.1:1", "--model", "kf", cwd=tmp_path)
    assert "ftp" in assert_clean_failure(result, 2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_unreachable_device(tmp_path: Path) -> None:
    port = _closed_port()
    started = time.monotonic()
    result = run_cli("probe", f"socket://127.0.0.1:{port}", "--model", "kf", "--timeout", "2", cwd=tmp_path)
    elapsed = time.monotonic() - started
    line = assert_clean_failure(result, 1)
    assert str(port) in line
    assert elapsed < 2 + 8, elapsed  # the link timeout plus process start-up, not minutes


class GarbageDevice:
    """A TCP "device" that answers every read with bytes that are not a Pirit frame."""

    def __init__(self, payload: Callable[[], bytes]) -> None:
        self._payload = payload
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self.reads = 0
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except (socket.timeout, TimeoutError):
                    continue
                except OSError:
                    return
                if not data:
                    return
                self.reads += 1
                try:
                    conn.sendall(self._payload())
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=IO_TIMEOUT)


def _random_noise(seed: int) -> Callable[[], bytes]:
    """Seeded random bytes without STX (a stray STX starts a "frame": covered separately below)."""
    rng = random.Random(seed)
    return lambda: bytes(rng.choice([b for b in range(256) if b != 0x02]) for _ in range(64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_device_answering_garbage(tmp_path: Path, seed: int) -> None:
    device = GarbageDevice(_random_noise(seed))
    try:
        started = time.monotonic()
        result = run_cli("probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", "2", cwd=tmp_path)
        elapsed = time.monotonic() - started
    finally:
        device.close()
    line = assert_clean_failure(result, 1)
    assert "garbage" in line
    assert device.reads >= 1
    assert elapsed < 2 + 8, elapsed


def test_probe_device_answering_an_unterminated_frame_reports_garbage(tmp_path: Path) -> None:
    device = GarbageDevice(lambda: b"\x02" + b"\xaa" * 50)
    try:
        result = run_cli("probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", "1", cwd=tmp_path)
    finally:
        device.close()
    # regression (fixed in 0fdb950): a device that answered an unterminated frame is not "silent"
    line = assert_clean_failure(result, 1)
    assert "no answer" not in line and "garbage" in line


def test_probe_unterminated_frame_message_dumps_the_bytes_the_device_sent(tmp_path: Path) -> None:
    device = GarbageDevice(lambda: b"\x02" + b"\xaa" * 50)
    try:
        result = run_cli("probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", "1", cwd=tmp_path)
    finally:
        device.close()
    line = assert_clean_failure(result, 1)
    assert "02 aa aa" in line, line


def test_probe_device_answering_a_frame_with_a_bad_crc(tmp_path: Path) -> None:
    # STX '!' "00" "00" ETX "ZZ": framed, but the CRC is not even hex
    device = GarbageDevice(lambda: b"\x02!0000\x03ZZ")
    try:
        result = run_cli("probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", "2", cwd=tmp_path)
    finally:
        device.close()
    line = assert_clean_failure(result, 1)
    assert "CRC" in line


def test_probe_timeout_must_be_positive(tmp_path: Path) -> None:
    result = run_cli("probe", "socket://127.0.0.1:1", "--model", "kf", "--timeout", "0", cwd=tmp_path)
    assert "timeout" in assert_clean_failure(result, 2)


# ================================================================================ usage errors


def test_no_arguments_prints_usage_and_exits_2(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: kkt-hil" in (result.stdout + result.stderr)
    for command in ("emulate", "hub", "probe", "devices", "run", "report"):
        assert command in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command(tmp_path: Path) -> None:
    result = run_cli("frobnicate", cwd=tmp_path)
    assert "frobnicate" in assert_clean_failure(result, 2)


def test_emulate_unknown_model(tmp_path: Path) -> None:
    result = run_cli("emulate", "nosuch", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "nosuch" in line and "kf" in line
    assert result.stdout == ""


def test_emulate_unknown_defect_names_the_known_ones(tmp_path: Path) -> None:
    result = run_cli("emulate", "kf", "--defect", "nosuch", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "nosuch" in line
    for name in KNOWN_DEFECTS:
        assert name in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--firmware", "two.six"],
        ["--fn", "fn99"],
        ["--clock", "tomorrow"],
        ["--set", "nokey"],
        ["--set", "no_such_setting=1"],
        ["--listen", "udp://127.0.0.1:0"],
        ["--listen", "tcp://127.0.0.1:99999"],
        ["--listen", "tcp://127.0.0.1:0", "--pty"],
    ],
    ids=["firmware", "fn", "clock", "set-no-eq", "set-unknown", "udp", "bad-port", "listen-and-pty"],
)
def test_emulate_bad_options(tmp_path: Path, args: list[str]) -> None:
    result = run_cli("emulate", "kf", *args, cwd=tmp_path)
    assert_clean_failure(result, 2)
    assert result.stdout == ""


# A wrapper that records every bind() the CLI makes, then runs it in-process (exit code kept).
BIND_RECORDER = """
import socket, sys
log = open(sys.argv[1], "a")
orig = socket.socket.bind
def bind(self, address):
    log.write(repr(address) + "\\n"); log.flush()
    return orig(self, address)
socket.socket.bind = bind
from harness.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_recording_binds(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "binds.txt"
    log.write_text("")
    result = subprocess.run(
        [sys.executable, "-c", BIND_RECORDER, str(log), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    return result, log.read_text().splitlines()


def test_emulate_refuses_non_loopback_listen_and_binds_nothing(tmp_path: Path) -> None:
    result, binds = _run_recording_binds(tmp_path, "emulate", "kf", "--listen", "tcp://10.0.0.1:0")
    line = assert_clean_failure(result, 2)
    assert "10.0.0.1" in line and "loopback" in line
    assert result.stdout == ""
    assert binds == []


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_emulate_refuses_other_non_loopback_hosts(tmp_path: Path, host: str) -> None:
    result, binds = _run_recording_binds(tmp_path, "emulate", "kf", "--listen", f"tcp://{host}:0")
    assert_clean_failure(result, 2)
    assert binds == []


def test_emulate_refuses_non_loopback_control_and_binds_only_loopback(tmp_path: Path) -> None:
    result, binds = _run_recording_binds(
        tmp_path, "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://10.0.0.1:0"
    )
    assert "loopback" in assert_clean_failure(result, 2)
    assert all("127.0.0.1" in b for b in binds), binds  # now refused before anything binds


def test_hub_refuses_non_loopback_listen_and_binds_nothing(tmp_path: Path) -> None:
    result, binds = _run_recording_binds(tmp_path, "hub", "--listen", "tcp://10.0.0.1:0")
    assert "10.0.0.1" in assert_clean_failure(result, 2)
    assert binds == []


def test_bind_recorder_sees_binds(tmp_path: Path) -> None:
    """Guard for the tests above: the wrapper really records a bind (here: a probe port check)."""
    code = BIND_RECORDER.replace("from harness.cli import main\nsys.exit(main(sys.argv[2:]))", "")
    code += "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()\n"
    log = tmp_path / "binds.txt"
    subprocess.run([sys.executable, "-c", code, str(log)], check=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert "127.0.0.1" in log.read_text()
