"""Helpers for ``kkt-hil`` as a subprocess (tests/test_cli_*.py): the command-line contract of
DESIGN.md ("Command line").

Every process is started through the ``spawn`` fixture (tests/conftest.py) and killed in its
teardown; every read from a pipe, socket or pty has a deadline; nothing binds or connects outside
127.0.0.1 (a "bad" non-loopback address is only ever handed to the CLI to check that it refuses
it, and a wrapper records every ``bind`` to prove nothing was bound).  No ``time.sleep``: the
emulator runs with a frozen virtual clock moved through the control channel.
"""

from __future__ import annotations

import json
import os
import re
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
            match = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)
            assert match is not None, status
            caught = int(match.group(1), 16)
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


def start_emulator(
    spawn: Callable[..., Proc], *extra: str, control: bool = True, model: str = "kf", clock: str | None = START_CLOCK
) -> tuple[Proc, int, int | None]:
    """``kkt-hil emulate MODEL`` on loopback TCP with a frozen clock (``clock=None``: no ``--clock``,
    e.g. to resume from ``--state``); the process, its wire port and its control port (or None)."""
    frozen = ["--frozen-clock", *(["--clock", clock] if clock is not None else [])]
    args = ["emulate", model, "--listen", "tcp://127.0.0.1:0", *frozen, *extra]
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


def run_recording_binds(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``kkt-hil ARGS`` with every bind() it makes recorded: (the result, the addresses)."""
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
