"""Pirit frames (reference ``protocols.md`` §2.2): constants, errors, checksum, field escaping,
field values, the :class:`Request` / :class:`Response` messages and their encoders / decoders.

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
* **Packet ids.**  Encoders accept 0x20..0xF0 (the manual's range).
  :class:`~devices.pirit.protocol.stream.PacketIds` hands out 0x21..0x3F cyclically and never
  0x20, because after a link failure the device may emit a "recovery" error frame with id 0x20
  that the host must discard (Crystal, §2.2); see :func:`is_recovery_frame`.
* **Numbers.**  ``int`` fields are written in decimal; ``Decimal`` fields are written with the
  exponent they carry (``Decimal("100.00")`` → ``100.00``, ``Decimal("1E+2")`` → ``100``, never
  scientific notation) — callers quantize, or use the formatters of
  :mod:`devices.pirit.protocol.values`.  ``float`` is refused everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from .names import COMMAND_NAMES

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
_STX_BYTES = bytes([STX])
_ETX_BYTES = bytes([ETX])
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")
_ESCAPED_BYTES = bytes(range(0x20)) + b"$"  # what escape_field may have to write otherwise


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
    raw = text.encode("ascii") if text.isascii() else text.encode(ENCODING)  # CP866 is ASCII below 0x80
    if len(raw.translate(None, _ESCAPED_BYTES)) == len(raw):
        return raw  # nothing below 0x20, no "$": the text as it is
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
    if 0x24 not in raw:
        return _decode(raw)
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


def _decode(raw: bytes) -> str:
    return raw.decode("ascii") if raw.isascii() else raw.decode(ENCODING)  # CP866 is ASCII below 0x80


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
    parts = [b"%d" % value if type(value) is int else _field_bytes(value) for value in fields]
    return _FS_BYTES.join(parts) + _FS_BYTES if parts else b""


def _split_fields(data: bytes) -> tuple[str, ...]:
    """Terminated or separated by FS give the same tuple; empty data and a lone FS give ()."""
    if data.endswith(_FS_BYTES):
        data = data[:-1]
    if not data:
        return ()
    if 0x24 not in data:  # no "$": nothing to unescape, decode once (CP866 maps FS to itself alone)
        return tuple(_decode(data).split("\x1c"))
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
    body += _ETX_BYTES
    return _STX_BYTES + body + ((b"%02x" if lowercase_crc else b"%02X") % crc(body))


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
    if type(command) is not int or not 0 <= command <= 0xFF:  # the checks, cheap for the usual values
        _check_byte("command", command)
    if type(packet_id) is not int or not MIN_PACKET_ID <= packet_id <= MAX_PACKET_ID:
        _check_byte("packet_id", packet_id, MIN_PACKET_ID, MAX_PACKET_ID)
    if password is not DEFAULT_PASSWORD:
        if not isinstance(password, bytes) or len(password) != 4:
            raise ValueError(f"password must be 4 bytes, got {password!r}")
        if min(password) < 0x20:
            raise ValueError(f"password must not contain control bytes: {password!r}")
    data = b"" if fields == () else _data_bytes(fields)
    if not data and fs_when_empty:
        data = _FS_BYTES
    body = password + bytes([packet_id]) + b"%02X" % command + data
    return _seal(body, lowercase_crc=lowercase_crc)


def encode_response(packet_id: int, command: int, error: int, fields: Sequence[Field] = ()) -> bytes:
    """Build a device → host frame; every field is terminated by FS; no password."""
    if type(packet_id) is not int or not MIN_PACKET_ID <= packet_id <= MAX_PACKET_ID:
        _check_byte("packet_id", packet_id, MIN_PACKET_ID, MAX_PACKET_ID)
    if type(command) is not int or not 0 <= command <= 0xFF:
        _check_byte("command", command)
    if type(error) is not int or not 0 <= error <= 0xFF:
        _check_byte("error", error)
    body = bytes([packet_id]) + b"%02X%02X" % (command, error) + (b"" if fields == () else _data_bytes(fields))
    return _seal(body)


# --------------------------------------------------------------------------------------------
# Decoding


_HEX_PAIRS = {bytes([a, b]): int(bytes([a, b]), 16) for a in _HEX_DIGITS for b in _HEX_DIGITS}
# two hex digits (either case) → their value


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
    if frame[-2:] not in _HEX_PAIRS:
        raise MalformedFrame(f"{kind}: CRC {frame[-2:]!r} is not two hex digits")
    return body


def _crc_mismatch(frame: bytes) -> tuple[int, int] | None:
    """(received, expected) when the CRC is wrong, else None.  Envelope already checked."""
    received = _HEX_PAIRS[bytes(frame[-2:])]
    expected = crc(frame[1:-2])
    return None if received == expected else (received, expected)


def _decode_request(frame: bytes, *, check_crc: bool = True) -> Request:
    body = _open_frame(frame, MIN_REQUEST_LENGTH, "request")
    password, packet_id, command = body[0:4], body[4], _HEX_PAIRS.get(body[5:7])
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
    packet_id, command, error = body[0], _HEX_PAIRS.get(body[1:3]), _HEX_PAIRS.get(body[3:5])
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
