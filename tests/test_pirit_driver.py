"""The Pirit driver against the Pirit emulator, over a pty and over TCP, plus malformed input."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.emulator.build import build_emulator
from devices.emulator.serve import serve
from devices.pirit import protocol as p
from devices.pirit.driver import PiritDriver
from devices.pirit.emulator import PiritFrontEnd
from harness.device import Item, PaperState, ShiftState, TaxSystem
from harness.errors import (
    ClockBehindLastDocument,
    CoverOpen,
    LinkCorrupted,
    LinkTimeout,
    NoChanges,
    NoPaper,
    ShiftClosed,
    ShiftExpired,
    ShiftOpen,
    TaxSystemNotRegistered,
    UsageError,
)
from harness.link import Link
from harness.trace import Trace
from harness.transport import open_transport

START = datetime(2020, 12, 30, 10, 0, 0)
SUGAR = Item("Сахар", Decimal("100.00"))


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[PiritDriver, object]]:
    emulator = build_emulator("kf", {"clock": START.isoformat()})
    core = emulator.core
    server = serve(lambda: PiritFrontEnd(core), "pty" if request.param == "pty" else "tcp://127.0.0.1:0")
    transport = open_transport(server.url, timeout=2.0, trace=Trace(p.describe))
    driver = PiritDriver(Link(transport, timeout_scale=0.5), model="kf", host_clock=core.now)
    try:
        driver.connect()
        yield driver, core
    finally:
        transport.close()
        server.close()


def test_identity_and_state(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    info = kkt.info()
    assert (info.serial, info.firmware, info.model_code, info.ffd) == (core.serial, "2.26.0", 9, "1.2")
    assert info.fn_serial == core.fn.serial
    status = kkt.status()
    assert status.shift is ShiftState.CLOSED and status.initialised and status.paper is PaperState.OK
    fn = kkt.fn()
    assert fn.tax_systems == TaxSystem.USN_INCOME and fn.last_fd_number == 1
    assert fn.valid_until == core.fn_valid_until()
    assert kkt.clock() == START


def test_shift_sale_and_ofd_queue(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    opened = kkt.open_shift()
    assert opened.number == 2 and opened.shift_number == 1
    receipt = kkt.sell([SUGAR, Item("Соль", Decimal("25.50"), Decimal("2"))])
    assert receipt.number == 3 and receipt.number_in_shift == 1 and receipt.total == Decimal("151.00")
    assert receipt.fiscal_sign == core.last_fd().fiscal_sign
    queue = kkt.ofd_queue()
    assert (queue.count, queue.first_number, queue.first_datetime) == (2, 2, START)
    core.set_ofd(True)
    assert kkt.ofd_queue().count == 0
    closed = kkt.close_shift()
    assert closed.number == 4 and kkt.status().shift is ShiftState.CLOSED


def test_device_errors_are_normalized(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    with pytest.raises(ShiftClosed) as closed:
        kkt.sell([SUGAR])
    assert (closed.value.code, closed.value.extended) == (0x01, 20)
    kkt.open_shift()
    with pytest.raises(ShiftOpen):
        kkt.open_shift()
    with pytest.raises(TaxSystemNotRegistered):
        kkt.sell([SUGAR], tax_system=TaxSystem.OSN)
    assert not kkt.status().document_open  # the driver cancelled the refused document
    core.set_cover(True)
    with pytest.raises(CoverOpen):
        kkt.sell([SUGAR])
    core.set_cover(False)
    core.set_paper(PaperState.OUT)
    with pytest.raises(NoPaper) as paper:
        kkt.sell([SUGAR])
    assert paper.value.code == 0x08


def test_24h_rule_and_closing_an_expired_shift(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    core.lab_clock_advance(timedelta(hours=24, minutes=1).total_seconds())
    assert kkt.status().shift is ShiftState.EXPIRED
    with pytest.raises(ShiftExpired) as expired:
        kkt.sell([SUGAR])
    assert expired.value.code == 0x0A
    kkt.close_shift()
    kkt.open_shift()
    kkt.sell([SUGAR])


def test_clock_and_reregistration(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    with pytest.raises(ClockBehindLastDocument):
        kkt.set_clock(START - timedelta(days=400))
    kkt.set_clock(START + timedelta(days=3))  # > 24 h ahead: the driver repeats to confirm
    assert kkt.clock() == START + timedelta(days=3)
    doc = kkt.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)
    assert doc.number == core.last_fd().number
    assert kkt.fn().tax_systems == TaxSystem.OSN | TaxSystem.USN_INCOME
    with pytest.raises(NoChanges):
        kkt.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)


def test_paper_out_mid_receipt_then_continue(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(NoPaper):
        kkt.sell([SUGAR])
    status = kkt.status()
    assert status.pending_print and status.raw["document"] >> 4 == 8
    core.set_paper(PaperState.OK)
    doc = kkt.continue_print()
    assert doc is not None and doc.number == core.last_fd().number == 3
    assert kkt.continue_print() is None


def test_power_off_is_a_link_timeout_and_power_on_needs_start_of_work(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    core.set_power(False)
    with pytest.raises(LinkTimeout):
        kkt.status()
    core.set_power(True)
    assert not kkt.status().initialised
    kkt.connect()
    assert kkt.status().initialised


def test_wrong_model_is_a_usage_error() -> None:
    core = build_emulator("kf").core
    server = serve(lambda: PiritFrontEnd(core), "tcp://127.0.0.1:0")
    transport = open_transport(server.url, timeout=2.0)
    try:
        with pytest.raises(UsageError, match=r"is not a Дримкас-Ф \(dkf\)"):
            PiritDriver(Link(transport), model="dkf", host_clock=core.now).connect()
    finally:
        transport.close()
        server.close()


def test_garbage_answers_are_a_link_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    import threading

    def garbage() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2)
            try:
                while conn.recv(1024):
                    conn.sendall(b"\xff\x00garbage\x10")
            except OSError:
                pass

    thread = threading.Thread(target=garbage, daemon=True)
    thread.start()
    transport = open_transport(f"socket://127.0.0.1:{port}", timeout=1.0)
    try:
        with pytest.raises(LinkCorrupted, match="garbage"):
            PiritDriver(Link(transport, timeout_scale=0.3), model="kf").connect()
    finally:
        transport.close()
        listener.close()


# ------------------------------------------------------------------ malformed input to the emulator


def _status_request(packet_id: int = 0x21) -> bytes:
    return p.encode_request(0x00, packet_id=packet_id)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_kill_the_emulator(noise: bytes) -> None:
    core = build_emulator("kf").core
    front = PiritFrontEnd(core)
    front.feed(noise)
    front.reset()  # what the inter-byte timeout does to an unfinished frame
    answer = p.decode_response(front.feed(_status_request()).lstrip(bytes([p.ACK])))
    assert answer.packet_id == 0x21 and answer.error == 0


@settings(max_examples=100)
@given(st.integers(min_value=1, max_value=10))
def test_truncated_frame_then_resync_on_stx(cut: int) -> None:
    front = PiritFrontEnd(build_emulator("kf").core)
    frame = _status_request(0x22)
    assert front.feed(frame[: len(frame) - cut]) == b""
    answer = p.decode_response(front.feed(_status_request(0x23)))
    assert answer.packet_id == 0x23 and answer.error == 0


def test_bad_crc_wrong_password_unknown_command_bad_parameter() -> None:
    front = PiritFrontEnd(build_emulator("kf").core)
    good = _status_request(0x24)
    bad_crc = good[:-2] + (b"00" if good[-2:] != b"00" else b"11")
    assert p.decode_response(front.feed(bad_crc)).error == 0x07
    assert p.decode_response(front.feed(p.encode_request(0x00, packet_id=0x25, password=b"XXXX"))).error == 0x06
    assert p.decode_response(front.feed(p.encode_request(0xFE, packet_id=0x26))).error == 0x02
    front.feed(p.encode_request(0x10, ["011220", "090000"], packet_id=0x27))
    bad = p.decode_response(front.feed(p.encode_request(0x02, ["abc"], packet_id=0x28)))
    assert bad.error == 0x03
    ext = p.decode_response(front.feed(p.encode_request(0x06, [1], packet_id=0x29)))
    assert ext.fields[0] == "1"
    assert front.feed(bytes([p.ENQ])) == bytes([p.ACK])
    assert front.feed(bytes([p.LF])) == b""
    lower = good[:-2] + good[-2:].lower()
    assert p.decode_response(front.feed(lower)).error == 0
