"""The АТОЛ front-end: v2 frames run only after the ENQ/ACK handshake (§3.4), and a bad frame —
v3 or v2 — costs only its own answer, never the valid request behind it in the same chunk."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.emulator import AtolFrontEnd
from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore

from .atol_common import START

ENQ, ACK, NAK, EOT = bytes([p.ENQ]), bytes([p.ACK]), bytes([p.NAK]), bytes([p.EOT])
ENTER_MODE_1 = p.encode_command(p.Cmd.ENTER_MODE, p.EnterMode(1, 30).encode())
STATUS = p.encode_command(p.Cmd.STATUS)


def _front() -> tuple[AtolFrontEnd, FiscalCore]:
    core = build_emulator("atol", {"clock": START.isoformat()}).core
    return AtolFrontEnd(core), core


def _v3_add(packet_id: int, tid: int, task: bytes = STATUS) -> bytes:
    return p.encode_frame(packet_id, p.encode_add(tid, task, p.AddFlags.NEED_RESULT | p.AddFlags.IGNORE_ERROR))


def _v3_frames(out: bytes) -> list[p.V3Frame]:
    return [item for item in p.V3Reader().feed(out) if isinstance(item, p.V3Frame)]


def _answered(out: bytes, packet_id: int, tid: int) -> bool:
    """The ADD with ``packet_id`` got its synchronous answer and its asynchronous 3Fh result."""
    frames = _v3_frames(out)
    results = [p.decode_buffer_answer(f.payload) for f in frames if f.packet_id == p.ASYNC_ID]
    return any(f.packet_id == packet_id and f.payload for f in frames) and any(
        r.tid == tid and r.status == p.BufferStatus.ASYNC_RESULT and r.data[:1] == b"D" for r in results
    )


def _v2_status_exchange(front: AtolFrontEnd) -> p.V2Frame:
    """The whole line discipline for 3Fh; fails the test at the first wrong reply."""
    assert front.feed(ENQ) == ACK
    assert front.feed(p.encode_v2_frame(STATUS)) == ACK
    assert front.feed(EOT) == ENQ
    (frame,) = p.V2Reader().feed(front.feed(ACK))
    assert isinstance(frame, p.V2Frame) and frame.data[:1] == b"D"
    assert front.feed(ACK) == EOT
    return frame


# ------------------------------------------------------------------ v2: the handshake first


def test_a_v2_frame_without_the_handshake_is_neither_answered_nor_executed() -> None:
    front, _ = _front()
    assert front.feed(p.encode_v2_frame(ENTER_MODE_1)) == b""
    assert front.feed(EOT) == b""  # nothing to offer: the frame was not taken
    assert front.state.mode == 0
    assert front.feed(ENQ) == ACK
    assert front.feed(p.encode_v2_frame(ENTER_MODE_1)) == ACK
    assert front.state.mode == 1


def test_junk_with_an_stx_on_an_idle_v2_line_does_not_capture_the_line() -> None:
    front, _ = _front()
    assert front.feed(b"\x02\x00\x00\x56\x01") == b""  # an unfinished "frame" without ENQ first
    _v2_status_exchange(front)  # no inter-byte timeout needed: the line never left idle


def test_after_a_bad_lrc_the_repeat_runs_without_a_new_enq_in_the_same_chunk() -> None:
    front, _ = _front()
    assert front.feed(ENQ) == ACK
    bad = bytearray(p.encode_v2_frame(ENTER_MODE_1))
    bad[-1] ^= 0x01
    assert front.feed(bytes(bad) + p.encode_v2_frame(ENTER_MODE_1)) == NAK + ACK
    assert front.state.mode == 1


def test_a_v2_frame_whose_lrc_is_0xfe_is_received() -> None:
    front, _ = _front()
    frame = p.encode_v2_frame(p.encode_command(p.Cmd.STATUS, b"\xc2"))
    assert frame[-1] == p.V3_STX  # the LRC looks like a v3 frame start
    assert front.feed(ENQ) == ACK
    assert front.feed(frame) == ACK
    assert front.feed(EOT) == ENQ


def test_a_v3_frame_cuts_short_an_unfinished_v2_frame_and_is_answered() -> None:
    front, _ = _front()
    assert front.feed(ENQ) == ACK
    out = front.feed(p.encode_v2_frame(ENTER_MODE_1)[:4] + _v3_add(7, 7))
    assert _answered(out, 7, 7)
    assert front.state.mode == 0


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.booleans())
def test_after_any_v2_junk_the_next_exchange_is_answered(junk: bytes, handshake: bool) -> None:
    front, _ = _front()
    if handshake:
        assert front.feed(ENQ) == ACK
    front.feed(junk)
    if front.pending():
        front.reset()  # what the inter-byte timeout does to an unfinished frame
    _v2_status_exchange(front)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120).filter(lambda b: p.ENQ not in b and p.V3_STX not in b))
def test_without_enq_no_v2_bytes_ever_run_a_command(junk: bytes) -> None:
    front, _ = _front()
    frames = [p.encode_v2_frame(ENTER_MODE_1), junk, p.encode_v2_frame(ENTER_MODE_1)]
    out = front.feed(b"".join(frames))
    assert ACK not in out and front.state.mode == 0


# ------------------------------------------------------------------ v3: only the bad frame is dropped


def _corrupt_crc(frame: bytes) -> bytes:
    bad = bytearray(frame)
    bad[-1] ^= 0x5A
    if bad[-1] in (p.V3_STX, 0xFD):
        bad[-1] ^= 0x0F
    return bytes(bad)


@pytest.mark.parametrize(
    "bad",
    [
        _corrupt_crc(_v3_add(3, 3, ENTER_MODE_1)),  # bad CRC
        _v3_add(3, 3, ENTER_MODE_1)[:7],  # truncated
        b"\xfe\x7f\x7f\x03" + ENTER_MODE_1,  # length far beyond the data
        b"\xfe\x01\x00\x03" + p.encode_add(3, ENTER_MODE_1),  # length shorter than the data
        b"\xfe\x80",  # length low byte above 0x7F
        _v3_add(3, 3, ENTER_MODE_1)[:5] + b"\xfd\x00" + _v3_add(3, 3)[7:],  # bad escape
        b"\x00\xff\xfd\x15\x06\x04 junk",  # junk outside frames
    ],
)
def test_a_bad_v3_frame_costs_only_itself(bad: bytes) -> None:
    front, _ = _front()
    out = front.feed(bad + _v3_add(9, 9))
    assert _answered(out, 9, 9)
    assert front.state.mode == 0  # the damaged 56h never ran
    for frame in _v3_frames(out):
        if frame.packet_id == 3:
            assert frame.payload == b""  # at most the retransmission request for the bad frame


def test_a_host_frame_on_the_async_id_is_ignored_and_the_next_answers() -> None:
    front, _ = _front()
    out = front.feed(p.encode_frame(p.ASYNC_ID, p.encode_add(4, ENTER_MODE_1)) + _v3_add(9, 9))
    assert _answered(out, 9, 9) and front.state.mode == 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300).filter(lambda b: p.ENQ not in b))
def test_any_junk_before_a_valid_v3_request_never_costs_its_answer(junk: bytes) -> None:
    """Without ENQ the v2 line stays idle, so nothing but the v3 reader sees the junk; with ENQ,
    junk can form a complete v2 frame whose correct LRC is 0xFE and take the next frame's STX (the
    one ambiguity of a shared link, left to the v2 rule)."""
    front, core = _front()
    out = front.feed(junk + _v3_add(9, 9))
    if any(isinstance(item, p.V3Frame) and item.payload for item in p.V3Reader().feed(junk)):
        assert any(f.packet_id == 9 and f.payload for f in _v3_frames(out))  # a valid task may stop the buffer
    else:
        assert _answered(out, 9, 9)
    assert not any(entry.event == "emulator error" for entry in core.journal)
