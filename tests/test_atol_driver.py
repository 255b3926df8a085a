"""АТОЛ specifics of the driver against the emulator (codes, modes, the task buffer); a raw-frame
client written from the reference alone; v2; malformed input never kills the emulator.  What every
family does is in tests/contract."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.driver import AtolDriver
from devices.atol.emulator import AtolFrontEnd, describe_state
from devices.atol.family import FAMILY
from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore
from devices.emulator.serve import serve
from harness.device import (
    DocumentKind,
    Item,
    PaperState,
    ShiftState,
    TaxSystem,
)
from harness.errors import (
    ClockBehindLastDocument,
    CoverOpen,
    DocumentNotOpen,
    LinkTimeout,
    NoChanges,
    NoPaper,
    OfdTimeout,
    PendingPrint,
    ShiftExpired,
    ShiftOpen,
    TaxSystemNotRegistered,
    UnsentDocuments,
)
from devices.models import MODELS
from harness.link import Link
from harness.trace import Trace
from harness.transport import open_transport

START = datetime(2020, 12, 30, 10, 0, 0)
SUGAR = Item("Сахар", Decimal("100.00"))


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[AtolDriver, FiscalCore]]:
    core = build_emulator("atol", {"clock": START.isoformat()}).core
    server = serve(lambda: FAMILY.make_frontend(core), "pty" if request.param == "pty" else "tcp://127.0.0.1:0")
    transport = open_transport(server.url, baudrate=MODELS["atol"].baudrate, timeout=2.0, trace=Trace(FAMILY.describe_bytes))
    driver = AtolDriver(Link(transport, timeout_scale=0.3), model="atol", host_clock=core.now)
    try:
        driver.connect()
        yield driver, core
    finally:
        transport.close()
        server.close()


# ------------------------------------------------------------------ driver vs emulator


def test_atol_identity_counters_and_trace(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    info = kkt.info()
    assert (info.model_name, info.protocol, info.firmware) == ("АТОЛ 30Ф", "atol-v3", "3.0.8000")
    status = kkt.status()
    assert status.raw["mode"] == 0  # connect leaves the register in the select mode
    fn = kkt.fn()  # АТОЛ reads registrations done / left (A4h/32h); Pirit has no such counter
    assert (fn.registrations_done, fn.registrations_left, fn.last_registration_fd) == (1, 29, 1)
    assert "3Fh STATUS" in kkt.trace.render() and "ASYNC_RESULT" in kkt.trace.render()


def test_receipt_on_a_closed_shift_opens_it(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    receipt = kkt.sell([SUGAR])
    assert (receipt.number, receipt.shift_number) == (3, 1)  # FD 2 is the implicit shift opening
    assert core.fn.archive[1].kind == DocumentKind.SHIFT_OPEN
    assert kkt.status().shift is ShiftState.OPEN


def test_atol_codes_of_the_refusals(rig) -> None:  # type: ignore[no-untyped-def]
    """The interface-level kinds are the contract (tests/contract); these are the АТОЛ answers."""
    kkt, core = rig
    with pytest.raises(DocumentNotOpen) as none_open:
        kkt.cancel_document()
    assert none_open.value.code == 154
    kkt.open_shift()
    with pytest.raises(ShiftOpen) as already:
        kkt.open_shift()
    assert (already.value.code, already.value.vendor, already.value.command) == (156, "atol", "9Ah")
    with pytest.raises(TaxSystemNotRegistered) as tax:
        kkt.sell([SUGAR], tax_system=TaxSystem.OSN)
    assert tax.value.code == 231
    core.set_cover(True)
    with pytest.raises(CoverOpen) as cover:
        kkt.sell([SUGAR])
    assert cover.value.code == 105
    core.set_cover(False)
    core.set_paper(PaperState.OUT)
    with pytest.raises(NoPaper) as paper:
        kkt.sell([SUGAR])
    assert paper.value.code == 103
    core.set_paper(PaperState.NEAR_END)  # near end is only a warning (3Fh/45h bit)
    assert kkt.status().paper is PaperState.NEAR_END
    assert kkt.sell([SUGAR]).number == 3
    assert kkt.status().raw["mode"] == 0  # every operation leaves its mode


def test_atol_code_of_an_expired_shift(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    core.lab_clock_advance(86400 + 60)
    with pytest.raises(ShiftExpired) as expired:
        kkt.sell([SUGAR])
    assert expired.value.code == 136


def test_atol_code_of_a_pending_receipt_printout(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(NoPaper):
        kkt.sell([SUGAR])
    core.set_paper(PaperState.OK)
    with pytest.raises(PendingPrint) as pending:
        kkt.sell([SUGAR])
    assert pending.value.code == 118  # "previous operation not completed"
    doc = kkt.continue_print()
    assert doc is not None and doc.kind == DocumentKind.RECEIPT


def test_atol_code_of_an_interrupted_z(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(NoPaper):
        kkt.close_shift()
    core.set_paper(PaperState.OK)
    with pytest.raises(PendingPrint) as pending:
        kkt.open_shift()
    assert pending.value.code == 26  # "report with clearing interrupted"


def test_atol_codes_of_clock_and_reregistration(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    with pytest.raises(ClockBehindLastDocument) as behind:
        kkt.set_clock(START - timedelta(days=400))
    assert behind.value.code == 32
    doc = kkt.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)
    assert doc.fiscal_sign == core.last_fd().fiscal_sign  # A4h/43h gives it back
    fn = kkt.fn()
    assert (fn.registrations_done, fn.registrations_left) == (2, 28)
    with pytest.raises(NoChanges) as same:
        kkt.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)
    assert same.value.code == 231
    kkt.sell([SUGAR], tax_system=TaxSystem.OSN)  # OFD offline: documents stay unsent
    kkt.close_shift()
    with pytest.raises(UnsentDocuments) as unsent:  # profile: ATOL refuses (237)
        kkt.reregister(TaxSystem.USN_INCOME)
    assert unsent.value.code == 237
    core.set_ofd(True)
    kkt.reregister(TaxSystem.USN_INCOME)
    assert kkt.fn().tax_systems == TaxSystem.USN_INCOME


def test_atol_code_of_the_ofd_block(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.sell([SUGAR])
    kkt.close_shift()
    core.lab_clock_advance(timedelta(days=30, minutes=1).total_seconds())
    with pytest.raises(OfdTimeout) as blocked:
        kkt.open_shift()
    assert blocked.value.code == 239


def test_power_off_loses_the_mode_and_reconnect_restores_select(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    core.set_power(False)
    with pytest.raises(LinkTimeout):
        kkt.call(p.Cmd.STATUS, timeout=1.0)
    core.set_power(True)
    kkt.connect()
    assert kkt.status().raw["mode"] == 0


def test_connect_cancels_an_open_receipt_and_leaves_the_mode(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.open_shift()
    kkt._enter(p.Mode.REGISTRATION)  # what a crashed POS leaves behind
    kkt.call(p.Cmd.OPEN_RECEIPT, p.OpenReceipt(p.ReceiptType.SALE).encode())
    assert core.document is not None
    kkt.connect()
    assert core.document is None and kkt.status().raw["mode"] == 0


def test_result_in_the_synchronous_answer(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    core.wire_memory["atol_sync_result"] = "result"
    assert kkt.sell([SUGAR]).number == 3
    with pytest.raises(ShiftOpen):
        kkt.open_shift()
    assert "RESULT: U err=0" in kkt.trace.render()


# ------------------------------------------------------------------ a raw client, from the reference alone
#
# Everything below builds and parses bytes by hand from protocols.md §3.2/§3.3/§3.5 (no codec import):
# FE | len&7F | len>>7 | id | escaped(data + crc8(id + data)), CRC-8 poly 0x31 init 0xFF.


def _crc8(data: bytes) -> int:
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _frame(packet_id: int, data: bytes) -> bytes:
    body = data + bytes([_crc8(bytes([packet_id]) + data)])
    escaped = body.replace(b"\xfd", b"\xfd\xed").replace(b"\xfe", b"\xfd\xee")
    return bytes([0xFE, len(data) & 0x7F, len(data) >> 7, packet_id]) + escaped


def _frames(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    for chunk in raw.split(b"\xfe")[1:]:
        size = chunk[0] | (chunk[1] << 7)
        body = chunk[3:].replace(b"\xfd\xee", b"\xfe").replace(b"\xfd\xed", b"\xfd")
        assert len(body) == size + 1 and body[-1] == _crc8(chunk[2:3] + body[:-1])
        out.append((chunk[2], body[:-1]))
    return out


class RawClient:
    """ADD with NeedResult, wait for the A6/A7 on ID F0, ACK -- over a real pty."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.packet = 0x10
        self.tid = 0x40

    def exchange(self, data: bytes, expect: int) -> list[tuple[int, bytes]]:
        self.packet += 1
        os.write(self.fd, _frame(self.packet, data))
        raw = b""
        while len(_complete(raw)) < expect:
            ready, _, _ = select.select([self.fd], [], [], 2.0)
            assert ready, f"no answer to {data.hex(' ')} (so far {raw.hex(' ')})"
            raw += os.read(self.fd, 4096)
        return _frames(raw)

    def task(self, command: bytes) -> tuple[int, bytes]:
        """Run password 00 00 + command; return (async status, application answer)."""
        self.tid += 1
        frames = self.exchange(bytes([0xC1, 0x01, self.tid]) + b"\x00\x00" + command, expect=2)
        (sync_id, sync), (async_id, result) = frames
        assert (sync_id, sync) == (self.packet, b"\xa1")  # pending: the result comes asynchronously
        assert async_id == 0xF0 and result[1] == self.tid
        ack = self.exchange(bytes([0xC2, self.tid]), expect=1)
        assert ack[0][0] == self.packet
        return result[0], result[2:]


def _complete(raw: bytes) -> list[bytes]:
    """Frames fully received so far (a frame is complete when its unescaped length is reached)."""
    done = []
    for chunk in raw.split(b"\xfe")[1:]:
        if len(chunk) >= 3:
            size = chunk[0] | (chunk[1] << 7)
            body = chunk[3:].replace(b"\xfd\xee", b"\xfe").replace(b"\xfd\xed", b"\xfd")
            if len(body) >= size + 1:
                done.append(chunk)
    return done


def _bcd(value: int, width: int) -> bytes:
    return bytes.fromhex(f"{value:0{2 * width}d}")


def test_raw_frame_client_from_the_reference() -> None:
    core = build_emulator("atol", {"clock": START.isoformat()}).core
    server = serve(lambda: AtolFrontEnd(core), "pty")
    fd = os.open(server.url, os.O_RDWR | os.O_NOCTTY)
    try:
        import tty

        tty.setraw(fd)
        client = RawClient(fd)
        assert client.exchange(b"\xc4", expect=1)[0][1] == b"\xa3"  # ABORT
        # 3Fh: 'D' and the 30-byte block
        status, block = client.task(b"\x3f")
        assert status == 0xA6 and block[0] == 0x44 and len(block) == 30
        assert block[3:6] == bytes.fromhex("201230") and block[6:9] == bytes.fromhex("100000")  # BCD date/time
        assert block[14] == 61  # model byte: АТОЛ 30Ф
        assert block[9] & 0b1000 and not block[9] & 0b10  # paper present, shift closed
        assert block[10:14] == bytes.fromhex(core.serial[-8:]) and block[17] == 0  # serial BCD, select mode
        # enter mode 1 (registration) with the system administrator's password 30
        assert client.task(b"\x56\x01" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
        # sale: open receipt (sale), position, cash payment, close
        assert client.task(b"\x92\x00\x01") == (0xA6, b"\x55\x00\x00")
        name = "Сахар".encode("cp866").ljust(64, b"\x00")
        position = b"\x00" + name + _bcd(10000, 6) + _bcd(1000, 5) + b"\x01\x00" + bytes(6) + b"\x06\x00" + bytes(16) + b"\x00"
        assert client.task(b"\xe6" + position) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x99\x00\x01" + _bcd(15000, 5)) == (0xA6, b"\x55\x00" + _bcd(0, 5) + _bcd(5000, 5))
        assert client.task(b"\x4a\x00\x01" + bytes(5)) == (0xA6, b"\x55\x00\x00")
        assert core.last_fd().kind == DocumentKind.RECEIPT and core.last_fd().total == Decimal("100.00")
        # no paper: the next receipt is refused with 103, asynchronously as an error
        core.set_paper(PaperState.OUT)
        assert client.task(b"\x92\x00\x01") == (0xA7, b"\x55\x67\x00")
        core.set_paper(PaperState.OK)
        # Z in mode 3: leave mode 1, enter 3, 5Ah, leave
        assert client.task(b"\x5a") == (0xA7, b"\x55\x66\x00")  # 102: not in mode 1
        assert client.task(b"\x48") == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x56\x03" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x5a") == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x48") == (0xA6, b"\x55\x00\x00")
        assert not core.shift.is_open
        # A4h/30h: phase, ..., FN number (16 ASCII) at 10, last FD number (4 LE) at 26
        status, fn = client.task(b"\xa4\x30")
        assert fn[:2] == b"\x55\x00" and fn[2] == 0x03
        assert fn[2 + 10:2 + 26].decode("ascii").strip() == core.fn.serial
        assert int.from_bytes(fn[2 + 26:2 + 30], "little") == core.last_fd().number == 4
        # A4h/20h: flags, read started, unsent count (2 LE), first unsent (4 LE), its date-time (5 binary)
        status, ofd = client.task(b"\xa4\x20")
        data = ofd[2:]
        assert int.from_bytes(data[2:4], "little") == 3 and int.from_bytes(data[4:8], "little") == 2
        assert data[8:13] == bytes([20, 12, 30, 10, 0])
    finally:
        os.close(fd)
        server.close()


# ------------------------------------------------------------------ task buffer, frames, modes (front-end level)


def _front(**kwargs: object) -> tuple[AtolFrontEnd, FiscalCore]:
    core = build_emulator("atol", {"clock": START.isoformat()}).core
    return AtolFrontEnd(core, **kwargs), core  # type: ignore[arg-type]


def _send(front: AtolFrontEnd, packet_id: int, payload: bytes) -> list[p.V3Frame]:
    items = p.V3Reader().feed(front.feed(p.encode_frame(packet_id, payload)))
    assert all(isinstance(item, p.V3Frame) for item in items)
    return items  # type: ignore[return-value]


def _add(front: AtolFrontEnd, packet_id: int, tid: int, command: int, params: bytes = b"",
         flags: p.AddFlags = p.AddFlags.NEED_RESULT) -> tuple[p.BufferAnswer, p.BufferAnswer | None]:
    frames = _send(front, packet_id, p.encode_add(tid, p.encode_command(command, params), flags))
    sync = p.decode_buffer_answer(frames[0].payload)
    assert frames[0].packet_id == packet_id
    result = p.decode_buffer_answer(frames[1].payload) if len(frames) > 1 else None
    if result is not None:
        assert frames[1].packet_id == p.ASYNC_ID and result.tid == tid
    return sync, result


def _status_of(front: AtolFrontEnd, packet_id: int, kind: p.BufferCmd, tid: int) -> p.BufferAnswer:
    payload = p.encode_req(tid) if kind == p.BufferCmd.REQ else p.encode_ack(tid)
    (frame,) = _send(front, packet_id, payload)
    return p.decode_buffer_answer(frame.payload)


def test_task_buffer_states() -> None:
    front, core = _front()
    sync, result = _add(front, 1, 5, p.Cmd.STATUS)
    assert sync.status == p.BufferStatus.PENDING and result is not None
    assert result.status == p.BufferStatus.ASYNC_RESULT and result.data[0] == 0x44
    req = _status_of(front, 2, p.BufferCmd.REQ, 5)
    assert (req.status, req.data) == (p.BufferStatus.RESULT, result.data)
    assert _status_of(front, 3, p.BufferCmd.REQ, 9).status == p.BufferStatus.NOT_FOUND  # unknown TId
    assert _add(front, 4, 5, p.Cmd.STATUS)[0].status == p.BufferStatus.ALREADY_EXISTS
    assert _status_of(front, 5, p.BufferCmd.ACK, 5).status == p.BufferStatus.RESULT
    assert _status_of(front, 6, p.BufferCmd.REQ, 5).status == p.BufferStatus.NOT_FOUND  # ACK dropped it
    _add(front, 7, 6, p.Cmd.STATUS)
    _add(front, 8, 7, p.Cmd.STATE)
    assert set(describe_state(core)["tasks"]) == {6, 7}
    (abort,) = _send(front, 9, p.encode_abort())
    assert p.decode_buffer_answer(abort.payload).status == p.BufferStatus.RESULT
    assert describe_state(core)["tasks"] == {}
    assert _status_of(front, 10, p.BufferCmd.REQ, 6).status == p.BufferStatus.NOT_FOUND
    # a task without NeedResult runs, reports asynchronously, and is not kept
    sync, result = _add(front, 11, 8, p.Cmd.STATUS, flags=p.AddFlags.NONE)
    assert sync.status == p.BufferStatus.PENDING and result is not None and result.is_async
    assert _status_of(front, 12, p.BufferCmd.REQ, 8).status == p.BufferStatus.NOT_FOUND
    # ACK_ADD acknowledges one task and adds the next
    _add(front, 13, 9, p.Cmd.STATUS)
    frames = _send(front, 14, p.encode_ack_add(9, 10, p.encode_command(p.Cmd.STATE)))
    assert p.decode_buffer_answer(frames[1].payload).tid == 10
    assert set(describe_state(core)["tasks"]) == {10}
    # illegal buffer commands and flags
    (bad,) = _send(front, 15, b"\xc7")
    assert p.decode_buffer_answer(bad.payload).status == p.BufferStatus.ILLEGAL_VALUE
    assert _add(front, 16, 11, p.Cmd.STATUS, flags=0x80)[0].status == p.BufferStatus.ILLEGAL_VALUE  # type: ignore[arg-type]


def test_failed_task_stops_the_buffer_until_acknowledged() -> None:
    front, _ = _front()
    sync, result = _add(front, 1, 1, p.Cmd.Z_REPORT)  # mode 0: refused with 102
    assert result is not None and result.status == p.BufferStatus.ASYNC_ERROR and result.data == b"\x55\x66\x00"
    stopped, nothing = _add(front, 2, 2, p.Cmd.STATUS)
    assert stopped.status == p.BufferStatus.STOPPED and nothing is None
    assert _status_of(front, 3, p.BufferCmd.REQ, 2).status == p.BufferStatus.STOPPED
    assert _status_of(front, 4, p.BufferCmd.ACK, 1).status == p.BufferStatus.ERROR
    _status_of(front, 5, p.BufferCmd.ACK, 2)
    assert _add(front, 6, 3, p.Cmd.STATUS)[1] is not None  # runs again
    # IgnoreError: a failure does not stop the buffer
    _add(front, 7, 4, p.Cmd.Z_REPORT, flags=p.AddFlags.NEED_RESULT | p.AddFlags.IGNORE_ERROR)
    assert _add(front, 8, 5, p.Cmd.STATUS)[1] is not None


def test_buffer_overflow() -> None:
    front, _ = _front()
    for tid in range(1, 33):
        assert _add(front, tid, tid, p.Cmd.STATE)[0].status == p.BufferStatus.PENDING
    assert _add(front, 40, 40, p.Cmd.STATE)[0].status == p.BufferStatus.OVERFLOW


def test_synchronous_result_setting() -> None:
    front, core = _front()
    core.wire_memory["atol_sync_result"] = "result"
    sync, result = _add(front, 1, 1, p.Cmd.DEVICE_TYPE)
    assert sync.status == p.BufferStatus.RESULT and result is not None and sync.data == result.data
    assert p.DeviceType.decode(p.parse_answer(sync.data, p.Cmd.DEVICE_TYPE).data).model == 61
    sync, _ = _add(front, 2, 2, p.Cmd.Z_REPORT)
    assert (sync.status, sync.data) == (p.BufferStatus.ERROR, b"\x55\x66\x00")
    front2, _ = _front(sync_result="result")
    assert _add(front2, 1, 1, p.Cmd.STATUS)[0].status == p.BufferStatus.RESULT


def test_corrupted_request_gets_an_empty_frame_and_resends_work() -> None:
    front, _ = _front()
    good = p.encode_frame(0x21, p.encode_add(1, p.encode_command(p.Cmd.STATUS)))
    bad = good[:-1] + bytes([good[-1] ^ 0x01]) if good[-1] not in (0xFC, 0xFF) else good[:-1] + b"\x00"
    assert front.feed(bad) == p.encode_frame(0x21, b"")  # retransmission request
    answer = front.feed(good)
    sync = p.V3Reader().feed(answer)[0]
    assert isinstance(sync, p.V3Frame) and sync.packet_id == 0x21
    assert front.feed(p.encode_frame(0x21, b"")) == sync.encode()  # the host lost our answer: resend it
    assert front.feed(good) == sync.encode()  # a repeated packet is answered from memory, not run twice
    truncated = p.encode_frame(0x22, p.encode_abort())[:-1]
    assert front.feed(truncated) == b""
    assert front.pending()
    out = p.V3Reader().feed(front.feed(p.encode_frame(0x23, p.encode_abort())))
    assert [f.packet_id for f in out if isinstance(f, p.V3Frame)] == [0x22, 0x23]  # empty frame for 0x22


def test_mode_machine_and_passwords() -> None:
    front, core = _front()
    assert _add(front, 1, 1, p.Cmd.OPEN_RECEIPT, b"\x00\x01")[1].data == b"\x55\x66\x00"  # type: ignore[union-attr]
    _status_of(front, 2, p.BufferCmd.ACK, 1)

    def run(packet: int, command: int, params: bytes = b"", password: int = 0) -> bytes:
        frames = _send(front, packet, p.encode_add(packet, p.encode_command(command, params, password), p.AddFlags.NONE))
        return p.decode_buffer_answer(frames[1].payload).data

    assert run(3, p.Cmd.ENTER_MODE, p.EnterMode(1, 31).encode()) == b"\x55\x8c\x00"  # wrong → 140
    assert run(4, p.Cmd.ENTER_MODE, p.EnterMode(3, 1).encode()) == b"\x55\x8c\x00"  # cashier cannot Z
    assert run(5, p.Cmd.ENTER_MODE, b"\x01\x00\x00\x00\xab") == b"\x55\xa4\x00"  # not BCD → 164
    assert run(6, p.Cmd.ENTER_MODE, b"\x01") == b"\x55\x14\x00"  # bad length → 20
    assert run(7, p.Cmd.STATUS, password=1234) == b"\x55\x8c\x00"  # wrong access password
    assert run(8, 0x01) == b"\x55\x7a\x00"  # unknown command → 122
    assert run(9, p.Cmd.ENTER_MODE, p.EnterMode(1, 1).encode()) == b"\x55\x00\x00"
    assert run(10, p.Cmd.ENTER_MODE, p.EnterMode(3, 30).encode()) == b"\x55\x66\x00"  # leave mode 1 first
    assert run(11, p.Cmd.OPEN_RECEIPT, b"\x00\x01") == b"\x55\x00\x00"  # opens the shift implicitly
    assert core.shift.is_open and core.document is not None
    assert run(12, p.Cmd.EXIT_MODE) == b"\x55\x9b\x00"  # receipt open → 155
    state = p.StateAnswer.decode(run(13, p.Cmd.STATE)[1:])
    assert state.mode == 1
    block = p.StatusBlock.decode(run(14, p.Cmd.STATUS))
    assert (block.mode, block.receipt_state, block.cashier, block.shift_number) == (1, 1, 1, 0)
    assert run(15, p.Cmd.CANCEL_RECEIPT) == b"\x55\x00\x00"
    assert run(16, p.Cmd.EXIT_MODE) == b"\x55\x00\x00"
    version = p.FirmwareVersion.decode(run(17, p.Cmd.FIRMWARE, b"\x01")[2:])
    assert version.text == "3.0.0.8000"
    assert run(18, p.Cmd.CASH_IN_DRAWER)[0] == 0x4D


def test_requisites_and_fn_queries() -> None:
    front, core = _front()
    sync, result = _add(front, 1, 1, p.Cmd.READ_REQUISITE, p.ReadRequisite(p.Tag.TAX_SYSTEMS).encode())
    assert result is not None and p.decode_tlvs(result.data[3:]) == [(1062, b"\x02")]
    sync, result = _add(front, 2, 2, p.Cmd.READ_REQUISITE, p.ReadRequisite(9999).encode())
    assert result is not None and result.data == b"\x55\xda\x00"  # 218: no such data
    _status_of(front, 5, p.BufferCmd.ACK, 2)  # a failed task stops the buffer until acknowledged
    data = p.encode_tlv(p.Tag.CASHIER, "Иванов".encode("cp866"))
    _add(front, 3, 3, p.Cmd.WRITE_REQUISITE, p.WriteRequisite(data[:3], blocks=2, block=0).encode())
    _add(front, 4, 4, p.Cmd.WRITE_REQUISITE, p.WriteRequisite(data[3:], blocks=2, block=1).encode())
    assert describe_state(core)["requisites"] == {1021: "Иванов".encode("cp866").hex()}
    answers = {sub: _add(front, 10 + sub, 10 + sub, p.Cmd.FN, bytes([sub]))[1] for sub in (0x10, 0x31, 0x32, 0x33, 0x42, 0x43)}
    assert p.ShiftParams.decode(answers[0x10].data[2:]) == p.ShiftParams(0, 0, 1)  # type: ignore[union-attr]
    assert answers[0x31].data[2:].decode().strip() == core.fn.serial  # type: ignore[union-attr]
    validity = p.FnValidity.decode(answers[0x32].data[2:])  # type: ignore[union-attr]
    assert validity == p.FnValidity(core.fn_valid_until(), 29, 1)
    assert answers[0x42].data[2:] == b"\x00\x00"  # type: ignore[union-attr]
    totals = p.RegistrationTotals.decode(answers[0x43].data[2:])  # type: ignore[union-attr]
    assert (totals.fd_number, totals.tax_systems, totals.inn) == (1, 2, core.fn.inn)
    assert _add(front, 99, 99, p.Cmd.FN, b"\x77")[1].data == b"\x55\x7a\x00"  # type: ignore[union-attr]


def test_v2_transport() -> None:
    front, _ = _front()
    assert front.feed(bytes([p.ENQ])) == bytes([p.ACK])
    assert front.feed(bytes.fromhex("02 00 00 3F 03 3C")) == bytes([p.ACK])  # §3.4 status request vector
    assert front.feed(bytes([p.EOT])) == bytes([p.ENQ])
    answer = front.feed(bytes([p.ACK]))
    (frame,) = p.V2Reader().feed(answer)
    assert isinstance(frame, p.V2Frame) and p.StatusBlock.decode(frame.data).model == 61
    assert front.feed(bytes([p.NAK])) == answer  # NAK: the same frame again
    assert front.feed(bytes([p.ACK])) == bytes([p.EOT])
    assert front.feed(bytes.fromhex("02 00 00 3F 03 00")) == bytes([p.NAK])  # bad LRC
    # the v3 transport still works on the same link
    assert _add(front, 1, 1, p.Cmd.STATE)[1] is not None


def test_powered_off_register_answers_nothing() -> None:
    front, core = _front()
    core.set_power(False)
    assert front.feed(p.encode_frame(1, p.encode_abort())) == b""
    core.set_power(True)
    assert _add(front, 2, 1, p.Cmd.STATUS)[1] is not None


# ------------------------------------------------------------------ malformed input never kills the emulator


def _still_answers(front: AtolFrontEnd) -> None:
    front.reset()  # what the inter-byte timeout does to an unfinished frame
    out = p.V3Reader().feed(front.feed(p.encode_frame(0x33, p.encode_add(0xDE, p.encode_command(p.Cmd.STATE), p.AddFlags.NONE))))
    frames = [f for f in out if isinstance(f, p.V3Frame) and f.packet_id in (0x33, p.ASYNC_ID) and f.payload]
    assert [f.packet_id for f in frames] == [0x33, p.ASYNC_ID]
    result = p.decode_buffer_answer(frames[1].payload)
    assert result.tid == 0xDE and result.data[0] == 0x55


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_kill_the_emulator(noise: bytes) -> None:
    front, _ = _front()
    front.feed(noise)
    _still_answers(front)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 0xDF), st.binary(max_size=200))
def test_random_payloads_in_good_frames_never_kill_the_emulator(packet_id: int, payload: bytes) -> None:
    front, _ = _front()
    front.feed(p.encode_frame(packet_id, payload))
    _still_answers(front)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(int(c) for c in p.Cmd) + [0x00, 0xFF]), st.binary(max_size=120),
       st.sampled_from([0, 1, 30]))
def test_random_tasks_never_kill_the_emulator(command: int, params: bytes, mode_password: int) -> None:
    front, core = _front()
    _add(front, 1, 1, p.Cmd.ENTER_MODE, p.EnterMode(1, 30).encode(), flags=p.AddFlags.NONE)
    frames = _send(front, 2, p.encode_add(2, p.encode_command(command, params), p.AddFlags.NEED_RESULT | p.AddFlags.IGNORE_ERROR))
    assert frames[0].packet_id == 2
    result = p.decode_buffer_answer(frames[1].payload)
    assert result.is_async and result.data  # every task gets an application answer
    assert not any(entry.event == "emulator error" for entry in core.journal)
    _still_answers(front)


def test_garbage_then_a_good_frame_over_the_wire(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    kkt.link.write(b"\x00\x13\xfe\x05\x00\x70\xc1\x01\x02" + bytes(range(0x20, 0x40)))
    assert kkt.status().shift is ShiftState.CLOSED  # the stray bytes cost nothing but a resend request
    kkt.open_shift()


def test_driver_recovers_from_a_stopped_task_buffer(rig) -> None:  # type: ignore[no-untyped-def]
    kkt, core = rig
    # another client left a failed, unacknowledged task: the buffer is stopped (A5 for new tasks)
    kkt.link.write(p.encode_frame(0x70, p.encode_add(0xDE, p.encode_command(p.Cmd.Z_REPORT))))
    reader, seen = p.V3Reader(), []
    while p.ASYNC_ID not in seen:
        seen += [f.packet_id for f in reader.feed(kkt.link.read(kkt.link.deadline(2))) if isinstance(f, p.V3Frame)]
    assert describe_state(core)["stopped_by"] == 0xDE
    assert kkt.status().shift is ShiftState.CLOSED  # A5 → ACK, ABORT, retry
    assert "ABORT and retry" in kkt.trace.render() and describe_state(core)["stopped_by"] is None


class FlakyLink:
    """A front-end wrapper that garbles the link once each way: it asks for the first ADD again
    (empty frame) and corrupts the CRC of the first asynchronous result."""

    def __init__(self, inner: AtolFrontEnd) -> None:
        self.inner = inner
        self.asked_resend = False
        self.corrupted_async = False
        self._reader = p.V3Reader()

    def pending(self) -> bool:
        return self.inner.pending()

    def reset(self) -> None:
        self.inner.reset()

    def feed(self, data: bytes) -> bytes:
        frames = [f for f in self._reader.feed(data) if isinstance(f, p.V3Frame)]
        if not self.asked_resend and frames and frames[0].payload[:1] == b"\xc1":
            self.asked_resend = True
            return p.encode_frame(frames[0].packet_id, b"")
        out = bytearray()
        for frame in p.V3Reader().feed(self.inner.feed(data)):
            assert isinstance(frame, p.V3Frame)
            raw = frame.encode()
            if frame.packet_id == p.ASYNC_ID and not self.corrupted_async:
                self.corrupted_async = True
                crc = p.crc8(bytes([frame.packet_id]) + frame.payload) ^ 0x01
                raw = bytes([0xFE, len(frame.payload) & 0x7F, len(frame.payload) >> 7, frame.packet_id])
                raw += p.escape_v3(frame.payload + bytes([crc]))
            out += raw
        return bytes(out)


def test_driver_survives_resend_requests_and_a_lost_async_result() -> None:
    core = build_emulator("atol").core
    links: list[FlakyLink] = []

    def factory() -> FlakyLink:
        links.append(FlakyLink(AtolFrontEnd(core)))
        return links[-1]

    server = serve(factory, "tcp://127.0.0.1:0")
    transport = open_transport(server.url, timeout=2.0, trace=Trace(FAMILY.describe_bytes))
    try:
        driver = AtolDriver(Link(transport, timeout_scale=0.3), model="atol")
        driver.connect()
        assert driver.status().shift is ShiftState.CLOSED
        assert links[0].asked_resend and links[0].corrupted_async
        trace = transport.trace.render()
        assert "resend request" in trace and "CORRUPT" in trace and "REQ tid=" in trace
    finally:
        transport.close()
        server.close()


def test_trace_decoder_and_family() -> None:
    assert (FAMILY.name, MODELS["atol"].baudrate, FAMILY.inter_byte_timeout) == ("atol", 115200, 0.5)
    assert "ADD tid=0x01" in FAMILY.describe_bytes(p.encode_frame(2, p.encode_add(1, p.encode_command(p.Cmd.STATUS))))


def test_raw_frame_client_against_kkt_hil_emulate_atol() -> None:
    """Issue acceptance: the reference-only client against `kkt-hil emulate atol` over TCP, with
    paper pulled through the control channel."""
    import json
    import selectors
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "emulate", "atol", "--listen", "tcp://127.0.0.1:0",
         "--control", "tcp://127.0.0.1:0", "--frozen-clock", "--clock", START.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        banner = b""
        while banner.count(b"\n") < 2:
            assert sel.select(10), "no banner from kkt-hil emulate atol"
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, proc.stderr.read() if proc.stderr else b""
            banner += chunk
        listening, control = banner.decode().splitlines()[:2]
        host, port = listening.split("//")[1].split(":")
        chost, cport = control.split("//")[1].split(":")
        sock = socket.create_connection((host, int(port)), timeout=5)
        ctl = socket.create_connection((chost, int(cport)), timeout=5).makefile("rw")

        def lab(request: dict) -> dict:
            ctl.write(json.dumps(request) + "\n")
            ctl.flush()
            reply = json.loads(ctl.readline())
            assert reply["ok"], reply
            return reply

        client = RawClient(sock.fileno())
        assert client.exchange(b"\xc4", expect=1)[0][1] == b"\xa3"
        status, block = client.task(b"\x3f")
        assert status == 0xA6 and block[0] == 0x44 and len(block) == 30 and block[14] == 61
        assert client.task(b"\x56\x01" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x92\x00\x01") == (0xA6, b"\x55\x00\x00")
        name = "Сахар".encode("cp866").ljust(64, b"\x00")
        position = b"\x00" + name + _bcd(10000, 6) + _bcd(1000, 5) + b"\x01\x00" + bytes(6) + b"\x06\x00" + bytes(16) + b"\x00"
        assert client.task(b"\xe6" + position) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x99\x00\x01" + _bcd(10000, 5))[0] == 0xA6
        assert client.task(b"\x4a\x00\x01" + bytes(5)) == (0xA6, b"\x55\x00\x00")
        lab({"op": "paper", "state": "out"})
        assert client.task(b"\x92\x00\x01") == (0xA7, b"\x55\x67\x00")  # 103: no paper
        lab({"op": "paper", "state": "ok"})
        assert client.task(b"\x48") == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x56\x03" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x5a") == (0xA6, b"\x55\x00\x00")  # Z in mode 3
        assert lab({"op": "state"})["state"]["shift"]["is_open"] is False
        status, fn = client.task(b"\xa4\x30")
        assert fn[:2] == b"\x55\x00" and fn[2] == 0x03
        status, ofd = client.task(b"\xa4\x20")
        assert int.from_bytes(ofd[2:][2:4], "little") == lab({"op": "state"})["state"]["ofd_queue"]["count"] > 0
        sock.close()
        ctl.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
