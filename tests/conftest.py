"""Fixtures shared by the stand's own tests: a dead control channel; ``spawn`` for ``kkt-hil`` as a
subprocess (tests/test_cli_*.py); ``run`` and ``served_kf`` for harness.plugin through pytester
(tests/test_plugin_*.py); ``stand`` for the Pirit black box (tests/test_pirit_blackbox_*.py).
"""

from __future__ import annotations

import itertools
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.control import ControlServer
from devices.emulator.serve import TcpServer
from devices.pirit.emulator import PiritFrontEnd

from .cli_helpers import Proc, kkt_hil
from .pirit_blackbox_client import IO_TIMEOUT, LINE_TIMEOUT, START, Control, PiritLink, Stand
from .plugin_helpers import INNER_TIMEOUT, RUN_TIMEOUT, AllureResults, Run, ServedDevice


@pytest.fixture
def dead_control_url() -> Iterator[str]:
    """A loopback listener that accepts and hangs up at once: a control channel whose emulator died."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # poll the stop flag: close() does not wake a blocked accept()
    stop = threading.Event()

    def accept_and_close() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


# ------------------------------------------------------------------ kkt-hil as a subprocess


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


# ------------------------------------------------------------------ harness.plugin through pytester

_runs = itertools.count()


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """``run(*args)``: the inner pytest in a subprocess, with a fresh ``--alluredir``."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("KKT_HIL_BUILD", raising=False)

    def inner(*args: str) -> Run:
        alluredir = pytester.path / f"allure-results-{next(_runs)}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-rA", INNER_TIMEOUT, f"--alluredir={alluredir}", *args, timeout=RUN_TIMEOUT
        )
        return Run(result, AllureResults.load(alluredir))

    return inner


@pytest.fixture
def served_kf() -> Iterator[ServedDevice]:
    """A Касса Ф emulator on loopback TCP (the wire protocol) plus its control channel."""
    emulator = build_emulator("kf")
    wire = TcpServer(lambda: PiritFrontEnd(emulator.core), "tcp://127.0.0.1:0")
    control = ControlServer(emulator.handler, "tcp://127.0.0.1:0")
    try:
        yield ServedDevice(emulator, wire.url, control.url)
    finally:
        control.close()
        wire.close()


# ------------------------------------------------------------------ the Pirit black box


def _readline(proc: subprocess.Popen[bytes], selector: selectors.BaseSelector, buffer: bytearray) -> str:
    deadline = time.monotonic() + LINE_TIMEOUT
    assert proc.stdout is not None
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"emulator printed no line within {LINE_TIMEOUT} s: {bytes(buffer)!r}"
        if selector.select(remaining):
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"emulator exited early with {proc.poll()}"
            buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode("utf-8")


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    proc = subprocess.Popen(
        [
            *kkt_hil(),
            "emulate",
            "kf",
            "--listen",
            "tcp://127.0.0.1:0",
            "--control",
            "tcp://127.0.0.1:0",
            "--frozen-clock",
            "--clock",
            START.isoformat(),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    selector = selectors.DefaultSelector()
    link = control = None
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        selector.register(proc.stdout, selectors.EVENT_READ)
        buffer = bytearray()
        listening = re.fullmatch(r"listening socket://127\.0\.0\.1:(\d+)", _readline(proc, selector, buffer))
        controlling = re.fullmatch(r"control tcp://127\.0\.0\.1:(\d+)", _readline(proc, selector, buffer))
        assert listening and controlling
        port = int(listening.group(1))
        link = PiritLink(port)
        control = Control(int(controlling.group(1)))
        yield Stand(link, control, port)
    finally:
        for closer in (link, control):
            if closer is not None:
                closer.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(IO_TIMEOUT)
        selector.close()
        if proc.stdout:
            proc.stdout.close()
