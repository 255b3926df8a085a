"""The pure Pirit codec (devices/pirit/protocol) against reference §2: constants, the §2.6 worked
frames encoded and decoded byte for byte, encoding options, field escaping, tolerant decoding
and its errors (bad CRC, malformed frames), and hypothesis round trips of requests and answers.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

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
    Frame,
    FrameReader,
    MalformedFrame,
    Request,
    Response,
)

from .pirit_frames import (
    NO_PAPER_ANS,
    OFD_ANS,
    OFD_REQ,
    OPEN_SHIFT_REQ,
    SERIAL_REQ,
    START_REQ,
    STATUS_ANS,
    STATUS_REQ,
    E,
    F,
    S,
    h,
)

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


def test_completed_rows_match_the_table() -> None:
    assert SERIAL_REQ.hex(" ").upper() == "02 50 49 52 49 24 30 32 31 1C 03 30 41"
    assert SERIAL_REQ[-4:] == h("1C 03 30 41")
    assert p.crc(SERIAL_REQ[1:-2]) == 0x0A
    assert p.crc(OFD_ANS[1:-2]) == 0x2E
    assert OFD_ANS.hex(" ").upper() == (
        "02 23 37 38 30 30 37 1C 32 1C 33 1C 31 32 35 1C 32 32 31 31 32 34 1C 31 35 33 30 30 30 1C 03 32 45"
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
    assert p.decode_request(frame) == Request(b"PIRI", packet_id, command, tuple(str(f) for f in fields))


RESPONSE_VECTORS = [
    pytest.param(STATUS_ANS, 0x21, 0x00, 0x00, (0, 4, 0), id="status-answer"),
    pytest.param(NO_PAPER_ANS, 0x27, 0x30, 0x08, (), id="no-paper"),
    pytest.param(OFD_ANS, 0x23, 0x78, 0x00, (7, 2, 3, 125, "221124", "153000"), id="ofd-answer"),
]


@pytest.mark.parametrize(("frame", "packet_id", "command", "error", "fields"), RESPONSE_VECTORS)
def test_reference_responses_encode(frame: bytes, packet_id: int, command: int, error: int, fields: tuple) -> None:
    assert p.encode_response(packet_id, command, error, fields) == frame


@pytest.mark.parametrize(("frame", "packet_id", "command", "error", "fields"), RESPONSE_VECTORS)
def test_reference_responses_decode(frame: bytes, packet_id: int, command: int, error: int, fields: tuple) -> None:
    assert p.decode_response(frame) == Response(packet_id, command, error, tuple(str(f) for f in fields))


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
    assert p.decode_request(frame).fields == ("Сахар", "", "1.000", "100.00", "4", "1", "0", "100")
    with pytest.raises(TypeError):
        p.encode_request(0x42, [1.5], packet_id=0x30)  # type: ignore[list-item]  # a wrong type on purpose
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
@example(command=0, fields=("$1C",), packet_id=0x20, password=b"PIRI", fs_when_empty=False, lowercase_crc=False)
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
def test_response_round_trip(command: int, error: int, fields: tuple[str, ...], packet_id: int) -> None:
    frame = p.encode_response(packet_id, command, error, fields)
    assert frame.count(F) == len(fields)  # every field terminated, escaped FS never raw
    assert p.decode_response(frame) == Response(packet_id, command, error, expected_fields(fields))
