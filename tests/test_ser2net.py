"""Registers on other lab hosts through a real ser2net (issue 13): ``kkt-hil probe`` of an
out-of-process emulator's pty exported as RFC 2217 and as raw TCP, the whole scenario suite
through ``emulator:all?transport=rfc2217`` / ``transport=ser2net`` with the outcomes of the direct
pty, RFC 2217 line settings reaching the emulator's pty and line-rate pacing, the write deadline
of the RFC 2217 client, its waits on the server's answers (no sleeps) and every byte value both
ways, the exports a process keeps for its emulators (one user at a time, stopped at exit and
when killed), any pyserial URL scheme, and one line when ser2net is missing or refuses.

Everything listens on and connects to 127.0.0.1.  ser2net is /usr/sbin/ser2net (Debian's package,
installed by .ci/run); missing, these tests fail.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import serial

import harness.ser2net
from devices.emulator.build import Emulator
from devices.emulator.serve import Echo, LineSettings, PtyServer, TcpServer
from harness import open_kkt
from harness.errors import HarnessError, LinkDisconnected, UsageError
from harness.safety import Emulated
from harness.ser2net import start_ser2net
from harness.transport import check_url, open_transport, url_schemes
from harness.urlhandler.protocol_rfc2217 import Serial as Rfc2217Serial

from .cli_helpers import assert_clean_failure, run_cli
from .scenario_runs import run_scenarios

SETTLE = 5.0  # seconds: a deadline for what ser2net does after it acknowledged (never waited out)


# ====================================================================== probe, out of process


@pytest.fixture
def emulator_pty(spawn) -> str:
    """An out-of-process ``kkt-hil emulate kf --pty``: its pty path."""
    proc = spawn("emulate", "kf", "--pty")
    match = re.fullmatch(r"listening (/dev/pts/\d+)", proc.readline())
    assert match
    return match.group(1)


@pytest.mark.parametrize("mode", ["rfc2217", "raw"])
def test_probe_through_ser2net(emulator_pty: str, tmp_path: Path, mode: harness.ser2net.Mode) -> None:
    with start_ser2net(emulator_pty, mode=mode) as exported:
        scheme = "rfc2217" if mode == "rfc2217" else "socket"
        assert re.fullmatch(rf"{scheme}://127\.0\.0\.1:\d+(\?ign_set_control)?", exported.url), exported.url
        result = run_cli("probe", exported.url, "--model", "kf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+serial: 0497\d{6}$", result.stdout, re.M), result.stdout
    for section in ("info:", "status:", "fn:", "ofd_queue:"):
        assert re.search(rf"^{section}$", result.stdout, re.M), section
    assert result.stderr == ""


def test_rfc2217_to_a_pty_without_ign_set_control_says_what_to_add(emulator_pty: str, tmp_path: Path) -> None:
    """A pty has no DTR/RTS: ser2net answers nothing, pyserial gives up after its ?timeout=."""
    with start_ser2net(emulator_pty) as exported:
        url = f"rfc2217://127.0.0.1:{exported.port}?timeout=0.5"
        line = assert_clean_failure(run_cli("probe", url, "--model", "kf", "--timeout", "2", cwd=tmp_path), 1)
    assert "DTR/RTS" in line and "?ign_set_control" in line, line


# ====================================================================== the scenario suite


@pytest.fixture(scope="module")
def direct_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The suite on every emulator's pty, as the driver opens it directly."""
    return _suite("emulator:all", tmp_path_factory.mktemp("direct"))


def _suite(spec: str, where: Path) -> dict[str, str]:
    started = time.monotonic()
    outcomes = run_scenarios(["-o", "junit_family=xunit2", f"--kkt={spec}"], where, timeout=900)
    passed = sum(1 for v in outcomes.values() if v == "passed")
    print(f"{spec}: {len(outcomes)} scenarios ({passed} passed) in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return outcomes


@pytest.mark.timeout(300)  # the whole suite twice (direct, then through ser2net): 10-15 s each on 2 busy cores
@pytest.mark.parametrize("transport", ["rfc2217", "ser2net"])
def test_scenario_suite_through_a_real_ser2net(transport: str, direct_outcomes: dict[str, str], tmp_path: Path) -> None:
    through = _suite(f"emulator:all?transport={transport}", tmp_path)
    assert direct_outcomes and "failed" not in direct_outcomes.values(), direct_outcomes
    assert through == direct_outcomes, {
        k: (direct_outcomes.get(k), v) for k, v in through.items() if direct_outcomes.get(k) != v
    }


# ====================================================================== line settings and pacing


def _pty_server(handle_emulator: object) -> PtyServer:
    server = cast(Emulator, handle_emulator).servers[-1]
    assert isinstance(server, PtyServer)
    return server


def _until(check, what: str) -> None:
    deadline = time.monotonic() + SETTLE
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_rfc2217_line_settings_reach_the_emulators_pty() -> None:
    with open_kkt("emulator:kf?transport=rfc2217") as handle:
        pty = _pty_server(handle.emulator)
        assert pty.line_settings() == LineSettings(57600, 8, "N", 1)  # the model's line, set by the client
        port = cast(serial.Serial, handle.link.transport.port)
        port.baudrate = 115200
        _until(lambda: pty.line_settings().baudrate == 115200, f"115200 never reached the pty: {pty.line_settings()}")
        port.stopbits = serial.STOPBITS_TWO
        _until(lambda: pty.line_settings().stopbits == 2, f"2 stop bits never reached the pty: {pty.line_settings()}")
        assert pty.line_settings().bits_per_byte == 11
        handle.kkt.status()  # the register still answers at the new line


class Answers:
    """A front-end answering every byte it gets with ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self.size = size

    def feed(self, data: bytes) -> bytes:
        return b"\x55" * self.size * len(data)

    def pending(self) -> bool:
        return False

    def reset(self) -> None:
        pass


@pytest.fixture
def paced() -> Iterator[PtyServer]:
    server = PtyServer(lambda: Answers(240), pace="line")
    try:
        yield server
    finally:
        server.close()


def _exchange(port: serial.SerialBase, size: int) -> float:
    """Seconds from a one-byte request to the last of ``size`` answer bytes (deadlines: SETTLE)."""
    port.timeout = SETTLE
    started = time.monotonic()
    port.write(b"?")
    got = b""
    while len(got) < size:
        chunk = port.read(size - len(got))
        assert chunk, f"answer stopped after {len(got)} of {size} bytes"
        got += chunk
    return time.monotonic() - started


def test_pace_line_keeps_to_the_line_rate_set_over_rfc2217(paced: PtyServer) -> None:
    with start_ser2net(paced.path) as exported:
        port = serial.serial_for_url(exported.url, baudrate=9600, stopbits=serial.STOPBITS_TWO, write_timeout=SETTLE)
        try:
            _until(lambda: paced.line_settings() == LineSettings(9600, 8, "N", 2), str(paced.line_settings()))
            elapsed = _exchange(port, 240)
        finally:
            port.close()
    line_time = 240 * 11 / 9600  # start + 8 data + 2 stop bits a byte: 0.275 s
    assert elapsed >= line_time, (elapsed, line_time)


def test_pace_line_follows_the_ptys_own_speed_and_is_off_by_default(paced: PtyServer) -> None:
    unpaced = PtyServer(lambda: Answers(240))
    try:
        timings = {}
        for name, server in (("paced", paced), ("unpaced", unpaced)):
            port = serial.Serial(server.path, baudrate=4800, timeout=SETTLE, write_timeout=SETTLE)
            try:
                timings[name] = _exchange(port, 240)
            finally:
                port.close()
    finally:
        unpaced.close()
    line_time = 240 * 10 / 4800  # 8N1: 0.5 s
    assert timings["paced"] >= line_time, timings
    assert timings["unpaced"] < line_time / 2, timings


def test_close_does_not_wait_for_a_paced_answer() -> None:
    server = PtyServer(lambda: Answers(100_000), pace="line")
    fd = os.open(server.path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"?")  # 100 kB at 57600 baud: 17 s of answer
        _until(lambda: os.read(fd, 1) != b"", "the paced answer never started")
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 1.0
    finally:
        os.close(fd)


def test_pace_line_through_a_spec() -> None:
    """``emulator:kf?transport=rfc2217&pace=line``: the register's answers keep to its 57600 8N1."""
    with open_kkt("emulator:kf?transport=rfc2217&pace=line") as handle:
        assert cast(Emulator, handle.emulator).pace == "line"
        before = len(handle.trace.records)
        started = time.monotonic()
        for _ in range(5):
            handle.kkt.status()
        elapsed = time.monotonic() - started
        answered = sum(len(r.raw) for r in handle.trace.records[before:] if r.direction == "RX")
    assert answered > 0
    assert elapsed >= answered * 10 / 57600, (elapsed, answered)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("emulator:kf?transport=bogus", "transport is pty, tcp, rfc2217 or ser2net, not 'bogus'"),
        ("emulator:kf?pace=fast", "not 'fast'"),
        ("emulator:kf?transport=tcp&pace=line", "pace=line needs a pty"),
    ],
)
def test_bad_transport_or_pace_is_one_line(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as caught, open_kkt(spec):
        pass
    assert message in str(caught.value) and "\n" not in str(caught.value), caught.value


# ====================================================================== the RFC 2217 write deadline


def test_rfc2217_write_to_a_device_that_stops_reading_fails_within_the_deadline() -> None:
    """Nobody reads the pty: ser2net stops reading the socket, the client's sends block, and the
    link timeout (1 s) ends each one: LinkDisconnected, never a hang."""
    master, slave = os.openpty()
    try:
        with start_ser2net(os.ttyname(slave)) as exported:
            transport = open_transport(exported.url, timeout=1.0, policy=Emulated())
            try:
                chunk = b"\x00" * (1 << 20)
                deadline = time.monotonic() + 60  # loopback buffers hold a few MB
                with pytest.raises(LinkDisconnected, match="timed out"):
                    while time.monotonic() < deadline:
                        started = time.monotonic()
                        try:
                            transport.write(chunk)
                        finally:
                            assert time.monotonic() - started < 1.0 + SETTLE
            finally:
                transport.close()
    finally:
        os.close(master)
        os.close(slave)


# ====================================================================== the clients' waits and data path


@pytest.fixture
def echo_pty() -> Iterator[PtyServer]:
    server = PtyServer(Echo)
    try:
        yield server
    finally:
        server.close()


def _no_sleeping(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType) -> list[float]:
    """``module``'s ``time.sleep`` records its calls instead of sleeping (the rest of ``time`` as is)."""
    slept: list[float] = []
    clock = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    clock.sleep = slept.append
    monkeypatch.setattr(module, "time", clock)
    return slept


def _echoed(transport, data: bytes) -> bytes:
    transport.write(data)
    got = b""
    deadline = time.monotonic() + SETTLE
    while len(got) < len(data):
        got += transport.read(deadline)
    return got


@pytest.mark.parametrize("mode", ["rfc2217", "raw"])
def test_clients_wait_on_answers_and_close_without_pausing(
    echo_pty: PtyServer, monkeypatch: pytest.MonkeyPatch, mode: harness.ser2net.Mode
) -> None:
    """pyserial's RFC 2217 client polls with 50 ms sleeps while it opens and sleeps 0.3 s on
    close, its socket:// client sleeps 0.3 s on close: the harness's handlers never call them."""
    import serial.rfc2217
    import serial.urlhandler.protocol_socket

    slept = {
        "rfc2217": _no_sleeping(monkeypatch, serial.rfc2217),
        "socket": _no_sleeping(monkeypatch, serial.urlhandler.protocol_socket),
    }
    with start_ser2net(echo_pty.path, mode=mode, chardelay=False, nodelay=True) as exported:
        for _ in range(2):  # a reconnect too
            transport = open_transport(exported.url, timeout=SETTLE, policy=Emulated())
            try:
                assert _echoed(transport, b"kkt") == b"kkt"
            finally:
                transport.close()
    assert slept == {"rfc2217": [], "socket": []}


@pytest.mark.parametrize("mode", ["rfc2217", "raw"])
def test_every_byte_value_crosses_both_ways(echo_pty: PtyServer, mode: harness.ser2net.Mode) -> None:
    """0xFF is telnet's IAC: doubled on the wire both ways by RFC 2217, a plain byte in raw mode."""
    data = bytes(range(256)) * 3 + b"\xff\xff\xff\xfa\xf0\xff"
    with start_ser2net(echo_pty.path, mode=mode, chardelay=False, nodelay=True) as exported:
        transport = open_transport(exported.url, timeout=SETTLE, policy=Emulated())
        try:
            assert _echoed(transport, data) == data
        finally:
            transport.close()


def test_socket_in_waiting_counts_the_bytes_received() -> None:
    """pyserial's socket:// says 1 for "something": the harness's counts them (a reader takes
    an answer in one read, not a byte a read)."""
    server = TcpServer(Echo)
    try:
        port = serial.serial_for_url(server.url, timeout=SETTLE)
        try:
            port.write(b"x" * 50)
            _until(lambda: port.in_waiting == 50, f"in_waiting is {port.in_waiting}, not 50")
            assert port.read(50) == b"x" * 50
        finally:
            port.close()
    finally:
        server.close()


def test_rfc2217_server_gone_is_a_disconnect_not_a_timeout(echo_pty: PtyServer) -> None:
    exported = start_ser2net(echo_pty.path, chardelay=False, nodelay=True)
    transport = open_transport(exported.url, timeout=SETTLE, policy=Emulated())
    try:
        exported.close()
        started = time.monotonic()
        with pytest.raises(LinkDisconnected, match="closed"):
            transport.read(started + SETTLE)
        assert time.monotonic() - started < SETTLE
    finally:
        transport.close()
        exported.close()


def test_rfc2217_close_wakes_a_read_blocked_in_another_thread(echo_pty: PtyServer) -> None:
    import threading

    with start_ser2net(echo_pty.path, chardelay=False, nodelay=True) as exported:
        port = serial.serial_for_url(exported.url, timeout=None, write_timeout=SETTLE)  # reads wait for ever
        assert isinstance(port, Rfc2217Serial)
        outcome: list[BaseException | bytes] = []

        def reader() -> None:
            try:
                outcome.append(port.read(1))
            except BaseException as exc:  # noqa: BLE001 - what the read ended with is the result
                outcome.append(exc)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            _until(lambda: port._receiving.locked(), "the reader never blocked")  # waiting in poll
        finally:
            port.close()
        thread.join(SETTLE)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], serial.SerialException), outcome


# ====================================================================== the exports a process keeps


def _port_of(handle) -> int:
    match = re.match(r"(?:rfc2217|socket)://127\.0\.0\.1:(\d+)", handle.link.transport.url)
    assert match, handle.link.transport.url
    return int(match.group(1))


def _links() -> list[Path]:
    pool = harness.ser2net._pool
    folder = pool._links if pool is not None else None
    return [] if folder is None else [p for p in Path(folder.name).iterdir() if p.is_symlink()]


@pytest.mark.parametrize("transport", ["rfc2217", "ser2net"])
def test_emulators_share_kept_exports_one_at_a_time(transport: str) -> None:
    spec = f"emulator:kf?transport={transport}"
    with open_kkt(spec) as first, open_kkt(spec) as second:
        ports = {_port_of(first), _port_of(second)}
        assert len(ports) == 2  # two open at once: two exports
        first.kkt.status(), second.kkt.status()
        pty = _pty_server(second.emulator).path
        assert [os.readlink(link) for link in _links() if os.readlink(link) == pty] == [pty]
    assert _links() == []  # given back: nothing points at a pty that may be another process's next
    for _ in range(3):
        with open_kkt(spec) as again:
            assert _port_of(again) in ports  # the same ser2nets, each now exporting the new emulator's pty
            again.kkt.status()


_HOLDER = """
import sys
from harness import open_kkt, ser2net
with open_kkt("emulator:kf?transport=rfc2217") as handle:
    handle.kkt.status()
    pool = ser2net._pool
    print(" ".join(str(k.export.process.pid) for k in pool._kept), pool._links.name, flush=True)
    sys.stdin.readline()
"""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"  # a zombie is stopped
    except OSError:
        return True


@pytest.mark.parametrize("ending", ["exits", "is killed"])
def test_kept_exports_stop_when_the_process_ends(ending: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        *pids, links = holder.stdout.readline().split()
        assert pids and not any(_gone(int(pid)) for pid in pids) and Path(links).is_dir()
        if ending == "exits":
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.wait(SETTLE) == 0
        else:
            holder.send_signal(signal.SIGKILL)  # no atexit: the watchdog stops them
            holder.wait(SETTLE)
        _until(lambda: all(_gone(int(pid)) for pid in pids), f"ser2net {pids} still running after the holder {ending}")
        _until(lambda: not Path(links).exists(), f"{links} left behind")
    finally:
        holder.kill()
        holder.wait()


# ====================================================================== URL schemes


def test_an_unknown_scheme_is_one_line_naming_the_available_ones() -> None:
    with pytest.raises(UsageError) as caught:
        check_url("ftp://127.0.0.1:1")
    text = str(caught.value)
    assert "'ftp'" in text and "\n" not in text, text
    for scheme in ("socket://", "rfc2217://", "loop://", "faulty://", "alt://"):
        assert scheme in text, text


def test_cli_unknown_scheme(tmp_path: Path) -> None:
    line = assert_clean_failure(run_cli("probe", "bogus://x", "--model", "kf", cwd=tmp_path), 2)
    assert "'bogus'" in line and "rfc2217://" in line, line


def test_pyserial_schemes_beyond_the_old_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_url("alt:///dev/ttyUSB0?class=PosixPollSerial")
    package = tmp_path / "kkt_user_handlers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "protocol_echo.py").write_text(
        "from serial.urlhandler import protocol_loop\n\n\n"
        "class Serial(protocol_loop.Serial):  # a user's handler: loop:// under another name\n"
        "    def from_url(self, url):\n"
        "        return super().from_url(url.replace('echo://', 'loop://', 1))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(serial, "protocol_handler_packages", [*serial.protocol_handler_packages, package.name])
    assert "echo" in url_schemes()
    check_url("echo://")
    transport = open_transport("echo://", timeout=1.0, policy=Emulated())
    try:
        transport.write(b"\x05")
        assert transport.read(time.monotonic() + 1.0) == b"\x05"
    finally:
        transport.close()


# ====================================================================== ser2net missing or refusing


def test_ser2net_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness.ser2net, "EXECUTABLE", "no-such-ser2net")
    with pytest.raises(HarnessError) as caught, open_kkt("emulator:kf?transport=rfc2217"):
        pass
    text = str(caught.value)
    assert "ser2net is not installed" in text and "\n" not in text, text


def test_ser2net_missing_from_path_and_sbin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(harness.ser2net, "SBIN_DIRS", (str(tmp_path),))
    with pytest.raises(HarnessError, match="ser2net is not installed"):
        harness.ser2net.find_ser2net()


def test_ser2net_that_cannot_listen_says_why_in_one_line(paced: PtyServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(HarnessError) as caught:
            start_ser2net(paced.path, port=port)
    text = str(caught.value)
    assert "Address already in use" in text and "\n" not in text and "mdns" not in text, text


def test_ser2net_listens_on_loopback_only_unless_asked(paced: PtyServer) -> None:
    with pytest.raises(UsageError, match="loopback"):
        start_ser2net(paced.path, host="0.0.0.0")
