"""Tests of the pure Pirit codec (devices/pirit/protocol.py) against reference §2."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from itertools import islice

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from devices.pirit import protocol as p
from devices.pirit.protocol import (
    ACK,
    ENQ,
    ETX,
    FS,
    LF,
    NAK,
    STX,
    BadCrc,
    Control,
    Frame,
    FrameReader,
    Garbage,
    MalformedFrame,
    PacketIds,
    Request,
    Response,
)

S = bytes([STX])
E = bytes([ETX])
F = bytes([FS])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --------------------------------------------------------------------------------------------
# Constants


def test_constants() -> None:
    assert (STX, ETX, FS, ENQ, ACK, NAK, LF) == (0x02, 0x03, 0x1C, 0x05, 0x06, 0x15, 0x0A)
    assert p.DEFAULT_PASSWORD == b"PIRI"
    assert p.ENCODING == "cp866"
    assert p.MIN_ANSWER_LENGTH == 9
    assert issubclass(BadCrc, p.FrameError) and issubclass(MalformedFrame, p.FrameError)
    assert issubclass(p.FrameError, ValueError)


# --------------------------------------------------------------------------------------------
# Reference §2.6 worked frames, byte for byte

STATUS_REQ = h("02 50 49 52 49 21 30 30 03 32 30")
START_REQ = h(
    "02 50 49 52 49 22 31 30 32 33 31 31 32 34 1C 31 30 31 35 30 30 1C 03 32 30"
)
OFD_REQ = h("02 50 49 52 49 23 37 38 37 1C 03 30 36")
# Shown as "… 1C 03 30 41" in the table: completed from the algorithm.
SERIAL_REQ = S + b"PIRI$021" + F + E + b"0A"
OPEN_SHIFT_REQ = h("02 50 49 52 49 25 32 33 8A A0 E1 E1 A8 E0 1C 03 35 42")
STATUS_ANS = h("02 21 30 30 30 30 30 1C 34 1C 30 1C 03 30 41")
NO_PAPER_ANS = h("02 27 33 30 30 38 03 32 46")
# Shown as "…" in the table, CRC "2E" given: completed from the algorithm.
OFD_ANS = S + b"#78007" + F + b"2" + F + b"3" + F + b"125" + F + b"221124" + F + b"153000" + F + E + b"2E"


def test_completed_rows_match_the_table() -> None:
    assert SERIAL_REQ.hex(" ").upper() == "02 50 49 52 49 24 30 32 31 1C 03 30 41"
    assert SERIAL_REQ[-4:] == h("1C 03 30 41")
    assert p.crc(SERIAL_REQ[1:-2]) == 0x0A
    assert p.crc(OFD_ANS[1:-2]) == 0x2E
    assert OFD_ANS.hex(" ").upper() == (
        "02 23 37 38 30 30 37 1C 32 1C 33 1C 31 32 35 1C 32 32 31 31 32 34 1C "
        "31 35 33 30 30 30 1C 03 32 45"
    )


REQUEST_VECTORS = [
    pytest.param(STATUS_REQ, 0x21, 0x00, (), id="status"),
    pytest.param(
        START_REQ,
        0x22,
        0x10,
        (p.format_date(date(2024, 11, 23)), p.format_time(time(10, 15, 0))),
        id="start-of-work",
    ),
    pytest.param(OFD_REQ, 0x23, 0x78, (7,), id="ofd-status"),
    pytest.param(SERIAL_REQ, 0x24, 0x02, (1,), id="serial-number"),
    pytest.param(OPEN_SHIFT_REQ, 0x25, 0x23, ("Кассир",), id="open-shift"),
]


@pytest.mark.parametrize(("frame", "packet_id", "command", "fields"), REQUEST_VECTORS)
def test_reference_requests_encode(frame: bytes, packet_id: int, command: int, fields: tuple) -> None:
    assert p.encode_request(command, fields, packet_id=packet_id) == frame


@pytest.mark.parametrize(("frame", "packet_id", "command", "fields"), REQUEST_VECTORS)
def test_reference_requests_decode(frame: bytes, packet_id: int, command: int, fields: tuple) -> None:
    assert p.decode_request(frame) == Request(
        b"PIRI", packet_id, command, tuple(str(f) for f in fields)
    )


RESPONSE_VECTORS = [
    pytest.param(STATUS_ANS, 0x21, 0x00, 0x00, (0, 4, 0), id="status-answer"),
    pytest.param(NO_PAPER_ANS, 0x27, 0x30, 0x08, (), id="no-paper"),
    pytest.param(
        OFD_ANS, 0x23, 0x78, 0x00, (7, 2, 3, 125, "221124", "153000"), id="ofd-answer"
    ),
]


@pytest.mark.parametrize(("frame", "packet_id", "command", "error", "fields"), RESPONSE_VECTORS)
def test_reference_responses_encode(
    frame: bytes, packet_id: int, command: int, error: int, fields: tuple
) -> None:
    assert p.encode_response(packet_id, command, error, fields) == frame


@pytest.mark.parametrize(("frame", "packet_id", "command", "error", "fields"), RESPONSE_VECTORS)
def test_reference_responses_decode(
    frame: bytes, packet_id: int, command: int, error: int, fields: tuple
) -> None:
    assert p.decode_response(frame) == Response(
        packet_id, command, error, tuple(str(f) for f in fields)
    )


def test_openpapyrus_example_and_crc_scope() -> None:
    # STX "PIRI!00" ETX "20": the CRC covers everything after STX, including ETX.
    assert p.crc(b"PIRI!00" + E) == 0x20
    assert p.crc(b"PIRI!00") == 0x23
    assert p.crc(b"") == 0


# --------------------------------------------------------------------------------------------
# Encoding details


def test_fs_when_empty_java_style() -> None:
    frame = p.encode_request(0x00, packet_id=0x21, fs_when_empty=True)
    assert frame == S + b"PIRI!00" + F + E + b"%02X" % p.crc(b"PIRI!00" + F + E)
    assert p.decode_request(frame).fields == ()
    # fs_when_empty only matters when there are no fields
    assert p.encode_request(0x78, [7], packet_id=0x23, fs_when_empty=True) == OFD_REQ


def test_lowercase_crc_encode_and_decode() -> None:
    # 0x0A is the only CRC of the reference vectors with a letter
    frame = p.encode_request(0x02, [1], packet_id=0x24, lowercase_crc=True)
    assert frame == SERIAL_REQ[:-2] + b"0a"
    assert p.decode_request(frame) == p.decode_request(SERIAL_REQ)
    assert p.decode_response(STATUS_ANS[:-2] + b"0a") == p.decode_response(STATUS_ANS)


def test_field_types() -> None:
    frame = p.encode_request(
        0x42,
        ["Сахар", None, Decimal("1.000"), Decimal("100.00"), 4, True, False, Decimal("1E+2")],
        packet_id=0x30,
    )
    assert p.decode_request(frame).fields == (
        "Сахар", "", "1.000", "100.00", "4", "1", "0", "100"
    )
    with pytest.raises(TypeError):
        p.encode_request(0x42, [1.5], packet_id=0x30)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        p.encode_request(0x42, "abc", packet_id=0x30)
    with pytest.raises(ValueError):
        p.encode_request(0x42, [Decimal("NaN")], packet_id=0x30)
    with pytest.raises(UnicodeEncodeError):
        p.encode_request(0x42, ["€"], packet_id=0x30)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"packet_id": 0x1F},
        {"packet_id": 0xF1},
        {"packet_id": 0x21, "password": b"PIR"},
        {"packet_id": 0x21, "password": b"PI\x03I"},
    ],
)
def test_encode_request_rejects_bad_envelope(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        p.encode_request(0x00, **kwargs)


def test_encode_rejects_bad_codes() -> None:
    with pytest.raises(ValueError):
        p.encode_request(0x100, packet_id=0x21)
    with pytest.raises(ValueError):
        p.encode_request(-1, packet_id=0x21)
    with pytest.raises(ValueError):
        p.encode_response(0x21, 0x00, 0x100)
    with pytest.raises(ValueError):
        p.encode_response(0x1F, 0x00, 0)


def test_other_password() -> None:
    frame = p.encode_request(0x00, packet_id=0x21, password=b"DRRB")
    assert frame[1:5] == b"DRRB"
    assert p.decode_request(frame).password == b"DRRB"


# --------------------------------------------------------------------------------------------
# Escaping


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("abc", b"abc"),
        ("a\x1cb", b"a$1Cb"),
        ("\x00\x02\x03\x1f", b"$00$02$03$1F"),
        ("Цена $5", "Цена $5".encode("cp866")),  # lone $ stays literal
        ("$", b"$"),
        ("$$", b"$$"),
        ("$1", b"$1"),
        ("$1C", b"$241C"),  # would read as an escape: the $ itself is escaped
        ("$ab", b"$24ab"),
        ("$\x01", b"$$01"),
        ("$A\x01", b"$A$01"),
        ("\x7f", b"\x7f"),
    ],
)
def test_escape_field(text: str, wire: bytes) -> None:
    assert p.escape_field(text) == wire
    assert p.unescape_field(wire) == text


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        (b"$1c", "\x1c"),  # lower-case hex accepted when reading
        (b"$4", "$4"),
        (b"$G1", "$G1"),
        (b"x$", "x$"),
        (b"$8A", "К"),  # an escaped high byte decodes through CP866
    ],
)
def test_unescape_field_tolerant(wire: bytes, text: str) -> None:
    assert p.unescape_field(wire) == text


# --------------------------------------------------------------------------------------------
# Decoding: tolerance and errors


def test_decode_response_terminated_and_separated_are_equal() -> None:
    terminated = S + b"!0000" + b"0" + F + b"4" + F + b"0" + F + E
    separated = S + b"!0000" + b"0" + F + b"4" + F + b"0" + E
    for body in (terminated, separated):
        frame = body + b"%02X" % p.crc(body[1:])
        assert p.decode_response(frame).fields == ("0", "4", "0")


def test_decode_response_empty_fields_kept() -> None:
    frame = p.encode_response(0x21, 0x02, 0, ["", "x", ""])
    assert frame[6:-3] == F + b"x" + F + F
    assert p.decode_response(frame).fields == ("", "x", "")


def test_decode_request_without_trailing_fs() -> None:
    body = b"PIRI\x2210231124" + F + b"101500" + E
    frame = S + body + b"%02X" % p.crc(body)
    assert p.decode_request(frame) == p.decode_request(START_REQ)


def test_lower_case_command_and_error_accepted() -> None:
    body = b"PIRI!a0" + E
    assert p.decode_request(S + body + b"%02X" % p.crc(body)).command == 0xA0
    body = b"!a00b" + E
    resp = p.decode_response(S + body + b"%02X" % p.crc(body))
    assert (resp.command, resp.error, resp.ok) == (0xA0, 0x0B, False)


def test_bad_crc_request_carries_id_and_command() -> None:
    frame = START_REQ[:-2] + b"21"
    with pytest.raises(BadCrc) as info:
        p.decode_request(frame)
    assert (info.value.packet_id, info.value.command) == (0x22, 0x10)
    assert (info.value.received, info.value.expected) == (0x21, 0x20)


def test_bad_crc_answer_carries_id_and_command() -> None:
    with pytest.raises(BadCrc) as info:
        p.decode_response(NO_PAPER_ANS[:-2] + b"2E")
    assert (info.value.packet_id, info.value.command) == (0x27, 0x30)


def test_bad_crc_with_unparseable_command() -> None:
    body = b"PIRI!ZZ" + E
    with pytest.raises(BadCrc) as info:
        p.decode_request(S + body + b"%02X" % (p.crc(body) ^ 1))
    assert (info.value.packet_id, info.value.command) == (0x21, None)


def test_corrupted_data_byte_is_bad_crc() -> None:
    frame = bytearray(OPEN_SHIFT_REQ)
    frame[9] ^= 0x01
    with pytest.raises(BadCrc):
        p.decode_request(bytes(frame))


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"", id="empty"),
        pytest.param(STATUS_REQ[:-1], id="truncated"),
        pytest.param(b"\x01" + STATUS_REQ[1:], id="no-stx"),
        pytest.param(STATUS_REQ + b"0", id="trailing-byte"),
        pytest.param(STATUS_REQ[:-2] + b"2G", id="crc-not-hex"),
        pytest.param(S + b"PIRI!0" + E + b"00" + E + b"20", id="etx-inside"),
        pytest.param(S + b"PIRI!00" + S + E + b"22", id="stx-inside"),
    ],
)
def test_malformed_requests(frame: bytes) -> None:
    with pytest.raises(MalformedFrame):
        p.decode_request(frame)


def test_malformed_command_with_good_crc() -> None:
    body = b"PIRI!ZZ" + E
    with pytest.raises(MalformedFrame):
        p.decode_request(S + body + b"%02X" % p.crc(body))
    body = b"!00X0" + E
    with pytest.raises(MalformedFrame):
        p.decode_response(S + body + b"%02X" % p.crc(body))


def test_minimum_answer_length() -> None:
    assert len(NO_PAPER_ANS) == p.MIN_ANSWER_LENGTH
    p.decode_response(NO_PAPER_ANS)
    body = b"'300" + E
    with pytest.raises(MalformedFrame):
        p.decode_response(S + body + b"%02X" % p.crc(body))


def test_recovery_frame() -> None:
    assert p.is_recovery_frame(p.decode_response(p.encode_response(0x20, 0x00, 0x05)))
    assert not p.is_recovery_frame(p.decode_response(STATUS_ANS))


# --------------------------------------------------------------------------------------------
# Round trips (hypothesis)

cp866_text = st.binary(max_size=40).map(lambda raw: raw.decode("cp866"))
tricky_text = st.text(alphabet="$0aF9\x00\x01\x02\x03\x1c\x1fЖё \x7f", max_size=12)
text_field = st.one_of(cp866_text, tricky_text)
fields_strategy = st.lists(text_field, max_size=8).map(tuple)
packet_ids = st.integers(min_value=0x20, max_value=0xF0)
commands = st.integers(min_value=0, max_value=255)


def expected_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    # the single documented lossy case: one empty field == no fields on the wire
    return () if fields == ("",) else fields


@given(text=text_field)
def test_escape_round_trip(text: str) -> None:
    wire = p.escape_field(text)
    assert not any(byte < 0x20 for byte in wire)
    assert p.unescape_field(wire) == text


@given(
    command=commands,
    fields=fields_strategy,
    packet_id=packet_ids,
    password=st.sampled_from([b"PIRI", b"DRRB", b"0000"]),
    fs_when_empty=st.booleans(),
    lowercase_crc=st.booleans(),
)
@example(command=0, fields=("$1C",), packet_id=0x20, password=b"PIRI", fs_when_empty=False,
         lowercase_crc=False)
def test_request_round_trip(
    command: int,
    fields: tuple[str, ...],
    packet_id: int,
    password: bytes,
    fs_when_empty: bool,
    lowercase_crc: bool,
) -> None:
    frame = p.encode_request(
        command,
        fields,
        packet_id=packet_id,
        password=password,
        fs_when_empty=fs_when_empty,
        lowercase_crc=lowercase_crc,
    )
    assert frame.count(S) == 1 and frame.count(E) == 1 and frame[-3] == ETX
    assert p.decode_request(frame) == Request(password, packet_id, command, expected_fields(fields))
    assert [type(e) for e in FrameReader().feed(frame)] == [Frame]


@given(command=commands, error=commands, fields=fields_strategy, packet_id=packet_ids)
def test_response_round_trip(
    command: int, error: int, fields: tuple[str, ...], packet_id: int
) -> None:
    frame = p.encode_response(packet_id, command, error, fields)
    assert frame.count(F) == len(fields)  # every field terminated, escaped FS never raw
    assert p.decode_response(frame) == Response(packet_id, command, error, expected_fields(fields))


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
STREAM = b"".join(e.raw if isinstance(e, Frame) else bytes([e.byte]) for e in STREAM_EVENTS)


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
    assert reader.pending() == any(
        0 < cut - start < len(e.raw)
        for start, e in _frame_spans()
    )
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
    events = [e for a, b in zip(bounds, bounds[1:]) for e in reader.feed(STREAM[a:b])]
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
    assert p.decode_request(events[0].raw).command == 0x02


def test_reader_bad_crc_frame_still_split_then_rejected() -> None:
    bad = START_REQ[:-2] + b"FF"
    events = FrameReader().feed(bad + STATUS_REQ)
    assert events == [Frame(bad), Frame(STATUS_REQ)]
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


# --------------------------------------------------------------------------------------------
# Data types


def test_dates_and_times() -> None:
    assert p.format_date(date(2024, 11, 23)) == "231124"
    assert p.format_date(date(2009, 1, 5)) == "050109"
    assert p.parse_date("231124") == date(2024, 11, 23)
    assert p.parse_date("26032022") == date(2022, 3, 26)
    assert p.format_time(time(10, 15, 0)) == "101500"
    assert p.format_time(time(9, 5, 7, 999)) == "090507"
    assert p.parse_time("153000") == time(15, 30)
    for bad in ("", "2311245", "23-11-24", "321124", "２３１１２４"):
        with pytest.raises(ValueError):
            p.parse_date(bad)
    for bad in ("1015", "246000", "ab0000"):
        with pytest.raises(ValueError):
            p.parse_time(bad)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.times())
def test_date_time_round_trip(d: date, t: time) -> None:
    assert p.parse_date(p.format_date(d)) == d
    assert p.parse_time(p.format_time(t)) == t.replace(microsecond=0, tzinfo=None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("100"), "100.00"),
        (Decimal("100.5"), "100.50"),
        (Decimal("0.01"), "0.01"),
        (Decimal("-3.10"), "-3.10"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("12.3400"), "12.34"),
        (7, "7.00"),
    ],
)
def test_format_money(value: Decimal, text: str) -> None:
    assert p.format_money(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1"), "1"),
        (Decimal("1.000"), "1"),
        (Decimal("1.5"), "1.5"),
        (Decimal("1.50"), "1.5"),
        (Decimal("0.125"), "0.125"),
        (Decimal("10"), "10"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.000"), "0"),
        (Decimal("-0.000"), "0"),
    ],
)
def test_format_quantity(value: Decimal, text: str) -> None:
    assert p.format_quantity(value) == text


@pytest.mark.parametrize("value", [Decimal("1.005"), Decimal("NaN"), 1.5, "1.00", True])
def test_format_money_refuses(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        p.format_money(value)  # type: ignore[arg-type]


def test_format_quantity_refuses_rounding() -> None:
    with pytest.raises(ValueError):
        p.format_quantity(Decimal("0.0001"))


def test_parse_numbers() -> None:
    assert p.parse_int("") == 0 and p.parse_int("42") == 42
    assert p.parse_decimal("") == 0 and p.parse_decimal("-1.25") == Decimal("-1.25")
    assert p.parse_decimal("100.00") == Decimal("100.00")
    with pytest.raises(ValueError):
        p.parse_decimal("1e5")
    with pytest.raises(ValueError):
        p.parse_int("x")


# --------------------------------------------------------------------------------------------
# Names and describe()


def test_command_names() -> None:
    assert p.COMMAND_NAMES[0x00] == "status"
    assert p.COMMAND_NAMES[0x10] == "start of work"
    for code in (0x02, 0x06, 0x21, 0x23, 0x30, 0x31, 0x42, 0x47, 0x60, 0x78, 0x9C, 0xA6):
        assert p.COMMAND_NAMES[code]
    assert all(isinstance(k, int) and 0 <= k <= 0xFF for k in p.COMMAND_NAMES)


def test_describe_examples() -> None:
    assert p.describe(STATUS_REQ) == "REQ id=0x21 00 status []"
    assert p.describe(STATUS_ANS) == 'ANS id=0x21 00 status err=00 ["0","4","0"]'
    assert p.describe(NO_PAPER_ANS) == "ANS id=0x27 30 open document err=08 []"
    assert p.describe(OPEN_SHIFT_REQ) == 'REQ id=0x25 23 open shift ["Кассир"]'
    assert p.describe(bytes([ENQ])) == "ENQ"
    assert p.describe(bytes([ACK])) == "ACK"


def test_describe_variants() -> None:
    assert "pwd='DRRB'" in p.describe(p.encode_request(0, packet_id=0x21, password=b"DRRB"))
    assert "BAD-CRC(got 21, want 20)" in p.describe(START_REQ[:-2] + b"21")
    assert p.describe(START_REQ[:-2] + b"21").startswith("REQ id=0x22 10 start of work")
    assert "recovery" in p.describe(p.encode_response(0x20, 0x00, 0x05))
    assert "unknown" in p.describe(p.encode_request(0xFE, packet_id=0x21))
    assert p.describe(OFD_ANS, kind="answer").startswith("ANS id=0x23 78 FN query err=00")


@pytest.mark.parametrize(
    "junk", [b"", b"\x02", b"\x02PIRI", b"hello world", b"\xff" * 100, STATUS_REQ[:-1], b"\x15\x15"]
)
def test_describe_never_raises(junk: bytes) -> None:
    text = p.describe(junk)
    assert text.startswith("undecodable: ")


def test_describe_never_raises_on_non_bytes() -> None:
    assert p.describe(None).startswith("undecodable: ")  # type: ignore[arg-type]


@given(st.binary(max_size=40))
def test_describe_total(junk: bytes) -> None:
    assert isinstance(p.describe(junk), str)
