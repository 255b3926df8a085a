"""The ATOL v3 transport of the pure codec (devices/atol/protocol): the reference vectors of
protocols.md §3.2 byte for byte in both directions, hypothesis properties of framing and of the
stream reader under any chunking, and corrupt frames (bad CRC, length, escape) reported with
their packet id before the reader resynchronises.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.protocol import (
    ASYNC_ID,
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
    V3Corrupt,
    V3Frame,
    V3Reader,
)

from .atol_common import h, packet_ids, split_at

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


nasty_payloads = st.lists(
    st.one_of(st.sampled_from([0xFE, 0xFD, 0xEE, 0xED, 0x00, 0x7F, 0x80]), st.integers(0, 255)),
    max_size=300,
).map(bytes)


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
    assert isinstance(items[0], V3Corrupt)
    assert items[0] == V3Corrupt(0x21, CorruptReason.BAD_LENGTH, items[0].detail)
    assert items[1:] == [V3Frame(9, h("A3 55 00 00"))]


def test_v3_bad_escape_reported_with_id() -> None:
    items = V3Reader().feed(h("FE 02 00 05 C2 FD 00 C3") + GOOD)
    assert isinstance(items[0], V3Corrupt)
    assert (items[0].packet_id, items[0].reason) == (5, CorruptReason.BAD_ESCAPE)
    assert items[1] == V3Frame(9, h("A3 55 00 00"))


def test_v3_bad_length_byte_before_id() -> None:
    items = V3Reader().feed(h("FE 80 00 05 00") + GOOD)
    assert isinstance(items[0], V3Corrupt)
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
