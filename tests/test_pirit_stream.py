"""The Pirit stream reader and packet ids (devices/pirit/protocol): a byte stream of frames and
control bytes split into events however it is chunked, garbage kept and resynchronised on STX,
oversized frames cut, and the packet-id cycle that never uses the recovery id 0x20.
"""

from __future__ import annotations

from itertools import islice, pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.pirit import protocol as p
from devices.pirit.protocol import ACK, ENQ, LF, NAK, STX, BadCrc, Control, Frame, FrameReader, Garbage, PacketIds

from .pirit_frames import OFD_ANS, OFD_REQ, OPEN_SHIFT_REQ, SERIAL_REQ, START_REQ, STATUS_ANS, STATUS_REQ, E, S

# --------------------------------------------------------------------------------------------
# FrameReader

STREAM_EVENTS = [
    Frame(STATUS_REQ),
    Control(ENQ),
    Frame(START_REQ),
    Frame(OPEN_SHIFT_REQ),
    Control(ACK),
    Frame(STATUS_ANS),
    Control(NAK),
    Control(LF),
    Frame(OFD_ANS),
]
STREAM = b"".join(
    e.raw if isinstance(e, Frame) else bytes([e.byte]) for e in STREAM_EVENTS if isinstance(e, (Frame, Control))
)


def merge_garbage(events: list) -> list:
    merged: list = []
    for event in events:
        if isinstance(event, Garbage) and merged and isinstance(merged[-1], Garbage):
            merged[-1] = Garbage(merged[-1].raw + event.raw)
        else:
            merged.append(event)
    return merged


def test_reader_whole_stream() -> None:
    reader = FrameReader()
    assert reader.feed(STREAM) == STREAM_EVENTS
    assert not reader.pending()


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_reader_split_at_every_boundary(cut: int) -> None:
    reader = FrameReader()
    events = reader.feed(STREAM[:cut])
    assert reader.pending() == any(0 < cut - start < len(e.raw) for start, e in _frame_spans())
    assert events + reader.feed(STREAM[cut:]) == STREAM_EVENTS


def _frame_spans() -> list[tuple[int, Frame]]:
    spans, offset = [], 0
    for event in STREAM_EVENTS:
        if isinstance(event, Frame):
            spans.append((offset, event))
            offset += len(event.raw)
        else:
            offset += 1
    return spans


def test_reader_byte_by_byte() -> None:
    reader = FrameReader()
    events = [event for byte in STREAM for event in reader.feed(bytes([byte]))]
    assert events == STREAM_EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=10))
def test_reader_arbitrary_chunks(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    reader = FrameReader()
    events = [e for a, b in pairwise(bounds) for e in reader.feed(STREAM[a:b])]
    assert events == STREAM_EVENTS


def test_reader_garbage_between_frames() -> None:
    reader = FrameReader()
    events = reader.feed(b"\xff\x00junk" + STATUS_REQ + b"xy" + bytes([ENQ]) + b"z")
    assert events == [
        Garbage(b"\xff\x00junk"),
        Frame(STATUS_REQ),
        Garbage(b"xy"),
        Control(ENQ),
        Garbage(b"z"),
    ]


@given(st.binary(max_size=20), st.integers(min_value=0, max_value=40))
def test_reader_garbage_chunking_does_not_lose_bytes(noise: bytes, cut: int) -> None:
    # noise without framing/control bytes, so it must come back as garbage, all of it
    noise = bytes(b for b in noise if b not in (STX, ENQ, ACK, NAK, LF))
    stream = noise + STATUS_ANS + noise
    reader = FrameReader()
    events = merge_garbage(reader.feed(stream[:cut]) + reader.feed(stream[cut:]))
    expected = ([Garbage(noise)] if noise else []) + [Frame(STATUS_ANS)]
    expected += [Garbage(noise)] if noise else []
    assert events == expected


def test_reader_resync_on_new_stx() -> None:
    reader = FrameReader()
    partial = STATUS_REQ[:5]
    assert reader.feed(partial) == []
    assert reader.pending()
    assert reader.feed(START_REQ) == [Garbage(partial), Frame(START_REQ)]
    assert not reader.pending()


def test_reader_resync_on_stx_in_crc_position() -> None:
    reader = FrameReader()
    truncated = STATUS_REQ[:-1]  # ETX and one CRC character
    assert reader.feed(truncated + OFD_REQ) == [Garbage(truncated), Frame(OFD_REQ)]


def test_reader_control_bytes_inside_frame_belong_to_frame() -> None:
    # only STX is special inside a frame; the CRC check then rejects the frame
    body = b"PIRI!0" + bytes([ENQ]) + b"0" + E
    frame = S + body + b"00"
    assert FrameReader().feed(frame) == [Frame(frame)]
    with pytest.raises(p.FrameError):
        p.decode_request(frame)


def test_reader_lower_case_crc_frame() -> None:
    frame = SERIAL_REQ[:-2] + b"0a"
    events = FrameReader().feed(frame)
    assert events == [Frame(frame)]
    assert isinstance(events[0], Frame) and p.decode_request(events[0].raw).command == 0x02


def test_reader_bad_crc_frame_still_split_then_rejected() -> None:
    bad = START_REQ[:-2] + b"FF"
    events = FrameReader().feed(bad + STATUS_REQ)
    assert events == [Frame(bad), Frame(STATUS_REQ)]
    assert isinstance(events[0], Frame)
    with pytest.raises(BadCrc) as info:
        p.decode_request(events[0].raw)
    assert (info.value.packet_id, info.value.command) == (0x22, 0x10)


def test_reader_oversized_frame() -> None:
    reader = FrameReader(max_frame=20)
    small = p.encode_request(0x00, packet_id=0x21)
    exact = p.encode_request(0x23, ["x" * (20 - len(OPEN_SHIFT_REQ) + 6)], packet_id=0x25)
    assert len(exact) == 20
    big = p.encode_request(0x23, ["x" * 30], packet_id=0x25)
    events = reader.feed(exact + big + small)
    assert events == [Frame(exact), Garbage(big), Frame(small)]
    # the overflow is reported as soon as it happens, not only at the next STX
    reader = FrameReader(max_frame=20)
    assert reader.feed(big[:21]) == [Garbage(big[:21])]
    assert not reader.pending()
    assert reader.feed(big[21:]) == [Garbage(big[21:])]


def test_reader_reset_drops_partial_frame() -> None:
    reader = FrameReader()
    reader.feed(STATUS_REQ[:6])
    assert reader.pending()
    reader.reset()
    assert not reader.pending()
    # the rest of the dropped frame is now garbage, the next frame is clean
    assert reader.feed(STATUS_REQ[6:] + OFD_REQ) == [Garbage(STATUS_REQ[6:]), Frame(OFD_REQ)]


def test_reader_enq_alone_and_ack_after_answer() -> None:
    reader = FrameReader()
    assert reader.feed(bytes([ENQ])) == [Control(ENQ)]
    assert reader.feed(STATUS_ANS + bytes([ACK])) == [Frame(STATUS_ANS), Control(ACK)]
    assert Control(ENQ).name == "ENQ"


def test_reader_max_frame_validation() -> None:
    with pytest.raises(ValueError):
        FrameReader(max_frame=8)


# --------------------------------------------------------------------------------------------
# Packet ids


def test_packet_ids_cycle_without_0x20() -> None:
    ids = list(islice(PacketIds(), 31 * 3 + 5))
    assert 0x20 not in ids
    assert ids[:31] == list(range(0x21, 0x40))
    assert ids[31:62] == ids[:31] == ids[62:93]
    assert ids[93:] == [0x21, 0x22, 0x23, 0x24, 0x25]
    assert iter(PacketIds()) is not None


def test_packet_ids_start() -> None:
    ids = PacketIds(0x3E)
    assert [next(ids) for _ in range(3)] == [0x3E, 0x3F, 0x21]
    with pytest.raises(ValueError):
        PacketIds(0x20)
