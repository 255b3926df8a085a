"""Tests of the pure ATOL protocol codec (devices/atol/protocol.py).

Transport vectors are the ones of /work/shared/reference/protocols.md §3.2 and §3.4, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.protocol import (
    ASYNC_ID,
    ATOL_ERRORS,
    AddFlags,
    Answer,
    AnswerForm,
    BufferAnswer,
    BufferCmd,
    BufferCommand,
    BufferStatus,
    Cmd,
    CodecError,
    CorruptReason,
    DeviceType,
    FirmwareVersion,
    FnStatus,
    FnValidity,
    FnWarnings,
    Mode,
    NumberEncoding,
    OfdExchangeStatus,
    OfdFlags,
    Position,
    PrinterFlags,
    ReceiptType,
    ShiftParams,
    StateAnswer,
    StatusBlock,
    StatusFlags,
    V2Control,
    V2Corrupt,
    V2Frame,
    V2Reader,
    V3Corrupt,
    V3Frame,
    V3Reader,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# ------------------------------------------------------------------------------------------------
# v3 transport: reference vectors (§3.2), both directions
# ------------------------------------------------------------------------------------------------

V3_VECTORS = [
    pytest.param(0x01, b"", "FE 00 00 01 9D", id="empty-resend-id1"),
    pytest.param(0xF0, h("A6 57 55 00 00"), "FE 05 00 F0 A6 57 55 00 00 FD EE", id="async-crc-FE"),
    pytest.param(0x01, h("C4"), "FE 01 00 01 C4 F6", id="abort"),
    pytest.param(0x02, h("C1 01 01 00 00 3F"), "FE 06 00 02 C1 01 01 00 00 3F ED", id="add-3F"),
    pytest.param(0x03, h("C2 01"), "FE 02 00 03 C2 01 C3", id="ack-tid1"),
    pytest.param(0xF0, h("A6 01 55 00 00"), "FE 05 00 F0 A6 01 55 00 00 2F", id="async-U-tid1"),
    pytest.param(0x04, h("C1 01 02 00 00 45"), "FE 06 00 04 C1 01 02 00 00 45 46", id="add-45"),
]


def test_crc8_check_value() -> None:
    assert p.crc8(b"123456789") == 0xF7
    assert p.crc8(b"") == 0xFF


@pytest.mark.parametrize(("packet_id", "payload", "wire"), V3_VECTORS)
def test_v3_vector_encode(packet_id: int, payload: bytes, wire: str) -> None:
    assert p.encode_frame(packet_id, payload) == h(wire)


@pytest.mark.parametrize(("packet_id", "payload", "wire"), V3_VECTORS)
def test_v3_vector_decode(packet_id: int, payload: bytes, wire: str) -> None:
    assert V3Reader().feed(h(wire)) == [V3Frame(packet_id, payload)]


@pytest.mark.parametrize(("packet_id", "payload", "wire"), V3_VECTORS)
def test_v3_vector_decode_byte_by_byte(packet_id: int, payload: bytes, wire: str) -> None:
    reader = V3Reader()
    items = [item for byte in h(wire) for item in reader.feed(bytes([byte]))]
    assert items == [V3Frame(packet_id, payload)]
    assert not reader.in_frame


def test_v3_vector_payloads_are_built_by_the_task_buffer_encoders() -> None:
    assert p.encode_abort() == h("C4")
    assert p.encode_add(1, p.encode_command(Cmd.STATUS), AddFlags.NEED_RESULT) == h("C1 01 01 00 00 3F")
    assert p.encode_ack(1) == h("C2 01")
    assert p.encode_add(2, p.encode_command(Cmd.STATE)) == h("C1 01 02 00 00 45")
    assert p.encode_status(BufferStatus.ASYNC_RESULT, h("55 00 00"), tid=0x57) == h("A6 57 55 00 00")


def test_v3_vector_payloads_decode_to_meaning() -> None:
    add = p.decode_buffer_command(h("C1 01 01 00 00 3F"))
    assert add == BufferCommand(BufferCmd.ADD, tid=1, flags=AddFlags.NEED_RESULT, task=h("00 00 3F"))
    assert p.decode_command(add.task) == p.CommandRequest(password=0, code=Cmd.STATUS, params=b"")
    answer = p.decode_buffer_answer(h("A6 57 55 00 00"))
    assert answer == BufferAnswer(BufferStatus.ASYNC_RESULT, 0x57, h("55 00 00"))
    app = p.parse_answer(answer.data, Cmd.STATUS)
    assert app == Answer(AnswerForm.U, 0, h("00"))
    assert app.ok


def test_v3_frame_object_helpers() -> None:
    frame = V3Reader().feed(h("FE 00 00 01 9D"))[0]
    assert isinstance(frame, V3Frame)
    assert frame.is_resend_request
    assert not frame.is_async
    assert frame.encode() == h("FE 00 00 01 9D")
    assert V3Frame(ASYNC_ID, h("A6 01 55 00 00")).is_async


# ------------------------------------------------------------------------------------------------
# v3 transport: properties
# ------------------------------------------------------------------------------------------------

packet_ids = st.integers(0, 255).filter(lambda i: i != 0xFE)
nasty_payloads = st.lists(
    st.one_of(st.sampled_from([0xFE, 0xFD, 0xEE, 0xED, 0x00, 0x7F, 0x80]), st.integers(0, 255)),
    max_size=300,
).map(bytes)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for point in points + [len(data)]:
        chunks.append(data[last:point])
        last = point
    return chunks


@given(packet_ids, nasty_payloads)
def test_v3_frame_has_fe_only_at_start_and_round_trips(packet_id: int, payload: bytes) -> None:
    wire = p.encode_frame(packet_id, payload)
    assert wire[0] == 0xFE
    assert 0xFE not in wire[1:]
    assert wire[1] == len(payload) & 0x7F and wire[2] == len(payload) >> 7
    assert V3Reader().feed(wire) == [V3Frame(packet_id, payload)]


@given(
    st.lists(st.tuples(packet_ids, nasty_payloads), min_size=1, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=12),
    st.binary(max_size=8).map(lambda b: b.replace(b"\xfe", b"")),
)
def test_v3_reader_any_chunking(frames: list[tuple[int, bytes]], cuts: list[int], noise: bytes) -> None:
    stream = noise + b"".join(p.encode_frame(pid, data) + noise for pid, data in frames)
    reader = V3Reader()
    items = [item for chunk in split_at(stream, cuts) for item in reader.feed(chunk)]
    assert items == [V3Frame(pid, data) for pid, data in frames]
    assert reader.skipped == len(noise) * (len(frames) + 1)


def test_v3_long_payload_uses_high_length_byte() -> None:
    payload = bytes(range(256)) * 2  # 512 bytes, contains FE and FD
    wire = p.encode_frame(7, payload)
    assert wire[1:3] == bytes([512 & 0x7F, 512 >> 7]) == h("00 04")
    assert V3Reader().feed(wire) == [V3Frame(7, payload)]


def test_encode_frame_rejects_bad_input() -> None:
    with pytest.raises(CodecError):
        p.encode_frame(0xFE, b"x")
    with pytest.raises(CodecError):
        p.encode_frame(256, b"x")
    with pytest.raises(CodecError):
        p.encode_frame(1, bytes(p.MAX_PAYLOAD_LEN + 1))


# ------------------------------------------------------------------------------------------------
# v3 transport: corrupt frames
# ------------------------------------------------------------------------------------------------

GOOD = p.encode_frame(9, h("A3 55 00 00"))


@given(packet_ids, nasty_payloads, st.integers(1, 255))
def test_v3_bad_crc_reported_with_id(packet_id: int, payload: bytes, delta: int) -> None:
    bad_crc = p.crc8(bytes([packet_id]) + payload) ^ delta
    size = len(payload)
    wire = bytes([0xFE, size & 0x7F, size >> 7, packet_id]) + p.escape_v3(payload + bytes([bad_crc]))
    items = V3Reader().feed(wire + GOOD)
    assert len(items) == 2
    assert isinstance(items[0], V3Corrupt)
    assert items[0].packet_id == packet_id
    assert items[0].reason == CorruptReason.BAD_CRC
    assert items[1] == V3Frame(9, h("A3 55 00 00"))


def test_v3_truncated_frame_reported_as_bad_length_with_id_then_resync() -> None:
    truncated = p.encode_frame(0x21, h("C1 01 05 00 00 3F"))[:-3]
    items = V3Reader().feed(truncated + GOOD)
    assert items[0] == V3Corrupt(0x21, CorruptReason.BAD_LENGTH, items[0].detail)
    assert items[1:] == [V3Frame(9, h("A3 55 00 00"))]


def test_v3_bad_escape_reported_with_id() -> None:
    items = V3Reader().feed(h("FE 02 00 05 C2 FD 00 C3") + GOOD)
    assert isinstance(items[0], V3Corrupt)
    assert (items[0].packet_id, items[0].reason) == (5, CorruptReason.BAD_ESCAPE)
    assert items[1] == V3Frame(9, h("A3 55 00 00"))


def test_v3_bad_length_byte_before_id() -> None:
    items = V3Reader().feed(h("FE 80 00 05 00") + GOOD)
    assert items[0] == V3Corrupt(None, CorruptReason.BAD_LENGTH, items[0].detail)
    assert items[1] == V3Frame(9, h("A3 55 00 00"))


def test_v3_length_above_reader_limit() -> None:
    reader = V3Reader(max_payload=16)
    items = reader.feed(p.encode_frame(3, bytes(17)) + GOOD)
    assert isinstance(items[0], V3Corrupt)
    assert (items[0].packet_id, items[0].reason) == (3, CorruptReason.BAD_LENGTH)
    assert items[-1] == V3Frame(9, h("A3 55 00 00"))


def test_v3_incomplete_frame_waits_for_more_bytes() -> None:
    reader = V3Reader()
    assert reader.feed(GOOD[:-1]) == []
    assert reader.in_frame
    assert reader.feed(GOOD[-1:]) == [V3Frame(9, h("A3 55 00 00"))]
    assert not reader.in_frame


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
    assert p.decode_buffer_answer(h("A3 07 55 00 00"), sync_tid=True) == BufferAnswer(BufferStatus.RESULT, 7, h("55 00 00"))
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


v2_data = st.lists(st.one_of(st.sampled_from([0x10, 0x03, 0x02, 0x05, 0x06]), st.integers(0, 255)),
                   max_size=200).map(bytes)


@given(st.lists(st.one_of(v2_data, st.sampled_from(list(V2Control))), min_size=1, max_size=8),
       st.lists(st.integers(0, 10_000), max_size=10))
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


@given(st.integers(1, 8).flatmap(lambda w: st.tuples(st.just(w), st.integers(0, 256 ** w - 1))))
def test_le_round_trip(width_value: tuple[int, int]) -> None:
    width, value = width_value
    assert p.from_le(p.to_le(value, width)) == value
    assert p.to_le(value, width) == value.to_bytes(width, "little")


def test_le_known_values_and_overflow() -> None:
    assert p.to_le(0x1234, 2) == h("34 12")
    assert p.from_le(h("01 00 00 80"), signed=True) == -(2 ** 31) + 1
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
            p.money_to_bcd(bad, 5)  # type: ignore[arg-type]


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


# ------------------------------------------------------------------------------------------------
# application layer
# ------------------------------------------------------------------------------------------------

def test_encode_command_and_decode() -> None:
    assert p.encode_command(Cmd.STATUS) == h("00 00 3F")
    assert p.encode_command(Cmd.ENTER_MODE, h("01 00 00 00 30"), password=1234) == h("12 34 56 01 00 00 00 30")
    req = p.decode_command(h("12 34 56 01 00 00 00 30"))
    assert (req.password, req.code, req.params) == (1234, Cmd.ENTER_MODE, h("01 00 00 00 30"))
    assert req.encode() == h("12 34 56 01 00 00 00 30")
    assert p.EnterMode(Mode.REGISTRATION, 30).encode() == h("01 00 00 00 30")
    assert p.EnterMode.decode(h("03 00 00 00 30")) == p.EnterMode(Mode.Z_REPORT, 30)


def test_command_codes_and_enums() -> None:
    expected = {
        "STATUS": 0x3F, "STATE": 0x45, "DEVICE_TYPE": 0xA5, "FIRMWARE": 0x9D, "FN": 0xA4,
        "ENTER_MODE": 0x56, "EXIT_MODE": 0x48, "OPEN_SHIFT": 0x9A, "OPEN_RECEIPT": 0x92,
        "REGISTER_POSITION": 0xE6, "PAYMENT": 0x99, "CLOSE_RECEIPT": 0x4A, "CANCEL_RECEIPT": 0x59,
        "Z_REPORT": 0x5A, "X_REPORT": 0x67, "SET_DATE": 0x64, "SET_TIME": 0x4B, "SET_DATETIME": 0xED,
        "REGISTRATION": 0xA6, "WRITE_REQUISITE": 0xE8, "READ_REQUISITE": 0xE9, "REPRINT_LAST": 0x95,
    }
    assert {name: Cmd[name].value for name in expected} == expected
    assert [m.value for m in Mode] == list(range(7))
    assert (ReceiptType.SALE, ReceiptType.SALE_RETURN, ReceiptType.EXPENSE, ReceiptType.EXPENSE_RETURN) == (1, 2, 4, 5)
    assert p.answer_timeout(Cmd.Z_REPORT) == 40.0
    assert p.answer_timeout(Cmd.STATUS) == p.DEFAULT_TIMEOUT


def test_parse_answer_forms() -> None:
    assert p.parse_answer(h("55 67 00"), Cmd.CLOSE_RECEIPT) == Answer(AnswerForm.U, 103, h("00"))
    assert p.parse_answer(h("55 67 00")).error_text == "no paper"
    assert p.parse_answer(h("55 00 00")).form == "U"
    assert p.parse_answer(h("55 01 81"), Cmd.STATE) == Answer(AnswerForm.U, 0, h("01 81"))
    assert p.parse_answer(h("00 01 00 3D"), Cmd.DEVICE_TYPE) == Answer(AnswerForm.A5, 0, h("01 00 3D"))
    assert p.parse_answer(h("7A"), Cmd.DEVICE_TYPE).error == 122
    assert p.parse_answer(h("44") + bytes(29), Cmd.STATUS).form == AnswerForm.D
    assert p.parse_answer(h("55 8C 00"), Cmd.STATUS) == Answer(AnswerForm.U, 140, h("00"))
    assert p.parse_answer(h("4D 00 00 00 00 01 00 00"), Cmd.CASH_IN_DRAWER).form == AnswerForm.M
    for bad, cmd in ((b"", None), (h("55"), None), (h("44 00"), Cmd.PAYMENT), (h("99"), Cmd.STATUS)):
        with pytest.raises(CodecError):
            p.parse_answer(bad, cmd)


@pytest.mark.parametrize(("answer", "command"), [
    (Answer(AnswerForm.U, 156, h("00")), Cmd.OPEN_SHIFT),
    (Answer(AnswerForm.U, 0, h("01 80")), Cmd.STATE),
    (Answer(AnswerForm.A5, 0, h("01 00 3D 00 00")), Cmd.DEVICE_TYPE),
    (Answer(AnswerForm.D, 0, bytes(29)), Cmd.STATUS),
])
def test_answer_encode_round_trip(answer: Answer, command: int) -> None:
    assert p.parse_answer(answer.encode(command), command) == answer


# --- 3Fh status block ---------------------------------------------------------------------------

HAND_BUILT_3F = h(
    "44"              # 'D'
    "05"              # cashier 5 (BCD)
    "01"              # number in hall 1
    "24 03 15"        # 2024-03-15 (BCD)
    "13 45 59"        # 13:45:59 (BCD)
    "4B"              # flags: fiscal | shift open | paper | FN activated
    "00 12 34 56"     # serial 00123456 (BCD)
    "3D"              # model 61 (30Ф)
    "00 00"           # reserved
    "21"              # sub-mode 2, mode 1
    "00 42"           # receipt number 42 (BCD)
    "01 07"           # shift number 107 (BCD)
    "01"              # receipt state: sale
    "00 00 01 23 45"  # receipt sum 123.45
    "02"              # decimal point
    "04"              # interface USB
)


def test_status_block_hand_built_decode() -> None:
    assert len(HAND_BUILT_3F) == p.STATUS_BLOCK_SIZE == 30
    block = StatusBlock.decode(HAND_BUILT_3F)
    assert block == StatusBlock(
        cashier=5, number_in_hall=1, date=dt.date(2024, 3, 15), time=dt.time(13, 45, 59),
        flags=StatusFlags.FISCAL | StatusFlags.SHIFT_OPEN | StatusFlags.PAPER_PRESENT | StatusFlags.FN_ACTIVATED,
        serial=123456, model=61, version=h("00 00"), mode=Mode.REGISTRATION, submode=2,
        receipt_number=42, shift_number=107, receipt_state=ReceiptType.SALE,
        receipt_sum=Decimal("123.45"), decimal_point=2, interface=p.Interface.USB,
    )
    assert block.serial_text == "00123456"
    assert block.receipt_open
    assert block.datetime == dt.datetime(2024, 3, 15, 13, 45, 59)
    assert StatusFlags.COVER_OPEN not in block.flags
    assert block.encode() == HAND_BUILT_3F


def test_status_block_rejects_bad_input() -> None:
    with pytest.raises(CodecError):
        StatusBlock.decode(HAND_BUILT_3F[:-1])
    with pytest.raises(CodecError):
        StatusBlock.decode(b"U" + HAND_BUILT_3F[1:])
    with pytest.raises(CodecError):
        StatusBlock.decode(HAND_BUILT_3F[:3] + h("24 13 15") + HAND_BUILT_3F[6:])  # month 13


status_blocks = st.builds(
    StatusBlock,
    date=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    time=st.times().map(lambda t: t.replace(microsecond=0)),
    cashier=st.integers(0, 99),
    number_in_hall=st.integers(0, 255),
    flags=st.integers(0, 255).map(StatusFlags),
    serial=st.integers(0, 99_999_999),
    model=st.integers(0, 255),
    version=st.binary(min_size=2, max_size=2),
    mode=st.integers(0, 15),
    submode=st.integers(0, 15),
    receipt_number=st.integers(0, 9999),
    shift_number=st.integers(0, 9999),
    receipt_state=st.integers(0, 255),
    receipt_sum=st.decimals(0, Decimal("99999999.99"), places=2),
    decimal_point=st.just(2),
    interface=st.integers(0, 255),
    extra=st.binary(max_size=4),
)


@given(status_blocks)
def test_status_block_round_trip(block: StatusBlock) -> None:
    wire = block.encode()
    assert len(wire) == 30 + len(block.extra)
    assert StatusBlock.decode(wire) == block


# --- other answers ------------------------------------------------------------------------------

@given(st.integers(0, 15), st.integers(0, 15), st.integers(0, 255).map(PrinterFlags))
def test_state_answer_round_trip(mode: int, submode: int, flags: PrinterFlags) -> None:
    state = StateAnswer(mode, submode, flags)
    assert StateAnswer.decode(state.encode()) == state


def test_state_answer_hand_built() -> None:
    state = StateAnswer.decode(p.parse_answer(h("55 31 81"), Cmd.STATE).data)
    assert (state.mode, state.submode) == (Mode.REGISTRATION, 3)
    assert state.flags == PrinterFlags.NO_PAPER | PrinterFlags.PAPER_NEAR_END
    assert PrinterFlags.PAPER_NEAR_END == 0x80


def test_device_type_round_trip() -> None:
    info = DeviceType(protocol_version=3, device_type=1, model=72, mode=1, submode=0,
                      firmware=h("03 00 00 57 99"), name="АТОЛ 90Ф")
    data = info.encode()
    assert data[:10] == h("03 01 48 01 00 03 00 00 57 99")
    assert DeviceType.decode(data) == info
    assert p.parse_answer(b"\x00" + data, Cmd.DEVICE_TYPE).data == data


def test_firmware_version_both_layouts() -> None:
    fw = FirmwareVersion(3, 0, 0, 5799)
    assert fw.encode() == h("03 00 00 57 99")
    assert FirmwareVersion.decode(h("03 00 00 57 99")) == fw
    assert FirmwareVersion.decode(h("00 03 00 00 57 99"), reserved_byte=True) == fw
    assert FirmwareVersion.decode(fw.encode(reserved_byte=True), reserved_byte=True) == fw
    assert fw.text == "3.0.0.5799"


@pytest.mark.parametrize(("encoding", "wire"), [
    (NumberEncoding.BINARY_LE, "01 0C 00 22 01"),
    (NumberEncoding.BCD_LE, "01 12 00 90 02"),
    (NumberEncoding.BCD_BE, "01 00 12 02 90"),
])
def test_shift_params_encodings(encoding: NumberEncoding, wire: str) -> None:
    params = ShiftParams(p.ShiftState.OPEN, 12, 290)
    assert params.encode(encoding) == h(wire)
    assert ShiftParams.decode(h(wire), encoding) == params


def test_shift_params_default_is_binary_le() -> None:
    assert ShiftParams.decode(h("00 0C 00 22 01")) == ShiftParams(0, 12, 290)


def test_ofd_exchange_status_round_trip_and_layout() -> None:
    status = OfdExchangeStatus(OfdFlags.TRANSPORT_CONNECTED | OfdFlags.MESSAGE_WAITING, 0, 3, 0x0102,
                               dt.datetime(2024, 1, 31, 23, 59))
    data = status.encode()
    assert data == h("03 00 03 00 02 01 00 00 18 01 1F 17 3B")
    assert OfdExchangeStatus.decode(data) == status
    assert OfdExchangeStatus.decode(bytes(13)) == OfdExchangeStatus()


def test_fn_status_round_trip_and_layout() -> None:
    status = FnStatus(p.FnPhase.FISCAL, 0, False, True, FnWarnings.OFD_TIMEOUT,
                      dt.datetime(2024, 5, 1, 10, 30), "9999078900012345", 77)
    data = status.encode()
    assert len(data) == 30
    assert data[:10] == h("03 00 00 01 08 18 05 01 0A 1E")
    assert data[10:26] == b"9999078900012345"
    assert data[26:] == h("4D 00 00 00")
    assert FnStatus.decode(data) == status


def test_fn_validity_round_trip_and_layout() -> None:
    validity = FnValidity(dt.date(2026, 7, 31), 11, 1)
    assert validity.encode() == h("1A 07 1F 0B 01")
    assert FnValidity.decode(h("1A 07 1F 0B 01")) == validity


def test_position_layout_and_round_trip() -> None:
    pos = Position("Товар", Decimal("100.00"), Decimal("2.5"), flags=0, tax=1, section=0)
    params = pos.encode()
    assert len(params) == 103
    assert params[1:6] == "Товар".encode("cp866") and params[6:65] == bytes(59)
    assert params[65:71] == h("00 00 00 01 00 00")
    assert params[71:76] == h("00 00 00 25 00")
    assert params[76:78] == h("01 00") and params[84] == 1
    assert Position.decode(params) == pos
    assert pos.amount == Decimal("250.00")
    task = p.encode_command(Cmd.REGISTER_POSITION, params)
    assert p.decode_command(task).params == params


def test_payment_and_receipt_params() -> None:
    pay = p.Payment(p.PaymentType.CASH, Decimal("300"))
    assert pay.encode() == h("00 01 00 00 03 00 00")
    assert p.Payment.decode(pay.encode()) == pay
    result = p.PaymentResult(Decimal(0), Decimal("50.00"))
    assert p.PaymentResult.decode(result.encode()) == result
    assert p.OpenReceipt(ReceiptType.SALE_RETURN).encode() == h("00 02")
    assert p.OpenReceipt.decode(h("01 04")) == p.OpenReceipt(ReceiptType.EXPENSE, flags=1)
    assert p.CloseReceipt.decode(p.CloseReceipt().encode()) == p.CloseReceipt()


# ------------------------------------------------------------------------------------------------
# error table and describe()
# ------------------------------------------------------------------------------------------------

REFERENCE_ERROR_CODES = [
    0, 8, 10, 19, 20, 22, 30, 31, 32, 102, 103, 104, 105, 106, 122, 128, 129, 136, 140, 143, 154, 155,
    156, 159, 164, 168, 191, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 231, 232, 233,
    234, 235, 236, 237, 238, 239, 240, 241, 243,
]


def test_error_table_is_complete() -> None:
    assert sorted(ATOL_ERRORS) == REFERENCE_ERROR_CODES
    assert all(text and text.isascii() for text in ATOL_ERRORS.values())
    assert ATOL_ERRORS[239] == "OFD wait resource exhausted (30 days)"
    assert p.error_text(1) == "unknown error 1"


@pytest.mark.parametrize(("wire", "words"), [
    ("FE 00 00 01 9D", ["id=01", "resend"]),
    ("FE 06 00 02 C1 01 01 00 00 3F ED", ["ADD", "tid=0x01", "NEED_RESULT", "STATUS"]),
    ("FE 05 00 F0 A6 57 55 00 00 FD EE", ["ASYNC_RESULT", "tid=0x57", "err=0"]),
    ("FE 01 00 01 C4 00", ["CORRUPT", "bad CRC"]),
    ("02 00 00 3F 03 3C", ["v2", "STATUS"]),
    ("05", ["ENQ"]),
])
def test_describe_known_frames(wire: str, words: list[str]) -> None:
    line = p.describe(h(wire))
    assert "\n" not in line
    for word in words:
        assert word in line


def test_describe_answer_frames() -> None:
    frame = p.encode_frame(ASYNC_ID, p.encode_status(BufferStatus.ASYNC_RESULT, HAND_BUILT_3F, tid=3))
    assert "serial=00123456" in p.describe(frame)
    error = p.encode_frame(ASYNC_ID, p.encode_status(BufferStatus.ASYNC_ERROR, h("55 67 00"), tid=4))
    assert "no paper" in p.describe(error)


@settings(max_examples=300)
@given(st.one_of(
    st.binary(max_size=80),
    st.binary(max_size=80).map(lambda b: b"\xfe" + b),
    st.binary(max_size=80).map(lambda b: b"\x02" + b),
    st.tuples(packet_ids, st.binary(max_size=60)).map(lambda t: p.encode_frame(*t)),
))
def test_describe_never_raises(data: bytes) -> None:
    line = p.describe(data)
    assert isinstance(line, str) and line
