"""Fixtures shared by the stand's own tests: a dead control channel; ``spawn`` for ``kkt-hil`` as a
subprocess (tests/test_cli_*.py); ``run`` and ``served_kf`` for harness.plugin through pytester
(tests/test_plugin_*.py); ``stand`` for the Pirit black box (tests/test_pirit_blackbox_*.py).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.control import ControlServer
from devices.emulator.serve import TcpServer
from devices.pirit.emulator import PiritFrontEnd

from .cli_helpers import Proc, start_emulator
from .pirit_blackbox_client import IO_TIMEOUT, START, Control, PiritLink, Stand
from .plugin_helpers import INNER_TIMEOUT, RUN_TIMEOUT, AllureResults, Run, ServedDevice
from .tcp_peers import LoopbackPeer


@pytest.fixture(autouse=True, scope="session")
def private_lease_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stand's tests lease registers in a folder of their own (inherited by every kkt-hil and
    pytest they start), never in the host's shared /tmp/kkt-hil-leases."""
    folder = tmp_path_factory.mktemp("leases")
    before = os.environ.get("KKT_HIL_LEASE_DIR")
    os.environ["KKT_HIL_LEASE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("KKT_HIL_LEASE_DIR", None)
    else:
        os.environ["KKT_HIL_LEASE_DIR"] = before


@pytest.fixture
def dead_control_url() -> Iterator[str]:
    """A loopback listener that accepts and hangs up at once: a control channel whose emulator died."""
    with LoopbackPeer() as peer:
        yield f"tcp://127.0.0.1:{peer.port}"


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


@pytest.fixture
def stand(spawn: Callable[..., Proc]) -> Iterator[Stand]:
    proc, port, control_port = start_emulator(spawn, clock=START.isoformat())
    assert control_port is not None
    link = control = None
    try:
        link = PiritLink(port)
        control = Control(control_port)
        yield Stand(link, control, port)
    finally:
        for closer in (link, control):
            if closer is not None:
                closer.close()
        if proc.popen.poll() is None:  # a clean SIGTERM first; ``spawn`` kills what is left
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
