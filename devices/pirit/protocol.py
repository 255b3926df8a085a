"""Pirit wire protocol: a pure codec (no I/O, no threads, no clocks).

Spoken by Пирит 2Ф, Вики Принт (FM16) and the fisGo fiscal core *punix* (Касса Ф), over
RS-232 / USB virtual COM (57600 8N1) or TCP 50003.  Everything here follows
``reference/protocols.md`` §2; the section numbers below point there.

Frames (§2.2)
-------------
Request (host → device)::

    STX | password (4) | packet id (1) | command (2 hex) | field FS field FS ... | ETX | CRC (2 hex)

Answer (device → host)::

    STX | packet id (1) | command (2 hex) | error (2 hex) | field FS field FS ... | ETX | CRC (2 hex)

The CRC is the XOR of every byte after STX up to and including ETX, written as two hex
digits.  We *write* upper case; we *accept* both cases (OpenPapyrus writes lower case and real
devices take it).  Command and error codes are likewise written upper case and read in either.

Besides frames, single bytes travel outside frames: ENQ (host asks "alive?"), ACK (the device's
answer to ENQ, and its "ready" in two-stage binary commands), NAK, and LF (paper feed).

Decisions taken here (where the reference leaves a choice)
----------------------------------------------------------
* **Field terminators.**  Encoders terminate *every* field with FS.  A request without fields
  carries no FS at all (Dreamkas C++ style) unless ``fs_when_empty=True`` (Dreamkas Java
  sample style: one lone FS).  Answers always terminate every field, which satisfies clients
  that count terminators (Dreamkas lib) as well as those that split on FS.
  Decoders accept fields that are terminated *or* merely separated by FS: exactly one trailing
  FS is dropped, the rest is split on FS.  A data part that is a single lone FS decodes to
  ``()``: on the wire "one empty field" and "no fields, Java style" are the same bytes, and in
  Pirit semantics an empty field means "default / 0" exactly like an absent one.  So
  ``("",)`` is the only field tuple that does not survive an encode/decode round trip
  (it comes back as ``()``).
* **The ``$xy`` escape (§2.2, "Control characters inside strings").**  Bytes 0x00-0x1F of the
  CP866 text are written as ``$`` plus two upper-case hex digits (``\\x1c`` → ``$1C``).  The
  reference says the manual defines the escape for marking codes / tag data and Dreamkas' own
  sample applies it to *every* parameter, so we do too, in requests and answers alike.
  The reference does not say how a literal ``$`` is written.  We escape a ``$`` (as ``$24``)
  **only when it is followed by two hex digits** in the text, i.e. only where a reader could
  otherwise mistake it for an escape; every other ``$`` is sent as is, so ordinary text
  ("Цена $5") reaches even a device that does not unescape plain strings unchanged.
  The reader turns ``$`` + two hex digits (either case) into that byte; any other ``$`` stays
  literal.  This was decided from the reference text alone (the vendor manual was not
  consulted); if a device turns out to treat ``$`` differently, only
  :func:`escape_field` / :func:`unescape_field` change.
* **Text** is CP866.  Characters outside CP866 raise :class:`UnicodeEncodeError` (a
  ``ValueError``) when encoding; every byte decodes.
* **Packet ids.**  Encoders accept 0x20..0xF0 (the manual's range).  :class:`PacketIds` hands
  out 0x21..0x3F cyclically and never 0x20, because after a link failure the device may emit a
  "recovery" error frame with id 0x20 that the host must discard (Crystal, §2.2); see
  :func:`is_recovery_frame`.
* **Numbers.**  ``int`` fields are written in decimal; ``Decimal`` fields are written with the
  exponent they carry (``Decimal("100.00")`` → ``100.00``, ``Decimal("1E+2")`` → ``100``, never
  scientific notation) — callers quantize, or use :func:`format_money` (exactly two decimals)
  and :func:`format_quantity` (the shortest form with at most three decimals: ``1``, ``1.5``,
  ``0.125``).  Both refuse values that would need rounding: a harness must not silently change
  the amounts it sends.  ``float`` is refused everywhere.
* **FrameReader** (stream splitter): inside a frame only STX is special (it starts a new frame;
  the partial one is reported as garbage) and ETX ends the data; the two bytes after ETX are the
  CRC, whatever they are (:func:`decode_request` / :func:`decode_response` validate them).  ENQ,
  ACK, NAK, LF are reported as :class:`Control` only *outside* frames.  Other bytes outside
  frames are collected into one :class:`Garbage` event per :meth:`FrameReader.feed` call
  (flushed before the next frame or control byte), so how a stream is chunked never changes the
  frames and control bytes found, only how garbage is grouped.  The raw payload of two-stage
  binary commands (logo, pictures, §2.2) is not framed; read it around the reader
  (``reset()`` first).
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Literal, TypeAlias

__all__ = [
    "ACK",
    "COMMAND_NAMES",
    "CONTROL_NAMES",
    "DEFAULT_PASSWORD",
    "ENCODING",
    "ENQ",
    "ETX",
    "FS",
    "LF",
    "MIN_ANSWER_LENGTH",
    "MIN_REQUEST_LENGTH",
    "NAK",
    "RECOVERY_PACKET_ID",
    "STX",
    "BadCrc",
    "Control",
    "Event",
    "Field",
    "Frame",
    "FrameError",
    "FrameReader",
    "Garbage",
    "MalformedFrame",
    "PacketIds",
    "Request",
    "Response",
    "crc",
    "decode_request",
    "decode_response",
    "describe",
    "encode_request",
    "encode_response",
    "escape_field",
    "format_date",
    "format_money",
    "format_quantity",
    "format_time",
    "is_recovery_frame",
    "parse_date",
    "parse_decimal",
    "parse_int",
    "parse_time",
    "unescape_field",
]

# --------------------------------------------------------------------------------------------
# Constants (§2.2)

STX = 0x02
ETX = 0x03
ENQ = 0x05
ACK = 0x06
LF = 0x0A
NAK = 0x15
FS = 0x1C

CONTROL_NAMES: dict[int, str] = {ENQ: "ENQ", ACK: "ACK", NAK: "NAK", LF: "LF"}

DEFAULT_PASSWORD = b"PIRI"
ENCODING = "cp866"

MIN_ANSWER_LENGTH = 9  # STX + id + command(2) + error(2) + ETX + CRC(2)
MIN_REQUEST_LENGTH = 11  # STX + password(4) + id + command(2) + ETX + CRC(2)

MIN_PACKET_ID = 0x20
MAX_PACKET_ID = 0xF0
RECOVERY_PACKET_ID = 0x20

_FS_BYTES = bytes([FS])
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


# --------------------------------------------------------------------------------------------
# Errors


class FrameError(ValueError):
    """A byte string is not a valid Pirit frame."""


class BadCrc(FrameError):
    """The frame is well formed but its checksum does not match.

    ``packet_id`` and ``command`` are filled in when they could be parsed (``None`` otherwise),
    so that an emulator can still answer error 0x07 with the right id.
    """

    def __init__(
        self,
        message: str,
        *,
        packet_id: int | None = None,
        command: int | None = None,
        received: int | None = None,
        expected: int | None = None,
    ) -> None:
        super().__init__(message)
        self.packet_id = packet_id
        self.command = command
        self.received = received
        self.expected = expected


class MalformedFrame(FrameError):
    """The frame's structure is wrong (length, STX/ETX placement, non-hex codes...)."""


# --------------------------------------------------------------------------------------------
# Checksum and field escaping


def crc(body: bytes) -> int:
    """XOR of ``body``: pass every byte after STX up to and including ETX."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def escape_field(text: str) -> bytes:
    """Encode one text field: CP866, bytes 0x00-0x1F as ``$xy``; ``$`` as ``$24`` only when
    followed by two hex digits (see the module docstring)."""
    raw = text.encode(ENCODING)
    out = bytearray()
    for i, byte in enumerate(raw):
        if byte < 0x20:
            out += b"$%02X" % byte
        elif byte == 0x24 and _is_hex_pair(raw, i + 1):  # "$"
            out += b"$24"
        else:
            out.append(byte)
    return bytes(out)


def unescape_field(raw: bytes) -> str:
    """Inverse of :func:`escape_field`: ``$`` + two hex digits (either case) becomes that byte;
    a ``$`` not followed by two hex digits stays literal."""
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x24 and _is_hex_pair(raw, i + 1):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode(ENCODING)


def _is_hex_pair(raw: bytes, at: int) -> bool:
    return at + 2 <= len(raw) and raw[at] in _HEX_DIGITS and raw[at + 1] in _HEX_DIGITS


# --------------------------------------------------------------------------------------------
# Field values

Field: TypeAlias = str | int | Decimal | None
"""One parameter: ``None`` → empty field, ``str`` → escaped CP866 text, ``int`` → decimal
digits (``bool`` → 0/1), ``Decimal`` → fixed-point with its own exponent."""


def _field_bytes(value: Field) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return escape_field(value)
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send a non-finite Decimal: {value}")
        return format(value, "f").encode("ascii")
    raise TypeError(f"unsupported field type {type(value).__name__}: {value!r}")


def _data_bytes(fields: Sequence[Field]) -> bytes:
    if isinstance(fields, (str, bytes)):
        raise TypeError("fields must be a sequence of fields, not a single string")
    return b"".join(_field_bytes(value) + _FS_BYTES for value in fields)


def _split_fields(data: bytes) -> tuple[str, ...]:
    """Terminated or separated by FS give the same tuple; empty data and a lone FS give ()."""
    if data.endswith(_FS_BYTES):
        data = data[:-1]
    if not data:
        return ()
    return tuple(unescape_field(part) for part in data.split(_FS_BYTES))


# --------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Request:
    """A decoded host → device frame."""

    password: bytes
    packet_id: int
    command: int
    fields: tuple[str, ...]

    @property
    def command_name(self) -> str:
        return COMMAND_NAMES.get(self.command, "unknown")


@dataclass(frozen=True)
class Response:
    """A decoded device → host frame (``error`` 0 = success)."""

    packet_id: int
    command: int
    error: int
    fields: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.error == 0

    @property
    def command_name(self) -> str:
        return COMMAND_NAMES.get(self.command, "unknown")


def is_recovery_frame(resp: Response) -> bool:
    """The unsolicited error frame a device may send after a link failure (id 0x20); the host
    discards it and keeps reading for the real answer."""
    return resp.packet_id == RECOVERY_PACKET_ID


# --------------------------------------------------------------------------------------------
# Encoding


def _check_byte(name: str, value: int, low: int = 0, high: int = 0xFF) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in 0x{low:02X}..0x{high:02X}, got {value!r}")


def _seal(body: bytes, *, lowercase_crc: bool = False) -> bytes:
    """STX + body + ETX + CRC, where the CRC covers body and ETX."""
    body += bytes([ETX])
    checksum = b"%02x" % crc(body) if lowercase_crc else b"%02X" % crc(body)
    return bytes([STX]) + body + checksum


def encode_request(
    command: int,
    fields: Sequence[Field] = (),
    *,
    packet_id: int,
    password: bytes = DEFAULT_PASSWORD,
    fs_when_empty: bool = False,
    lowercase_crc: bool = False,
) -> bytes:
    """Build a host → device frame.  Every field is followed by FS; with no fields there is no
    FS unless ``fs_when_empty``.  ``lowercase_crc`` exists to test tolerant receivers."""
    _check_byte("command", command)
    _check_byte("packet_id", packet_id, MIN_PACKET_ID, MAX_PACKET_ID)
    if not isinstance(password, bytes) or len(password) != 4:
        raise ValueError(f"password must be 4 bytes, got {password!r}")
    if any(byte < 0x20 for byte in password):
        raise ValueError(f"password must not contain control bytes: {password!r}")
    data = _data_bytes(fields)
    if not data and fs_when_empty:
        data = _FS_BYTES
    body = password + bytes([packet_id]) + b"%02X" % command + data
    return _seal(body, lowercase_crc=lowercase_crc)


def encode_response(
    packet_id: int, command: int, error: int, fields: Sequence[Field] = ()
) -> bytes:
    """Build a device → host frame; every field is terminated by FS; no password."""
    _check_byte("packet_id", packet_id, MIN_PACKET_ID, MAX_PACKET_ID)
    _check_byte("command", command)
    _check_byte("error", error)
    body = bytes([packet_id]) + b"%02X%02X" % (command, error) + _data_bytes(fields)
    return _seal(body)


# --------------------------------------------------------------------------------------------
# Decoding


def _parse_hex_byte(raw: bytes) -> int | None:
    if len(raw) == 2 and raw[0] in _HEX_DIGITS and raw[1] in _HEX_DIGITS:
        return int(raw, 16)
    return None


def _open_frame(frame: bytes, min_length: int, kind: str) -> bytes:
    """Check the envelope (STX ... ETX CRC) and return the body between STX and ETX.

    Raises :class:`MalformedFrame`; a checksum mismatch is reported by the caller (it knows how
    to parse the id and command for :class:`BadCrc`).
    """
    if not isinstance(frame, (bytes, bytearray)):
        raise MalformedFrame(f"{kind}: expected bytes, got {type(frame).__name__}")
    frame = bytes(frame)
    if len(frame) < min_length:
        raise MalformedFrame(f"{kind}: {len(frame)} bytes, at least {min_length} needed")
    if frame[0] != STX:
        raise MalformedFrame(f"{kind}: does not start with STX (0x{frame[0]:02X})")
    if frame[-3] != ETX:
        raise MalformedFrame(f"{kind}: no ETX before the two CRC characters")
    body = frame[1:-3]
    if STX in body or ETX in body:
        raise MalformedFrame(f"{kind}: STX or ETX inside the frame")
    if _parse_hex_byte(frame[-2:]) is None:
        raise MalformedFrame(f"{kind}: CRC {frame[-2:]!r} is not two hex digits")
    return body


def _crc_mismatch(frame: bytes) -> tuple[int, int] | None:
    """(received, expected) when the CRC is wrong, else None.  Envelope already checked."""
    received = int(frame[-2:], 16)
    expected = crc(frame[1:-2])
    return None if received == expected else (received, expected)


def _decode_request(frame: bytes, *, check_crc: bool = True) -> Request:
    body = _open_frame(frame, MIN_REQUEST_LENGTH, "request")
    password, packet_id, command = body[0:4], body[4], _parse_hex_byte(body[5:7])
    if check_crc and (mismatch := _crc_mismatch(frame)):
        raise BadCrc(
            f"request CRC 0x{mismatch[0]:02X}, computed 0x{mismatch[1]:02X}",
            packet_id=packet_id,
            command=command,
            received=mismatch[0],
            expected=mismatch[1],
        )
    if command is None:
        raise MalformedFrame(f"request: command {body[5:7]!r} is not two hex digits")
    return Request(password, packet_id, command, _split_fields(body[7:]))


def _decode_response(frame: bytes, *, check_crc: bool = True) -> Response:
    body = _open_frame(frame, MIN_ANSWER_LENGTH, "answer")
    packet_id, command, error = body[0], _parse_hex_byte(body[1:3]), _parse_hex_byte(body[3:5])
    if check_crc and (mismatch := _crc_mismatch(frame)):
        raise BadCrc(
            f"answer CRC 0x{mismatch[0]:02X}, computed 0x{mismatch[1]:02X}",
            packet_id=packet_id,
            command=command,
            received=mismatch[0],
            expected=mismatch[1],
        )
    if command is None:
        raise MalformedFrame(f"answer: command {body[1:3]!r} is not two hex digits")
    if error is None:
        raise MalformedFrame(f"answer: error code {body[3:5]!r} is not two hex digits")
    return Response(packet_id, command, error, _split_fields(body[5:]))


def decode_request(frame: bytes) -> Request:
    """Parse one complete host → device frame (STX .. CRC).

    Accepts upper- or lower-case CRC/command hex and data with or without a trailing FS.
    Raises :class:`BadCrc` (id/command filled when parseable) or :class:`MalformedFrame`.
    """
    return _decode_request(frame)


def decode_response(frame: bytes) -> Response:
    """Parse one complete device → host frame (STX .. CRC).

    Fields terminated by FS or only separated by FS give the same tuple; empty data gives ().
    Raises :class:`BadCrc` (id/command filled when parseable) or :class:`MalformedFrame`.
    """
    return _decode_response(frame)


# --------------------------------------------------------------------------------------------
# Stream splitting


@dataclass(frozen=True)
class Frame:
    """A complete frame as received: STX .. ETX + two CRC characters (not yet validated)."""

    raw: bytes


@dataclass(frozen=True)
class Control:
    """A single control byte (ENQ, ACK, NAK or LF) received outside a frame."""

    byte: int

    @property
    def name(self) -> str:
        return CONTROL_NAMES.get(self.byte, f"0x{self.byte:02X}")


@dataclass(frozen=True)
class Garbage:
    """Bytes outside frames, or a partial frame abandoned (new STX, or ``max_frame`` exceeded)."""

    raw: bytes


Event: TypeAlias = Frame | Control | Garbage


class FrameReader:
    """Incremental splitter of a byte stream into :class:`Frame`, :class:`Control` and
    :class:`Garbage` events.  Used for requests (emulator) and answers (driver) alike.

    A frame starts at STX and ends at ETX plus exactly two CRC characters; ETX cannot occur in
    the data because bytes below 0x20 are escaped.  A new STX inside an unfinished frame
    abandons it (reported as garbage) and starts over; so does exceeding ``max_frame`` bytes,
    after which bytes are garbage until the next STX.
    """

    def __init__(self, *, max_frame: int = 4096) -> None:
        if max_frame < MIN_ANSWER_LENGTH:
            raise ValueError(f"max_frame must be at least {MIN_ANSWER_LENGTH}")
        self._max_frame = max_frame
        self._frame = bytearray()  # unfinished frame, starts with STX when non-empty
        self._crc_left = 0  # CRC characters still expected after ETX (0 = ETX not seen yet)

    def pending(self) -> bool:
        """True while an unfinished frame is buffered."""
        return bool(self._frame)

    def partial(self) -> bytes:
        """The bytes of the unfinished frame (for error messages and traces)."""
        return bytes(self._frame)

    def reset(self) -> None:
        """Drop the unfinished frame, if any (nothing is reported)."""
        self._frame.clear()
        self._crc_left = 0

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events completed by it, in stream order."""
        events: list[Event] = []
        garbage = bytearray()

        def flush_garbage() -> None:
            if garbage:
                events.append(Garbage(bytes(garbage)))
                garbage.clear()

        for byte in data:
            if byte == STX:
                garbage += self._frame  # abandoned partial frame (resync)
                self.reset()
                flush_garbage()
                self._frame.append(byte)
            elif self._frame:
                self._frame.append(byte)
                if len(self._frame) > self._max_frame:
                    garbage += self._frame  # oversized: give up, skip to the next STX
                    self.reset()
                elif self._crc_left:
                    self._crc_left -= 1
                    if not self._crc_left:
                        flush_garbage()
                        events.append(Frame(bytes(self._frame)))
                        self.reset()
                elif byte == ETX:
                    self._crc_left = 2
            elif byte in CONTROL_NAMES:
                flush_garbage()
                events.append(Control(byte))
            else:
                garbage.append(byte)
        flush_garbage()
        return events


# --------------------------------------------------------------------------------------------
# Packet ids


class PacketIds(Iterator[int]):
    """Endless packet ids 0x21, 0x22, ... 0x3F, 0x21, ...; never 0x20 (the recovery id)."""

    FIRST = 0x21
    LAST = 0x3F

    def __init__(self, start: int = FIRST) -> None:
        if not self.FIRST <= start <= self.LAST:
            raise ValueError(f"start must be in 0x{self.FIRST:02X}..0x{self.LAST:02X}")
        self._next = start

    def __iter__(self) -> PacketIds:
        return self

    def __next__(self) -> int:
        value = self._next
        self._next = self.FIRST if value == self.LAST else value + 1
        return value


# --------------------------------------------------------------------------------------------
# Data types (§2.4)

_DIGITS = re.compile(r"[0-9]+")


def format_date(d: date) -> str:
    """``ddmmyy``."""
    return d.strftime("%d%m") + f"{d.year % 100:02d}"


def parse_date(s: str) -> date:
    """``ddmmyy`` (years 2000-2099) or ``ddmmyyyy`` (the manual's Date8)."""
    if not _DIGITS.fullmatch(s) or len(s) not in (6, 8):
        raise ValueError(f"not a ddmmyy / ddmmyyyy date: {s!r}")
    year = 2000 + int(s[4:6]) if len(s) == 6 else int(s[4:8])
    return date(year, int(s[2:4]), int(s[0:2]))


def format_time(t: time) -> str:
    """``hhmmss``."""
    return t.strftime("%H%M%S")


def parse_time(s: str) -> time:
    """``hhmmss``."""
    if not _DIGITS.fullmatch(s) or len(s) != 6:
        raise ValueError(f"not an hhmmss time: {s!r}")
    return time(int(s[0:2]), int(s[2:4]), int(s[4:6]))


def _exact(value: Decimal | int, places: int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal or int, got {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} must be finite, got {value}")
    quantum = Decimal(1).scaleb(-places)
    try:
        quantized = value.quantize(quantum)
    except decimal.InvalidOperation as exc:
        raise ValueError(f"{what} out of range: {value}") from exc
    if quantized != value:
        raise ValueError(f"{what} {value} has more than {places} decimals; round it first")
    return quantized


def format_money(value: Decimal) -> str:
    """Exactly two decimals: ``Decimal("100")`` → ``"100.00"``.  Refuses values that would
    need rounding (``1.005``)."""
    return format(_exact(value, 2, "money"), "f")


def format_quantity(value: Decimal) -> str:
    """Shortest form with at most three decimals: ``1``, ``1.5``, ``0.125``.  Refuses values
    that would need rounding (``0.0001``)."""
    text = format(_exact(value, 3, "quantity"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def parse_int(s: str) -> int:
    """A Pirit integer field: decimal digits, empty = 0."""
    return int(s) if s.strip() else 0


def parse_decimal(s: str) -> Decimal:
    """A Pirit fractional field: ``-``, digits, ``.``; empty = 0."""
    s = s.strip()
    if not s:
        return Decimal(0)
    if not re.fullmatch(r"-?[0-9]*\.?[0-9]+|-?[0-9]+\.", s):
        raise ValueError(f"not a decimal number: {s!r}")
    return Decimal(s)


# --------------------------------------------------------------------------------------------
# Names and tracing (§2.5)

COMMAND_NAMES: dict[int, str] = {
    0x00: "status",
    0x01: "shift counters",
    0x02: "device information",
    0x03: "receipt data",
    0x04: "printer state",
    0x06: "extended error info",
    0x10: "start of work",
    0x11: "read setting",
    0x12: "write setting",
    0x13: "read date/time",
    0x14: "set date/time",
    0x15: "load logo",
    0x17: "load receipt design",
    0x18: "load picture",
    0x20: "X report",
    0x21: "close shift",
    0x23: "open shift",
    0x30: "open document",
    0x31: "close document",
    0x32: "cancel document",
    0x33: "postpone document",
    0x42: "add item",
    0x44: "subtotal",
    0x47: "payment",
    0x58: "correction receipt",
    0x59: "settlement state report",
    0x60: "registration",
    0x63: "technological reset",
    0x67: "load PNG picture",
    0x71: "close FN",
    0x73: "print FN document",
    0x78: "FN query",
    0x80: "open cash drawer",
    0x81: "cash drawer state",
    0x82: "beep",
    0x91: "read memory block",
    0x93: "set serial speed",
    0x9C: "restart KKT",
    0xA0: "emergency shift close",
    0xA1: "reprint last Z report",
    0xA4: "emergency FN close",
    0xA6: "cabinet cash info",
    0xA7: "cabinet register info",
    0xA8: "set cabinet flag",
    0xA9: "read cabinet flag",
    0xAA: "Dreamkas key",
}


def _looks_like_answer(frame: bytes) -> bool:
    # An answer has hex digits (command + error) right after the id; a request has the last
    # three password bytes and the id there - "IRI!" for the default password.
    return len(frame) >= 6 and all(byte in _HEX_DIGITS for byte in frame[2:6])


def _fields_text(fields: tuple[str, ...]) -> str:
    return json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))


def describe(frame: bytes, *, kind: Literal["request", "answer"] | None = None) -> str:
    """One line for a wire trace; never raises.

    ``REQ id=0x21 00 status []``, ``ANS id=0x21 00 status err=00 ["0","4","0"]``, ``ENQ``.
    Whether a frame is a request or an answer is guessed from its shape unless ``kind`` says.
    A wrong CRC is shown as a ``BAD-CRC`` suffix; anything else that cannot be decoded gives
    ``undecodable: <reason>: <hex>``.
    """
    try:
        frame = bytes(frame)
        if len(frame) == 1 and frame[0] in CONTROL_NAMES:
            return CONTROL_NAMES[frame[0]]
        if kind is None:
            kind = "answer" if _looks_like_answer(frame) else "request"
        message: Request | Response
        if kind == "answer":
            message = _decode_response(frame, check_crc=False)
            text = (
                f"ANS id=0x{message.packet_id:02X} {message.command:02X} {message.command_name}"
                f" err={message.error:02X} {_fields_text(message.fields)}"
            )
            if is_recovery_frame(message):
                text += " (recovery frame)"
        else:
            message = _decode_request(frame, check_crc=False)
            text = f"REQ id=0x{message.packet_id:02X} "
            if message.password != DEFAULT_PASSWORD:
                text += f"pwd={message.password.decode(ENCODING)!r} "
            text += (
                f"{message.command:02X} {message.command_name} {_fields_text(message.fields)}"
            )
        if mismatch := _crc_mismatch(frame):
            text += f" BAD-CRC(got {mismatch[0]:02X}, want {mismatch[1]:02X})"
        return text
    except Exception as exc:  # noqa: BLE001 - a trace line must never break the caller
        try:
            shown = bytes(frame)[:64].hex(" ").upper()
        except Exception:  # noqa: BLE001
            shown = repr(frame)[:64]
        return f"undecodable: {exc}: {shown}"
