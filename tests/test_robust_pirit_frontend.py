"""The Pirit front-end judges each frame of a received chunk on its own: a bad frame (packet id out
of 0x20..0xF0, bad CRC, bad envelope, junk, an internal error) costs only its own answer, never
the valid request behind it in the same chunk — fed directly and over loopback TCP."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore
from devices.emulator.serve import serve
from devices.pirit import protocol as p
from devices.pirit.emulator import PiritFrontEnd

STATUS = p.encode_request(0x00, packet_id=0x21)
BAD_IDS = [*range(0x00, 0x20), *range(0xF1, 0x100)]


def _front() -> tuple[PiritFrontEnd, FiscalCore]:
    core = build_emulator("kf").core
    front = PiritFrontEnd(core)
    assert _answers(front.feed(p.encode_request(0x10, ["011220", "090000"], packet_id=0x30)))[0].error == 0
    return front, core


def _answers(out: bytes) -> list[p.Response]:
    return [p.decode_response(e.raw) for e in p.FrameReader().feed(out) if isinstance(e, p.Frame)]


def _sealed(packet_id: int, command: bytes, data: bytes = b"", password: bytes = b"PIRI") -> bytes:
    """A frame with a correct CRC whatever its id (encode_request refuses bad ids)."""
    body = password + bytes([packet_id]) + command + data + bytes([p.ETX])
    return bytes([p.STX]) + body + b"%02X" % p.crc(body)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_a_bad_packet_id_costs_only_its_own_frame(bad_id: int) -> None:
    front, core = _front()
    out = front.feed(_sealed(bad_id, b"23", "Кассир".encode("cp866") + b"\x1c") + STATUS)
    answers = _answers(out)
    if bad_id in (p.STX, p.ETX):  # these split the frame: its tail is junk, the status still answers
        assert answers[-1].packet_id == 0x21
    else:
        assert [(a.packet_id, a.command, a.error) for a in answers] == [(0x21, 0x00, 0)]
    assert not core.shift.is_open  # the open-shift request with the bad id did not run


def test_a_bad_id_with_a_bad_crc_is_silent_and_the_next_frame_answers() -> None:
    front, _ = _front()
    frame = bytearray(_sealed(0x10, b"00"))
    frame[-1] ^= 0x01  # CRC character off by one bit
    assert _answers(front.feed(bytes(frame) + STATUS))[0].packet_id == 0x21


def test_bad_crc_answers_0x07_byte_exact_and_the_request_behind_still_answers() -> None:
    front, _ = _front()
    bad = bytearray(STATUS)
    bad[-1] = ord("1") if bad[-1] != ord("1") else ord("2")
    behind = p.encode_request(0x02, [1], packet_id=0x22)
    out = front.feed(bytes(bad) + behind)
    assert out.startswith(b"\x02!0007\x0325")  # §8.2: CRC error 0x07, id echoed
    assert [(a.packet_id, a.command, a.error) for a in _answers(out)] == [(0x21, 0x00, 0x07), (0x22, 0x02, 0)]


@pytest.mark.parametrize(
    "bad",
    [
        b"\x02PIRI!ZZ\x0300",  # command not hex (the CRC is not even checked)
        b"\x02PIRI!00\x03G0",  # CRC not hex
        b"\x02PI\x0320",  # too short
        b"\x02PIRI!0",  # truncated, no ETX
        b"\x02PIRI!00\x032",  # truncated CRC
        b"\x01\x07\x15\xff junk \x03\x1c",  # junk outside frames
        b"\x02" + b"A" * 5000 + b"\x03" + b"00",  # longer than the reader's limit
    ],
)
def test_malformed_frames_are_dropped_and_the_request_behind_answers(bad: bytes) -> None:
    front, _ = _front()
    answers = _answers(front.feed(bad + STATUS))
    assert [(a.packet_id, a.command, a.error) for a in answers] == [(0x21, 0x00, 0)]


def test_wrong_password_answers_0x06_and_the_request_behind_answers() -> None:
    front, _ = _front()
    out = front.feed(p.encode_request(0x00, packet_id=0x25, password=b"XXXX") + STATUS)
    assert [(a.packet_id, a.error) for a in _answers(out)] == [(0x25, 0x06), (0x21, 0)]


def test_an_internal_error_costs_only_its_frame_and_is_journaled(monkeypatch: pytest.MonkeyPatch) -> None:
    front, core = _front()

    def broken(_request: p.Request) -> list[p.Field]:
        raise RuntimeError("boom")

    monkeypatch.setitem(front._commands, 0x13, broken)
    out = front.feed(p.encode_request(0x13, packet_id=0x24) + STATUS)
    assert [(a.packet_id, a.command) for a in _answers(out)] == [(0x21, 0x00)]
    assert [e.detail for e in core.journal if e.event == "emulator error"] == ["RuntimeError: boom"]


def test_extended_error_text_outside_cp866_is_still_answered() -> None:
    front, core = _front()
    core.wire_memory["pirit_extended"] = (20, "shift not open — ✓")
    (answer,) = _answers(front.feed(p.encode_request(0x06, [1], packet_id=0x26)))
    assert answer.error == 0 and answer.fields == ("1", "20", "shift not open ? ?")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_before_a_valid_request_never_cost_its_answer(noise: bytes) -> None:
    front, core = _front()
    answers = _answers(front.feed(noise + STATUS))
    assert answers and (answers[-1].packet_id, answers[-1].command, answers[-1].error) == (0x21, 0x00, 0)
    assert not any(e.event == "emulator error" for e in core.journal)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 255).filter(lambda b: b not in (p.STX, p.ETX)), st.binary(max_size=40))
def test_a_sealed_frame_is_answered_exactly_when_its_id_is_in_range(packet_id: int, data: bytes) -> None:
    front, _ = _front()
    data = bytes(b for b in data if b not in (p.STX, p.ETX))
    answers = _answers(front.feed(_sealed(packet_id, b"02", data) + STATUS))
    expected = [packet_id, 0x21] if p.MIN_PACKET_ID <= packet_id <= p.MAX_PACKET_ID else [0x21]
    assert [a.packet_id for a in answers] == expected


def test_over_tcp_a_bad_id_frame_does_not_swallow_the_request_behind_it() -> None:
    """The measured hang: a bad id used to make feed() raise, and the server dropped the chunk."""
    core = build_emulator("kf").core
    server = serve(lambda: PiritFrontEnd(core), "tcp://127.0.0.1:0")
    host, port = server.url.removeprefix("socket://").rsplit(":", 1)
    assert host == "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(_sealed(0x05, b"00") + _sealed(0xFF, b"00") + STATUS)
            reader, answers = p.FrameReader(), list[p.Frame]()
            while not answers:  # each recv waits at most the socket timeout
                chunk = sock.recv(4096)
                assert chunk, "connection closed without an answer"
                answers += [e for e in reader.feed(chunk) if isinstance(e, p.Frame)]
            (answer,) = [p.decode_response(e.raw) for e in answers]
            assert (answer.packet_id, answer.command, answer.error) == (0x21, 0x00, 0)
    finally:
        server.close()
