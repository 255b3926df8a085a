"""АТОЛ 58h / B3h / 91h, the A4h/10h encoding setting, every family setting reachable, v2 only
after the handshake.  Expected answers are hex written from reference §3.5.3/§3.5.4 and the
layouts of devices/atol/protocol/registers.py, not produced by the emulator's encoders.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from devices.atol import protocol as p
from devices.atol.driver import AtolDriver
from devices.atol.emulator import AtolFrontEnd, describe_state
from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore
from harness import open_kkt
from harness.cli.common import settings_of
from harness.device import Item
from harness.errors import DeviceError
from harness.families import family

from .atol_common import START, h


def _front(**settings: str) -> tuple[AtolFrontEnd, FiscalCore]:
    core = build_emulator("atol", {"clock": START.isoformat(), **settings}).core
    return AtolFrontEnd(core), core


def _task(front: AtolFrontEnd, task: str, tid: int = 1) -> bytes:
    """One task (hex: access password + command + params) in a v3 ADD with IgnoreError only (not
    kept, a failure stops nothing); the async answer payload."""
    frames = p.V3Reader().feed(front.feed(p.encode_frame(tid, bytes([0xC1, 0x02, tid]) + h(task))))
    answers = [f for f in frames if isinstance(f, p.V3Frame) and f.packet_id == p.ASYNC_ID]
    assert len(answers) == 1
    payload = answers[0].payload
    assert payload[0] in (0xA6, 0xA7) and payload[1] == tid  # AsyncResult / AsyncError, TId
    return payload[2:]


def _sell(front: AtolFrontEnd) -> None:
    """56h mode 1 (password 30), 92h sale, E6h 100.00 × 1, 99h cash 100.00, 4Ah, 48h."""
    assert _task(front, "0000 56 01 00000030", 1) == h("55 00 00")
    assert _task(front, "0000 92 00 01", 2) == h("55 00 00")
    name = "Товар".encode("cp866").ljust(64, b"\x00").hex()
    position = f"0000 E6 00 {name} 000000010000 0000001000 00 00 000000000000 06 01 {'00' * 16} 00"
    assert _task(front, position, 3) == h("55 00 00")
    assert _task(front, "0000 99 00 01 0000010000", 4)[:2] == h("55 00")
    assert _task(front, "0000 4A 00 01 0000000000", 5) == h("55 00 00")
    assert _task(front, "0000 48", 6) == h("55 00 00")


# ------------------------------------------------------------------ 58h / 91h / B3h bytes


def test_last_shift_totals_bytes() -> None:
    front, _ = _front()
    assert _task(front, "0000 58") == h("55 00" + "00" * 14)
    _sell(front)
    # income 100.00 = 10000 kopecks in 7 BCD bytes, expense 0
    assert _task(front, "0000 58", 7) == h("55 00 00000000010000 00000000000000")
    assert _task(front, "0000 58 01", 8) == h("55 14 00")  # 20: bad length


def test_read_register_bytes() -> None:
    front, core = _front()
    assert _task(front, "0000 91 11 00 00") == h("55 00 201230 100000")  # 17: YY MM DD hh mm ss
    serial = "".join(c for c in core.serial if c.isdigit())[-8:]
    assert _task(front, "0000 91 16 00 00", 2) == h("55 00" + serial)  # 22: serial, 4 BCD
    assert _task(front, "0000 91 13 00 00", 3) == h("55 00 00 00 0001 00000000")  # 19: closed, next receipt 1
    _sell(front)
    assert _task(front, "0000 91 0A 00 00", 10) == h("55 00 00000000010000")  # 10: cash 100.00
    # 19: no receipt open, shift open (the sale opened it), next receipt 2, shift 1
    assert _task(front, "0000 91 13 00 00", 11) == h("55 00 00 01 0002 00000001")
    assert _task(front, "0000 91 0A", 12) == h("55 00 00000000010000")  # params may be left out


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        ("0000 91 63 00 00", "55 6C 00"),  # register 99: 108 wrong register number
        ("0000 91", "55 14 00"),  # no register: 20 bad length
        ("0000 91 0A 00 00 00", "55 14 00"),  # too many parameters
        ("0000 91 0A 01 00", "55 13 00"),  # a parameter the register does not take: 19
        ("0000 B3 00", "55 14 00"),
        ("1234 91 37 00 00", "55 8C 00"),  # wrong access password: 140
    ],
)
def test_diagnostic_reads_refuse_bad_requests(task: str, answer: str) -> None:
    front, _ = _front()
    assert _task(front, task) == h(answer)


def test_last_error_and_register_55_follow_the_last_command() -> None:
    front, core = _front()
    assert _task(front, "0000 B3") == h("55 00 00 00")  # nothing failed yet
    assert _task(front, "0000 5A", 2) == h("55 66 00")  # Z in mode 0: 102
    front.feed(p.encode_frame(3, p.encode_ack(2)))  # the failed task stops the buffer until acknowledged
    assert _task(front, "0000 B3", 4) == h("55 00 66 5A")  # error 102, command 5Ah
    assert _task(front, "0000 91 37 00 00", 5) == h("55 00 66 0000")  # register 55: 102, no extended code
    assert _task(front, "0000 91 63 00 00", 6) == h("55 6C 00")  # a failed read leaves the record
    front.feed(p.encode_frame(7, p.encode_ack(6)))
    assert _task(front, "0000 B3", 8) == h("55 00 66 5A")
    assert _task(front, "0000 3F", 9)[0] == 0x44  # any other command: the record is its outcome
    assert _task(front, "0000 B3", 10) == h("55 00 00 3F")
    assert describe_state(core)["last_error"] == {"command": 0x3F, "error": 0, "extended": 0}
    core.set_power(False)
    core.set_power(True)
    assert _task(front, "0000 B3", 11) == h("55 00 00 00")  # power-off forgets it


# ------------------------------------------------------------------ A4h/10h encoding


@pytest.mark.parametrize(
    ("setting", "answer"),
    [({}, "55 00 00 0C00 0F00"), ({"atol_a4_10_encoding": "binary"}, "55 00 00 0C00 0F00"),
     ({"atol_a4_10_encoding": "bcd"}, "55 00 00 1200 1500")],
)  # fmt: skip
def test_a4_10_encoding_setting_bytes(setting: dict[str, str], answer: str) -> None:
    front, core = _front(**setting)
    core.shift.number, core.shift.receipts = 12, 14  # closed shift 12, next receipt 15
    assert _task(front, "0000 A4 10") == h(answer)


@pytest.mark.parametrize("encoding", ["binary", "bcd"])
def test_driver_reads_a4_10_in_either_encoding(encoding: str) -> None:
    with open_kkt(f"emulator:atol?atol_a4_10_encoding={encoding}&clock={START.isoformat()}") as handle:
        assert handle.emulator is not None
        core: FiscalCore = handle.emulator.core  # type: ignore[attr-defined]  # the emulator's own
        core.shift.number, core.shift.receipts = 12, 14
        kkt = handle.kkt
        assert isinstance(kkt, AtolDriver)
        assert kkt.status().shift_number == 12  # learned from 3Fh: 12 ≠ 0x12
        assert kkt._a4_10 == p.NUMBER_ENCODINGS[encoding]
        assert kkt.open_shift().shift_number == 13


def test_driver_takes_a_told_encoding_and_refuses_a_bad_one() -> None:
    with open_kkt("emulator:atol?atol_a4_10_encoding=bcd") as handle:
        told = AtolDriver(handle.link, model="atol", a4_10_encoding="bcd")
        handle.emulator.core.shift.number = 21  # type: ignore[union-attr]
        assert told._shift_params().shift_number == 21
    with pytest.raises(Exception, match="a4_10_encoding is binary or bcd"):
        AtolDriver(handle.link, model="atol", a4_10_encoding="bcd-be")


# ------------------------------------------------------------------ through the driver


def test_driver_reads_totals_last_error_and_register_55() -> None:
    with open_kkt(f"emulator:atol?clock={START.isoformat()}") as handle:
        kkt = handle.kkt
        assert isinstance(kkt, AtolDriver)
        kkt.sell([Item("Товар", Decimal("250.00"))])
        assert kkt.last_shift_totals() == p.LastShiftTotals(Decimal("250.00"), Decimal("0.00"))
        with pytest.raises(DeviceError):
            kkt.call(p.Cmd.Z_REPORT)  # mode 0: 102
        assert kkt.last_error() == p.LastError(102, 0x5A)
        assert kkt.extended_error() == p.ExtendedError(102, 0)
        assert kkt.read_register(p.Register.CASH) == h("00000000025000")
        with pytest.raises(DeviceError, match="wrong register number"):
            kkt.read_register(99)


# ------------------------------------------------------------------ every setting, both ways


SETTINGS = [(s.name, value) for s in family("atol").settings for value in s.choices]


@pytest.mark.parametrize(("name", "value"), SETTINGS)
def test_every_atol_setting_by_spec_and_by_cli(name: str, value: str) -> None:
    assert {"atol_sync_result", "atol_a4_10_encoding"} <= {s.name for s in family("atol").settings}
    with open_kkt(f"emulator:atol?{name}={value}") as handle:
        assert handle.emulator is not None
        assert handle.emulator.core.profile.setting(name) == value  # type: ignore[attr-defined]
        handle.kkt.status()
    emulated = family("atol").start_emulator("atol", settings_of([f"{name}={value}"]))  # `--set` parser
    try:
        assert emulated.core.profile.setting(name) == value  # type: ignore[attr-defined]
    finally:
        emulated.close()
    with pytest.raises(ValueError, match=name):
        family("atol").start_emulator("atol", settings_of([f"{name}=bogus"]))


def test_sync_result_setting_reaches_the_wire() -> None:
    front, _ = _front(atol_sync_result="result")
    sync = p.V3Reader().feed(front.feed(p.encode_frame(1, h("C1 01 01 0000 58"))))[0]
    assert isinstance(sync, p.V3Frame) and sync.payload == h("A3 55 00" + "00" * 14)  # A3 + result at once


# ------------------------------------------------------------------ v2 only after the handshake


def test_v2_frames_without_the_handshake_are_neither_answered_nor_run() -> None:
    front, core = _front()
    enter = h("02 00 00 56 01 00 00 00 30 03") + bytes([0x00 ^ 0x00 ^ 0x56 ^ 0x01 ^ 0x30 ^ 0x03])
    assert front.feed(enter) == b""  # idle line: no ACK, no NAK
    assert describe_state(core)["mode"] == 0  # and not executed
    assert front.feed(bytes([p.EOT])) == b""  # nothing to offer
    assert front.feed(bytes([p.ENQ])) == bytes([p.ACK])
    assert front.feed(enter) == bytes([p.ACK])
    assert describe_state(core)["mode"] == 1
    assert front.feed(bytes([p.EOT])) == bytes([p.ENQ])
    (frame,) = p.V2Reader().feed(front.feed(bytes([p.ACK])))
    assert isinstance(frame, p.V2Frame) and frame.data == h("55 00 00")
    assert front.feed(bytes([p.ACK])) == bytes([p.EOT])
    exit_mode = h("02 00 00 48 03") + bytes([0x48 ^ 0x03])
    assert front.feed(exit_mode) == b""  # the exchange is over: a new one needs a new ENQ
    assert describe_state(core)["mode"] == 1
