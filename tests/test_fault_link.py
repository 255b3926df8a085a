"""harness.faults: the seeded fault schedule, the ``faulty://`` pyserial URL handler, the TCP fault
proxy, ``faults=`` in ``--kkt`` specs, and the faults in the wire trace and the Allure report.

Loopback only (``loop://``, 127.0.0.1 peers); every read has a deadline; nothing sleeps to pass
time (a delay without ``hold`` costs no wall-clock time by design).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from devices.pirit.protocol import encode_request
from harness import open_kkt
from harness.errors import KktError, UsageError
from harness.faults import Fault, Injector, Placement, Schedule, faulty_url, parse_faulty_url, parse_schedule
from harness.faults.protocol_faulty import Serial as FaultySerial
from harness.faults.proxy import FaultProxy, _makes_destructive
from harness.spec import parse_spec
from harness.transport import check_url

from .cli_helpers import Proc, assert_clean_failure, run_cli
from .plugin_helpers import FAULTS, TRACE, Run, trace_rows
from .tcp_peers import AnsweringPeer, LoopbackPeer

pytest_plugins = ["pytester"]

READ_TIMEOUT = 2.0  # every read's deadline; the tests never wait it out unless a byte is lost
STREAM = bytes(range(256)) * 4


def port(url: str, timeout: float = READ_TIMEOUT) -> FaultySerial:
    """pyserial's own ``serial_for_url`` finds the handler (harness.faults registered it)."""
    link = serial.serial_for_url(url, timeout=timeout)
    assert isinstance(link, FaultySerial)
    return link


def loop(schedule: str) -> FaultySerial:
    return port(faulty_url("loop://", parse_schedule(schedule)))


def echo(link: FaultySerial, data: bytes, size: int | None = None) -> bytes:
    """Write ``data`` to a loop:// port and read back ``size`` bytes (default: as many)."""
    link.write(data)
    return bytes(link.read(len(data) if size is None else size))


def kinds_of(faults: list[Fault]) -> list[tuple[str, str, int, int]]:
    return [(f.kind, f.direction, f.frame, f.offset) for f in faults]


# ------------------------------------------------------------------------------ the schedule


def test_the_text_form_round_trips_and_leaves_defaults_out() -> None:
    text = "seed:7,p:0.01,kinds:drop|corrupt,dir:rx,at:rx:3:5:corrupt|tx:1:0,after:2,limit:5,hold:0.2"
    schedule = parse_schedule(text)
    assert schedule == Schedule(
        seed=7,
        p=0.01,
        kinds=("drop", "corrupt"),
        direction="rx",
        at=(Placement("rx", 3, 5, "corrupt"), Placement("tx", 1, 0)),
        after=2,
        limit=5,
        hold=0.2,
    )
    assert schedule.text == text
    assert parse_schedule(schedule.text) == schedule
    assert parse_schedule("seed:3").text == "seed:3"
    assert parse_schedule("at:rx:1:0,at:tx:2:1:drop").at == (Placement("rx", 1, 0), Placement("tx", 2, 1, "drop"))


def test_the_url_form_wraps_any_url_verbatim_or_percent_encoded() -> None:
    schedule = parse_schedule("seed:7,p:0.01,kinds:drop|corrupt,at:rx:3:5:corrupt|tx:1:0")
    url = faulty_url("loop://?logging=debug", schedule)
    assert url == "faulty://?seed=7&p=0.01&kinds=drop,corrupt&at=rx:3:5:corrupt,tx:1:0&url=loop://?logging=debug"
    assert parse_faulty_url(url) == (schedule, "loop://?logging=debug")
    encoded = "faulty://?seed=2&url=socket%3A%2F%2F127.0.0.1%3A50003&p=0.5&kinds=delay|drop"
    assert parse_faulty_url(encoded) == (Schedule(seed=2, p=0.5, kinds=("delay", "drop")), "socket://127.0.0.1:50003")
    assert parse_faulty_url("faulty://?url=/dev/ttyUSB0") == (Schedule(), "/dev/ttyUSB0")
    assert (
        faulty_url("/dev/pts/3", seed=1, p=0.5, kinds=("drop",)) == "faulty://?seed=1&p=0.5&kinds=drop&url=/dev/pts/3"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("faulty://?seed=7", "faulty:// needs url=<inner URL>"),
        ("faulty://?seed=x&url=loop://", "faults seed must be an integer, not 'x'"),
        ("faulty://?url=", "empty url= parameter"),
        ("faulty://loop://", "options after ?"),
        ("faulty://?seed=1&url=bogus://x", "unsupported URL scheme 'bogus'"),
    ],
)
def test_check_url_refuses_a_bad_faulty_url_in_one_line(url: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_url(url)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_same_seed_and_traffic_give_the_same_faults_and_another_seed_others() -> None:
    def run(seed: int, chunk: int) -> tuple[list[Fault], bytes]:
        injector = Injector(Schedule(seed=seed, p=0.05))
        out = bytearray()
        for start in range(0, len(STREAM), 64):  # request, answer, request, ...
            direction = "tx" if start // 64 % 2 == 0 else "rx"
            frame = STREAM[start : start + 64]
            for piece in range(0, 64, chunk):  # however the frame is cut into reads
                outcome = injector.feed(direction, frame[piece : piece + chunk])
                out += outcome.data + outcome.held
        return injector.injected, bytes(out)

    faults, output = run(7, 64)
    assert len(faults) > 10 and output != STREAM
    assert run(7, 64) == (faults, output)
    assert run(7, 5) == (faults, output)  # frames, not chunk boundaries, place the faults
    assert run(8, 64)[0] != faults
    assert {f.kind for f in faults} <= {"drop", "corrupt", "duplicate", "replay", "truncate", "delay"}


def test_kinds_direction_after_and_limit_bound_the_random_faults() -> None:
    injector = Injector(parse_schedule("seed:3,p:0.2,kinds:corrupt,dir:rx,after:2,limit:7"))
    for start in range(0, len(STREAM), 64):
        injector.feed("tx" if start // 64 % 2 == 0 else "rx", STREAM[start : start + 64])
    faults = injector.injected
    assert len(faults) == 7
    assert {(f.kind, f.direction) for f in faults} == {("corrupt", "rx")}
    assert min(f.frame for f in faults) == 3
    assert all(f.after[0] != f.before[0] for f in faults)  # a corruption always changes the byte


# ------------------------------------------------------------------------------ the URL handler


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("drop", b"heLO"),
        ("corrupt", None),
        ("duplicate", b"heLLLO"),
        ("replay", b"heLheLLO"),  # the frame so far, through the faulted byte, again
        ("truncate", b"he"),
    ],
)
def test_each_kind_at_a_chosen_frame_and_byte(kind: str, expected: bytes | None) -> None:
    """rx frame 2 byte 2: the second answer of a loop:// "device" that echoes what it is sent."""
    link = loop(f"seed:1,at:rx:2:2:{kind}")
    try:
        assert echo(link, b"first") == b"first"  # tx frame 1, rx frame 1: untouched
        link.write(b"heLLO")
        got = link.read(5 if expected is None else len(expected))
        if expected is None:
            assert len(got) == 5 and got[:2] == b"he" and got[3:] == b"LO" and got[2] != ord("L")
        else:
            assert got == expected
        [fault] = link.injected
        assert (fault.kind, fault.direction, fault.frame, fault.offset, fault.before) == (kind, "rx", 2, 2, b"L")
        assert fault.describe().startswith(f"{kind} rx frame 2 byte 2: 4C -> ")
    finally:
        link.close()


def test_a_tx_fault_changes_what_the_device_receives() -> None:
    received: list[bytes] = []

    def record(chunk: bytes) -> bytes:
        received.append(chunk)
        return b"ok"

    with AnsweringPeer(respond=record) as peer:
        link = port(faulty_url(f"socket://127.0.0.1:{peer.port}", parse_schedule("at:tx:1:0:drop|tx:1:3:corrupt")))
        try:
            link.write(b"ABCD")
            assert link.read(2) == b"ok"
        finally:
            link.close()
    data = b"".join(received)
    assert len(data) == 3 and data[:2] == b"BC" and data[2] != ord("D")
    assert kinds_of(link.injected) == [("drop", "tx", 1, 0), ("corrupt", "tx", 1, 3)]


def test_tx_check_sees_the_requests_as_the_faults_made_them_and_can_stop_them() -> None:
    """connect.py puts the safety guard there for url: registers (a replayed or corrupted frame)."""
    link = loop("at:tx:1:1:duplicate")
    seen: list[bytes] = []

    def refuse(data: bytes) -> None:
        seen.append(data)
        raise RuntimeError("refused")

    try:
        link.tx_check = refuse
        with pytest.raises(RuntimeError, match="refused"):
            link.write(b"abc")
        assert seen == [b"abbc"]
        assert link.in_waiting == 0  # nothing reached the device
    finally:
        link.close()


def test_a_delay_returns_at_once_as_a_timed_out_read_then_delivers() -> None:
    link = loop("at:rx:1:2:delay")
    try:
        started = time.monotonic()
        link.write(b"hello")
        assert link.read(5) == b"he"  # as if the read had timed out ...
        assert time.monotonic() - started < READ_TIMEOUT / 2  # ... without waiting for it
        assert link.in_waiting == 3  # then the rest arrives
        assert link.read(3) == b"llo"
        assert link.injected[0].describe() == "delay rx frame 1 byte 2: 6C -> 6C, held back with what follows"
    finally:
        link.close()


def test_a_delayed_request_reaches_the_device_after_the_reader_gave_up() -> None:
    link = loop("at:tx:1:0:delay")
    try:
        link.write(b"abc")
        assert link.in_waiting == 0
        assert link.read(3) == b""  # the device got nothing: the reader times out (at once)
        assert link.read(3) == b"abc"  # then the request went out, and the loop answered it
    finally:
        link.close()


def test_a_delay_with_hold_waits_that_long_within_the_read() -> None:
    link = loop("at:rx:1:1:delay,hold:0.05")
    try:
        started = time.monotonic()
        link.write(b"abc")
        assert link.read(3) == b"abc"
        assert time.monotonic() - started >= 0.05
    finally:
        link.close()


def test_a_disconnect_cuts_the_link_until_the_port_is_reopened() -> None:
    link = loop("at:rx:1:2:disconnect")
    try:
        link.write(b"abcd")
        assert link.read(4) == b"ab"  # what came before the cut
        for call in (lambda: link.read(1), lambda: link.write(b"x"), lambda: link.in_waiting, link.flush):
            with pytest.raises(serial.SerialException, match="link cut by fault injection"):
                call()
        link.close()
        link.open()  # the cable is back; the schedule goes on: the same fault does not strike again
        assert echo(link, b"abcd") == b"abcd"
        assert kinds_of(link.injected) == [("disconnect", "rx", 1, 2)]
    finally:
        link.close()


def test_a_disconnect_closes_the_inner_connection() -> None:
    hung_up = threading.Event()

    def serve(conn: socket.socket) -> None:
        deadline = time.monotonic() + READ_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if not conn.recv(4096):
                    hung_up.set()
                    return
            except TimeoutError:
                continue
            except OSError:
                hung_up.set()
                return

    with LoopbackPeer(serve) as peer:
        link = port(faulty_url(f"socket://127.0.0.1:{peer.port}", parse_schedule("at:tx:1:1:disconnect")))
        link.write(b"xyz")
        with pytest.raises(serial.SerialException):
            link.flush()
        assert hung_up.wait(READ_TIMEOUT)
        link.close()


def test_random_faults_on_a_port_are_recorded_and_reproducible() -> None:
    def run(seed: int) -> tuple[list[Fault], bytes]:
        link = loop(f"seed:{seed},p:0.05,kinds:drop|corrupt|duplicate")
        try:
            got = b""
            for start in range(0, 256, 32):
                link.write(STREAM[start : start + 32])
                got += link.read(link.in_waiting)  # loop:// has it all at once: no read waits
            return link.injected, got
        finally:
            link.close()

    faults, got = run(11)
    assert faults and got != STREAM[:256]
    assert run(11) == (faults, got)
    assert run(12)[0] != faults


# ------------------------------------------------------------------------------ the TCP proxy


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(READ_TIMEOUT)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_the_proxy_injects_the_same_schedule_on_a_tcp_stream() -> None:
    with (
        AnsweringPeer(respond=lambda chunk: chunk.upper()) as peer,
        FaultProxy(f"tcp://127.0.0.1:{peer.port}", parse_schedule("at:tx:1:0:drop|rx:2:1:duplicate")) as proxy,
    ):
        assert proxy.url.startswith("tcp://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=READ_TIMEOUT) as sock:
            sock.sendall(b"abc")
            assert recv_exactly(sock, 2) == b"BC"
            sock.sendall(b"xyz")
            assert recv_exactly(sock, 4) == b"XYYZ"
        assert kinds_of(proxy.injected) == [("drop", "tx", 1, 0), ("duplicate", "rx", 2, 1)]


def test_the_proxy_disconnects_and_delays() -> None:
    with (
        AnsweringPeer(respond=lambda chunk: chunk) as peer,
        FaultProxy(f"tcp://127.0.0.1:{peer.port}", parse_schedule("at:rx:1:1:delay|rx:2:1:disconnect,hold:0.05")) as p,
    ):
        address = ("127.0.0.1", int(p.url.rsplit(":", 1)[1]))
        with socket.create_connection(address, timeout=READ_TIMEOUT) as sock:
            started = time.monotonic()
            sock.sendall(b"abc")
            assert recv_exactly(sock, 3) == b"abc"
            assert time.monotonic() - started >= 0.05
            sock.sendall(b"def")
            assert recv_exactly(sock, 3) == b"d"  # then the proxy hung up
        with socket.create_connection(address, timeout=READ_TIMEOUT) as sock:  # a reconnect goes on
            sock.sendall(b"ghi")
            assert recv_exactly(sock, 3) == b"ghi"
        assert kinds_of(p.injected) == [("delay", "rx", 1, 1), ("disconnect", "rx", 2, 1)]


def test_the_proxy_refuses_a_non_loopback_upstream() -> None:
    with pytest.raises(ValueError, match="only loopback"):
        FaultProxy("tcp://192.0.2.1:50003", Schedule())


def test_kkt_hil_faults_serves_the_proxy_and_prints_each_fault(spawn: Callable[..., Proc]) -> None:
    with AnsweringPeer(respond=lambda chunk: chunk) as peer:
        proc = spawn("faults", "--upstream", f"tcp://127.0.0.1:{peer.port}", "--faults", "at:rx:1:0:corrupt")
        first = proc.readline()
        assert first.startswith("listening tcp://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", int(first.rsplit(":", 1)[1])), timeout=READ_TIMEOUT) as sock:
            sock.sendall(b"A")
            assert recv_exactly(sock, 1) != b"A"
        assert proc.readline().startswith("fault injected: corrupt rx frame 1 byte 0: 41 -> ")
        assert proc.terminate() == 0


def test_kkt_hil_faults_refuses_a_bad_schedule_in_one_line(tmp_path: Path) -> None:
    result = run_cli("faults", "--upstream", "tcp://127.0.0.1:1", "--faults", "seed:7,p:2", cwd=tmp_path)
    assert "faults p must be a probability between 0 and 1" in assert_clean_failure(result, 2)


# ------------------------------------------------------------------------------ specs


def test_faults_in_emulator_and_url_specs() -> None:
    [spec] = parse_spec("emulator:kf?faults=seed:7,p:0.01&firmware=2.25.0", known_models=("kf",))
    assert spec.faults == Schedule(seed=7, p=0.01)
    assert spec.params["firmware"] == "2.25.0"
    assert spec.id == "emulator-kf[faults=seed:7,p:0.01,firmware=2.25.0]"
    [spec] = parse_spec("url:socket://127.0.0.1:50003#model=kf&faults=seed:1,kinds:drop|corrupt", known_models=("kf",))
    assert spec.url == "socket://127.0.0.1:50003"
    assert spec.faults == Schedule(seed=1, kinds=("drop", "corrupt"))
    assert parse_spec("emulator:kf", known_models=("kf",))[0].faults is None


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ("", "faults is empty"),
        ("seed=7", "faults item 'seed=7' is not key:value"),
        ("seed:x", "faults seed must be an integer, not 'x'"),
        ("p:2", "faults p must be a probability between 0 and 1, not 2.0"),
        ("kinds:drop|melt", "unknown fault kind 'melt'"),
        ("dir:up", "faults dir is tx, rx or both, not 'up'"),
        ("at:rx:0:1", "faults at counts frames from 1"),
        ("at:rx:3", "faults at takes DIR:FRAME:BYTE[:KIND] like rx:3:5:corrupt, not 'rx:3'"),
        ("hold:0", "faults hold takes seconds"),
        ("colour:red", "unknown faults option 'colour'"),
        ("seed:1,seed:2", "faults option 'seed' given twice"),
    ],
)
def test_a_bad_faults_value_is_one_usage_line(faults: str, message: str) -> None:
    text = f"emulator:kf?faults={faults}"
    with pytest.raises(UsageError) as caught:
        parse_spec(text, known_models=("kf",))
    assert str(caught.value).startswith(f"bad --kkt spec {text!r}: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_faults_are_refused_on_lab_specs() -> None:
    with pytest.raises(UsageError, match="faults= works with emulator: and url: specs, not lab:"):
        parse_spec("lab:bench1?faults=seed:1")


# ------------------------------------------------------------------------------ end to end


def frames_after_one_status(spec: str) -> int:
    """rx frames the connection (start of work, identity) and one status() take, with no fault."""
    with open_kkt(spec) as handle:
        assert handle.faults is not None
        handle.kkt.status()
        return handle.faults.frame("rx")


def test_open_kkt_through_faults_shows_them_in_the_trace() -> None:
    frame = frames_after_one_status("emulator:kf?faults=seed:7") + 1  # the first answer to a second status()
    spec = f"emulator:kf?faults=seed:7,at:rx:{frame}:3:delay"
    with open_kkt(spec) as handle:
        assert handle.faults is not None and handle.faults.inner_url.startswith("/dev/")
        assert handle.link.url.startswith(f"faulty://?seed=7&at=rx:{frame}:3:delay&url=/dev/")
        handle.kkt.status()
        assert handle.faults.injected == []
        try:
            handle.kkt.status()  # the answer is held back: the read times out at once
        except KktError:
            pass
        [fault] = handle.faults.injected
        assert (fault.kind, fault.direction, fault.frame, fault.offset) == ("delay", "rx", frame, 3)
        notes = [r.decoded for r in handle.trace.records if r.direction == "--"]
        assert notes[0] == f"fault injection on: seed:7,at:rx:{frame}:3:delay (over {handle.faults.inner_url})"
        assert f"fault injected: {fault.describe()}" in notes


def test_emulator_settings_never_see_faults() -> None:
    """``faults`` is the harness's parameter: the emulator (which refuses unknown settings) never gets it."""
    with open_kkt("emulator:kf?faults=seed:1&firmware=2.25.0") as handle:
        assert handle.kkt.info().firmware == "2.25.0"


def test_the_report_carries_the_schedule_and_the_faults(pytester: pytest.Pytester, run: Callable[..., Run]) -> None:
    pytester.makepyfile(test_scenario="def test_status(kkt):\n    kkt.status()\n")
    result = run("--kkt", "emulator:kf?faults=seed:7")
    [name] = [n for n in result.allure.names if n.startswith("test_status[")]
    assert result.allure.status(name) == "passed"
    assert result.allure.labels(name)["faults"] == ["seed:7"]
    parameters = {p["name"]: p["value"] for p in result.allure.get(name).get("parameters", [])}
    assert parameters["Сбои связи (faults)"] == "seed:7"  # a plain value, no quotes
    evidence = result.allure.attachments(name)
    notes = [row for row in trace_rows(evidence[TRACE]) if row.direction == "примечание"]
    assert notes and re.fullmatch(r"fault injection on: seed:7 \(over /dev/\S+\)", notes[0].decoded), notes
    assert notes[0].hex == ""
    faults = evidence[FAULTS].splitlines()
    assert re.fullmatch(r"расписание: seed:7 \(поверх /dev/\S+\)", faults[0]), faults
    assert faults[1:] == ["ни одного сбоя не внесено"]
    assert result.allure.placed(name)[FAULTS] == ["test"]


def test_a_device_the_faults_keep_from_connecting_is_broken_and_names_them(
    pytester: pytest.Pytester, run: Callable[..., Run]
) -> None:
    pytester.makepyfile(test_scenario="def test_status(kkt):\n    kkt.status()\n")
    result = run("--kkt", "emulator:kf?faults=at:tx:1:0:disconnect", "--device-timeout-scale", "0.05")
    [name] = [n for n in result.allure.names if n.startswith("test_status[")]
    assert result.allure.status(name) == "broken"
    assert result.allure.labels(name)["faults"] == ["seed:0,at:tx:1:0:disconnect"]
    assert (
        "faults injected while connecting: disconnect tx frame 1 byte 0"
        in result.allure.get(name)["statusDetails"]["trace"]
    )


def test_faulty_inside_faulty_is_refused() -> None:
    """The guard below the faults sees only the outermost layer: one schedule per link."""
    with pytest.raises(UsageError, match="faulty:// inside faulty://"):
        check_url("faulty://?seed=0&url=faulty://?seed=1&url=socket://127.0.0.1:50003")


def test_the_proxy_never_delivers_a_request_the_faults_made_destructive() -> None:
    """A Z report (0x21) the faults turned into a ФН close (0x71) is not delivered, whatever the
    upstream is; a destructive request the client sent itself is not the faults' doing."""
    z_report = encode_request(0x21, ["Кассир", 0], packet_id=0x30)
    fn_close = encode_request(0x71, ["Кассир"], packet_id=0x30)
    assert _makes_destructive(z_report, fn_close)
    assert not _makes_destructive(fn_close, fn_close)
    assert not _makes_destructive(z_report, z_report[:-1])
