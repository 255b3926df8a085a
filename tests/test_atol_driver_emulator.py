"""АТОЛ specifics of the driver against the emulator, over a pty and TCP: identity and counters,
the АТОЛ codes of every refusal, modes left behind and restored by ``connect()``, a synchronous
result, and a link that is garbled (stray bytes, a stopped task buffer, resend requests, a lost
asynchronous result).  What every family does is in tests/contract.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from devices.atol import protocol as p
from devices.atol.driver import AtolDriver
from devices.atol.emulator import AtolFrontEnd, describe_state
from devices.atol.family import FAMILY
from devices.emulator.build import build_emulator
from devices.emulator.serve import serve
from devices.models import MODELS
from harness.device import DocumentKind, Item, PaperState, ShiftState, TaxSystem
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
from harness.link import Link
from harness.trace import Trace
from harness.transport import open_transport

from .atol_common import START
from .driver_rigs import driver_rig

SUGAR = Item("Сахар", Decimal("100.00"))


rig = driver_rig("atol", AtolDriver, start=START, timeout_scale=0.3)


# ------------------------------------------------------------------ driver vs emulator


def test_atol_identity_counters_and_trace(rig) -> None:
    kkt, _core = rig
    info = kkt.info()
    assert (info.model_name, info.protocol, info.firmware) == ("АТОЛ 30Ф", "atol-v3", "3.0.8000")
    status = kkt.status()
    assert status.raw["mode"] == 0  # connect leaves the register in the select mode
    fn = kkt.fn()  # АТОЛ reads registrations done / left (A4h/32h); Pirit has no such counter
    assert (fn.registrations_done, fn.registrations_left, fn.last_registration_fd) == (1, 29, 1)
    assert "3Fh STATUS" in kkt.trace.render() and "ASYNC_RESULT" in kkt.trace.render()


def test_receipt_on_a_closed_shift_opens_it(rig) -> None:
    kkt, core = rig
    receipt = kkt.sell([SUGAR])
    assert (receipt.number, receipt.shift_number) == (3, 1)  # FD 2 is the implicit shift opening
    assert core.fn.archive[1].kind == DocumentKind.SHIFT_OPEN
    assert kkt.status().shift is ShiftState.OPEN


def test_atol_codes_of_the_refusals(rig) -> None:
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


def test_atol_code_of_an_expired_shift(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    core.lab_clock_advance(86400 + 60)
    with pytest.raises(ShiftExpired) as expired:
        kkt.sell([SUGAR])
    assert expired.value.code == 136


def test_atol_code_of_a_pending_receipt_printout(rig) -> None:
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


def test_atol_code_of_an_interrupted_z(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(NoPaper):
        kkt.close_shift()
    core.set_paper(PaperState.OK)
    with pytest.raises(PendingPrint) as pending:
        kkt.open_shift()
    assert pending.value.code == 26  # "report with clearing interrupted"


def test_atol_codes_of_clock_and_reregistration(rig) -> None:
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
    core.set_ofd(False)
    kkt.sell([SUGAR], tax_system=TaxSystem.OSN)  # OFD offline: documents stay unsent
    kkt.close_shift()
    with pytest.raises(UnsentDocuments) as unsent:  # profile: ATOL refuses (237)
        kkt.reregister(TaxSystem.USN_INCOME)
    assert unsent.value.code == 237
    core.set_ofd(True)
    kkt.reregister(TaxSystem.USN_INCOME)
    assert kkt.fn().tax_systems == TaxSystem.USN_INCOME


def test_atol_code_of_the_ofd_block(rig) -> None:
    kkt, core = rig
    core.set_ofd(False)
    kkt.sell([SUGAR])
    kkt.close_shift()
    core.lab_clock_advance(timedelta(days=30, minutes=1).total_seconds())
    with pytest.raises(OfdTimeout) as blocked:
        kkt.open_shift()
    assert blocked.value.code == 239


def test_power_off_loses_the_mode_and_reconnect_restores_select(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    core.set_power(False)
    with pytest.raises(LinkTimeout):
        kkt.call(p.Cmd.STATUS, timeout=1.0)
    core.set_power(True)
    kkt.connect()
    assert kkt.status().raw["mode"] == 0


def test_connect_cancels_an_open_receipt_and_leaves_the_mode(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    kkt._enter(p.Mode.REGISTRATION)  # what a crashed POS leaves behind
    kkt.call(p.Cmd.OPEN_RECEIPT, p.OpenReceipt(p.ReceiptType.SALE).encode())
    assert core.document is not None
    kkt.connect()
    assert core.document is None and kkt.status().raw["mode"] == 0


def test_result_in_the_synchronous_answer(rig) -> None:
    kkt, core = rig
    core.wire_memory["atol_sync_result"] = "result"
    assert kkt.sell([SUGAR]).number == 3
    with pytest.raises(ShiftOpen):
        kkt.open_shift()
    assert "RESULT: U err=0" in kkt.trace.render()


# ------------------------------------------------------------------ a garbled link, over the wire


def test_garbage_then_a_good_frame_over_the_wire(rig) -> None:
    kkt, _core = rig
    kkt.link.write(b"\x00\x13\xfe\x05\x00\x70\xc1\x01\x02" + bytes(range(0x20, 0x40)))
    assert kkt.status().shift is ShiftState.CLOSED  # the stray bytes cost nothing but a resend request
    kkt.open_shift()


def test_driver_recovers_from_a_stopped_task_buffer(rig) -> None:
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
