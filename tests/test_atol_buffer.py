"""The ATOL task buffer, v2 transport and field encodings of the pure codec (devices/atol/protocol):
buffer commands and answers round-tripped and refused when malformed, the v2 vectors of
protocols.md §3.4 with byte stuffing, LRC and control bytes, and BCD, little-endian, money,
quantity and CP866 text fields.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.protocol import (
    AddFlags,
    BufferAnswer,
    BufferCmd,
    BufferCommand,
    BufferStatus,
    Cmd,
    CodecError,
    CorruptReason,
    V2Control,
    V2Corrupt,
    V2Frame,
    V2Reader,
)

from .atol_common import h, split_at

# ------------------------------------------------------------------------------------------------
# task buffer
# ------------------------------------------------------------------------------------------------

tids = st.integers(0, 255)
tasks = st.binary(min_size=1, max_size=64)
flag_values = st.integers(0, 7).map(AddFlags)


@given(tids, tasks, flag_values)
def test_add_round_trip(tid: int, task: bytes, flags: AddFlags) -> None:
    payload = p.encode_add(tid, task, flags)
    assert payload[:3] == bytes([0xC1, int(flags), tid])
    cmd = p.decode_buffer_command(payload)
    assert cmd == BufferCommand(BufferCmd.ADD, tid=tid, flags=flags, task=task)
    assert cmd.encode() == payload


@given(tids, tids, tasks, flag_values)
def test_ack_add_round_trip(ack_tid: int, tid: int, task: bytes, flags: AddFlags) -> None:
    payload = p.encode_ack_add(ack_tid, tid, task, flags)
    assert payload[:4] == bytes([0xC5, ack_tid, int(flags), tid])
    cmd = p.decode_buffer_command(payload)
    assert (cmd.kind, cmd.ack_tid, cmd.tid, cmd.flags, cmd.task) == (BufferCmd.ACK_ADD, ack_tid, tid, flags, task)
    assert cmd.encode() == payload


@given(tids)
def test_ack_req_abort_round_trip(tid: int) -> None:
    assert p.decode_buffer_command(p.encode_ack(tid)) == BufferCommand(BufferCmd.ACK, tid=tid)
    assert p.decode_buffer_command(p.encode_req(tid)) == BufferCommand(BufferCmd.REQ, tid=tid)
    assert p.decode_buffer_command(p.encode_abort()) == BufferCommand(BufferCmd.ABORT)
    assert p.encode_req(tid) == bytes([0xC3, tid])


@pytest.mark.parametrize("payload", ["", "C0", "C1 01 02", "C2", "C2 01 02", "C4 00", "C5 01 01 02"])
def test_malformed_buffer_commands(payload: str) -> None:
    with pytest.raises(CodecError):
        p.decode_buffer_command(h(payload))


def test_add_flag_bits() -> None:
    assert (AddFlags.NEED_RESULT, AddFlags.IGNORE_ERROR, AddFlags.WAIT_ASYNC_DATA) == (1, 2, 4)
    assert [s.value for s in BufferStatus] == [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xB1, 0xB2, 0xB3, 0xB4]


@given(st.sampled_from(list(BufferStatus)), tids, st.binary(max_size=40), st.booleans())
def test_buffer_answer_round_trip(status: BufferStatus, tid: int, data: bytes, sync_tid: bool) -> None:
    carries_tid = status in p.ASYNC_STATUSES or (sync_tid and status < 0xB0)
    answer = BufferAnswer(status, tid if carries_tid else None, data)
    payload = answer.encode(sync_tid=sync_tid)
    assert payload[0] == status
    assert payload[1:] == (bytes([tid]) + data if carries_tid else data)
    assert p.decode_buffer_answer(payload, sync_tid=sync_tid) == answer


def test_sync_answer_default_has_no_tid() -> None:
    assert p.decode_buffer_answer(h("A3 55 00 00")) == BufferAnswer(BufferStatus.RESULT, None, h("55 00 00"))
    assert p.decode_buffer_answer(h("A3 07 55 00 00"), sync_tid=True) == BufferAnswer(
        BufferStatus.RESULT, 7, h("55 00 00")
    )
    assert p.decode_buffer_answer(h("B3"), sync_tid=True) == BufferAnswer(BufferStatus.NOT_FOUND, None, b"")
    with pytest.raises(CodecError):
        p.encode_status(BufferStatus.ASYNC_ERROR, b"")  # async needs a TId
    with pytest.raises(CodecError):
        p.encode_status(BufferStatus.PENDING, tid=3)  # default layout has none
    with pytest.raises(CodecError):
        p.decode_buffer_answer(h("A6"))
    with pytest.raises(CodecError):
        p.decode_buffer_answer(h("99 00"))


def test_buffer_answer_properties() -> None:
    assert BufferAnswer(BufferStatus.ASYNC_ERROR, 1).is_async
    assert BufferAnswer(BufferStatus.ASYNC_ERROR, 1).is_final
    assert not BufferAnswer(BufferStatus.PENDING).is_final


# ------------------------------------------------------------------------------------------------
# v2 transport (§3.4)
# ------------------------------------------------------------------------------------------------

V2_VECTORS = [
    pytest.param(h("1F 00 FF 10 02 03 1A"), "02 1F 00 FF 10 10 02 10 03 1A 03 E8", id="stuffing"),
    pytest.param(h("00 00 3F"), "02 00 00 3F 03 3C", id="status-request"),
]


@pytest.mark.parametrize(("data", "wire"), V2_VECTORS)
def test_v2_vector_encode(data: bytes, wire: str) -> None:
    assert p.encode_v2_frame(data) == h(wire)


@pytest.mark.parametrize(("data", "wire"), V2_VECTORS)
def test_v2_vector_decode(data: bytes, wire: str) -> None:
    assert V2Reader().feed(h(wire)) == [V2Frame(data)]


def test_v2_status_request_is_encode_command() -> None:
    assert p.encode_v2_frame(p.encode_command(Cmd.STATUS)) == h("02 00 00 3F 03 3C")


v2_data = st.lists(st.one_of(st.sampled_from([0x10, 0x03, 0x02, 0x05, 0x06]), st.integers(0, 255)), max_size=200).map(
    bytes
)


@given(
    st.lists(st.one_of(v2_data, st.sampled_from(list(V2Control))), min_size=1, max_size=8),
    st.lists(st.integers(0, 10_000), max_size=10),
)
def test_v2_round_trip_any_chunking(items: list[bytes | V2Control], cuts: list[int]) -> None:
    stream = b"".join(bytes([i]) if isinstance(i, V2Control) else p.encode_v2_frame(i) for i in items)
    reader = V2Reader()
    got = [item for chunk in split_at(stream, cuts) for item in reader.feed(chunk)]
    assert got == [i if isinstance(i, V2Control) else V2Frame(i) for i in items]


def test_v2_bad_lrc_and_control_bytes() -> None:
    wire = bytearray(p.encode_v2_frame(h("00 00 45")))
    wire[-1] ^= 0x01
    got = V2Reader().feed(b"\x05" + bytes(wire) + b"\x15\x04")
    assert got[0] == V2Control.ENQ
    assert isinstance(got[1], V2Corrupt)
    assert got[1].reason == CorruptReason.BAD_LRC and got[1].data == h("00 00 45")
    assert got[2:] == [V2Control.NAK, V2Control.EOT]
    assert (p.ENQ, p.ACK, p.NAK, p.EOT, p.DLE) == (0x05, 0x06, 0x15, 0x04, 0x10)


def test_v2_frame_without_etx_is_cut_at_limit() -> None:
    reader = V2Reader(max_data=8)
    got = reader.feed(b"\x02" + bytes(9) + p.encode_v2_frame(b"\x01"))
    assert isinstance(got[0], V2Corrupt) and got[0].reason == CorruptReason.BAD_LENGTH
    # the bytes after the cut are garbage until the next STX; the next frame is still found
    assert got[-1] == V2Frame(b"\x01")


# ------------------------------------------------------------------------------------------------
# numbers and text
# ------------------------------------------------------------------------------------------------


def test_bcd_known_values() -> None:
    assert p.to_bcd(0, 2) == h("00 00")
    assert p.to_bcd(1234, 3) == h("00 12 34")
    assert p.from_bcd(h("12 34 56 78")) == 12345678
    assert p.to_bcd(99, 1) == h("99")
    for bad in (lambda: p.to_bcd(100, 1), lambda: p.to_bcd(-1, 2), lambda: p.from_bcd(h("1A"))):
        with pytest.raises(CodecError):
            bad()


@given(st.integers(1, 8).flatmap(lambda w: st.tuples(st.just(w), st.integers(0, 10 ** (2 * w) - 1))))
def test_bcd_round_trip(width_value: tuple[int, int]) -> None:
    width, value = width_value
    encoded = p.to_bcd(value, width)
    assert len(encoded) == width
    assert all((b >> 4) <= 9 and (b & 15) <= 9 for b in encoded)
    assert p.from_bcd(encoded) == value


@given(st.integers(1, 8).flatmap(lambda w: st.tuples(st.just(w), st.integers(0, 256**w - 1))))
def test_le_round_trip(width_value: tuple[int, int]) -> None:
    width, value = width_value
    assert p.from_le(p.to_le(value, width)) == value
    assert p.to_le(value, width) == value.to_bytes(width, "little")


def test_le_known_values_and_overflow() -> None:
    assert p.to_le(0x1234, 2) == h("34 12")
    assert p.from_le(h("01 00 00 80"), signed=True) == -(2**31) + 1
    with pytest.raises(CodecError):
        p.to_le(65536, 2)


@given(st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2))
def test_money_round_trip(amount: Decimal) -> None:
    assert p.money_from_bcd(p.money_to_bcd(amount, 5)) == amount


@given(st.decimals(min_value=0, max_value=Decimal("9999999.999"), places=3))
def test_quantity_round_trip(quantity: Decimal) -> None:
    assert p.quantity_from_bcd(p.quantity_to_bcd(quantity)) == quantity


def test_money_known_values_and_strictness() -> None:
    assert p.money_to_bcd(Decimal("100"), 5) == h("00 00 01 00 00")
    assert p.money_to_bcd(Decimal("100.00"), 6) == h("00 00 00 01 00 00")
    assert p.money_from_bcd(h("00 00 01 00 50")) == Decimal("100.50")
    assert p.quantity_to_bcd(Decimal("1.5")) == h("00 00 00 15 00")
    assert p.quantity_from_bcd(h("00 00 00 10 00")) == Decimal(1)
    for bad in (Decimal("0.001"), Decimal("-1"), 1.5, Decimal("NaN")):
        with pytest.raises(CodecError):
            p.money_to_bcd(bad, 5)  # type: ignore[arg-type]  # a wrong type on purpose


def test_text_cp866_fixed_width() -> None:
    field_ = p.encode_text("Товар", 8)
    assert field_ == "Товар".encode("cp866") + b"\x00\x00\x00"
    assert p.decode_text(field_) == "Товар"
    assert p.encode_text("abc", 5, fill=0x20) == b"abc  "
    with pytest.raises(CodecError):
        p.encode_text("длинное имя", 4)
    assert p.encode_text("длинное имя", 4, truncate=True) == "длин".encode("cp866")
    with pytest.raises(CodecError):
        p.encode_text("€", 4)
