"""Messages between a register and its OFD: a session header, then a container.  Pure, no I/O.

The header follows the session header of the public ККТ–ОФД exchange protocol as far as it is
known; 30 bytes::

    offset size  field
     0     4     signature            2A 08 41 0A
     4     2     S-version            81 A2
     6     2     P-version            01 00
     8    16     ФН serial            16 ASCII characters
    24     2     container length     little-endian
    26     2     flags                little-endian (ours, see below)
    28     2     CRC16                little-endian, over bytes 0..27

then ``container length`` bytes of container.

What is known and what is [inferred]:

* signature, S- and P-version values, field order and sizes: from the public protocol
  description, as given in the stand's brief;
* [inferred] byte order: little-endian for the length, flags and CRC (the ФН's own order
  everywhere else in 54-ФЗ tag data);
* [inferred] CRC variant: CRC-16/CCITT-FALSE — polynomial 0x1021, initial value 0xFFFF, no
  reflection, no final XOR (check value ``crc16(b"123456789") == 0x29B1``), over the 28 header
  bytes before it;
* [ours] flags: bit 0 set = the container is a receipt (OFD → register); other bits 0 when
  sent and ignored when read.  The meaning of the real protocol's flags is not known to us.

Containers stay opaque in the real protocol (encrypted by the ФН, the OFD answers with a
receipt signed by the ФН's keys).  Ours are a small TLV, documented here: each item is tag
(2 bytes LE), length (2 bytes LE), value.

* document (register → OFD): 1040 FD number (4 bytes LE), 1077 fiscal sign (ASCII digits),
  0x7F01 document kind (1 byte: the form number, e.g. 3 = receipt), 1012 date-time (4 bytes LE:
  Unix seconds of the device *local* time read as naive UTC, as the ФН does);
* receipt (квитанция, OFD → register): 1040 the FD number it acknowledges (4 bytes LE), 0x7F02
  result code (1 byte, 0 = accepted).

Tags 1040, 1077 and 1012 are the ФФД tags of the same meaning; 0x7F01 and 0x7F02 are ours.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta

SIGNATURE = bytes.fromhex("2A08410A")
S_VERSION = bytes.fromhex("81A2")
P_VERSION = bytes.fromhex("0100")
HEADER_SIZE = 30
SERIAL_SIZE = 16
MAX_CONTAINER = 0xFFFF

FLAG_RECEIPT = 0x0001

TAG_FD_NUMBER = 1040
TAG_FISCAL_SIGN = 1077
TAG_DATETIME = 1012
TAG_KIND = 0x7F01  # ours: document form number
TAG_RESULT = 0x7F02  # ours: receipt result code

RESULT_ACCEPTED = 0
EPOCH = datetime(1970, 1, 1)
_HEADER = struct.Struct("<4s2s2s16sHH")  # everything before the CRC (28 bytes)


class ProtocolError(ValueError):
    """A message that cannot be encoded or decoded."""


@dataclass(frozen=True)
class DocumentMessage:
    fn_serial: str
    number: int
    fiscal_sign: str
    kind: int
    at: datetime


@dataclass(frozen=True)
class ReceiptMessage:
    fn_serial: str
    number: int
    result: int = RESULT_ACCEPTED

    @property
    def accepted(self) -> bool:
        return self.result == RESULT_ACCEPTED


@dataclass(frozen=True)
class Corrupt:
    """An item of the stream that is not a message: bad CRC, bad version or a bad container."""

    reason: str
    raw: bytes


Message = DocumentMessage | ReceiptMessage | Corrupt


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final XOR."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode_header(fn_serial: str, length: int, flags: int = 0) -> bytes:
    serial = _serial_bytes(fn_serial)
    if not 0 <= length <= MAX_CONTAINER:
        raise ProtocolError(f"container of {length} bytes does not fit the header")
    if not 0 <= flags <= 0xFFFF:
        raise ProtocolError(f"flags {flags} do not fit 2 bytes")
    head = _HEADER.pack(SIGNATURE, S_VERSION, P_VERSION, serial, length, flags)
    return head + struct.pack("<H", crc16_ccitt(head))


def encode_tlv(items: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for tag, value in items:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise ProtocolError(f"TLV item {tag} does not fit")
        out += struct.pack("<HH", tag, len(value)) + value
    return bytes(out)


def decode_tlv(data: bytes) -> dict[int, bytes]:
    """Tag → value; a truncated item or a repeated tag is a ProtocolError."""
    items: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ProtocolError("truncated TLV item header")
        tag, size = struct.unpack_from("<HH", data, pos)
        pos += 4
        if pos + size > len(data):
            raise ProtocolError(f"TLV item {tag} runs past the container")
        if tag in items:
            raise ProtocolError(f"TLV tag {tag} repeated")
        items[tag] = data[pos : pos + size]
        pos += size
    return items


def encode_document(fn_serial: str, number: int, fiscal_sign: str, kind: int, at: datetime) -> bytes:
    seconds = int((at.replace(tzinfo=None, microsecond=0) - EPOCH).total_seconds())
    if not 0 <= seconds <= 0xFFFFFFFF:
        raise ProtocolError(f"date-time {at} does not fit 4 bytes of Unix seconds")
    if not 0 <= kind <= 0xFF:
        raise ProtocolError(f"document kind {kind} does not fit 1 byte")
    try:
        sign = fiscal_sign.encode("ascii")
    except UnicodeEncodeError:
        raise ProtocolError(f"fiscal sign {fiscal_sign!r} is not ASCII") from None
    container = encode_tlv(
        [
            (TAG_FD_NUMBER, _u32(number)),
            (TAG_FISCAL_SIGN, sign),
            (TAG_KIND, bytes([kind])),
            (TAG_DATETIME, struct.pack("<I", seconds)),
        ]
    )
    return encode_header(fn_serial, len(container)) + container


def encode_receipt(fn_serial: str, number: int, result: int = RESULT_ACCEPTED) -> bytes:
    if not 0 <= result <= 0xFF:
        raise ProtocolError(f"result code {result} does not fit 1 byte")
    container = encode_tlv([(TAG_FD_NUMBER, _u32(number)), (TAG_RESULT, bytes([result]))])
    return encode_header(fn_serial, len(container), FLAG_RECEIPT) + container


def decode_message(raw: bytes) -> Message:
    """One whole message (header + container) → a document, a receipt or :class:`Corrupt`."""
    if len(raw) < HEADER_SIZE or raw[:4] != SIGNATURE:
        return Corrupt("no session header", raw)
    head = raw[: HEADER_SIZE - 2]
    (crc,) = struct.unpack_from("<H", raw, HEADER_SIZE - 2)
    if crc16_ccitt(head) != crc:
        return Corrupt("header CRC mismatch", raw)
    _, s_version, p_version, serial_raw, length, flags = _HEADER.unpack(head)
    if len(raw) != HEADER_SIZE + length:
        return Corrupt(f"container length {length} does not match {len(raw) - HEADER_SIZE} bytes", raw)
    if (s_version, p_version) != (S_VERSION, P_VERSION):
        return Corrupt(f"unknown protocol version {s_version.hex()}/{p_version.hex()}", raw)
    try:
        serial = serial_raw.decode("ascii")
        items = decode_tlv(raw[HEADER_SIZE:])
        number = _read_u32(items, TAG_FD_NUMBER)
        if flags & FLAG_RECEIPT:
            return ReceiptMessage(serial, number, _read_u8(items, TAG_RESULT))
        seconds = struct.unpack("<I", _fixed(items, TAG_DATETIME, 4))[0]
        return DocumentMessage(
            serial,
            number,
            _required(items, TAG_FISCAL_SIGN).decode("ascii"),
            _read_u8(items, TAG_KIND),
            EPOCH + timedelta(seconds=seconds),
        )
    except (ProtocolError, UnicodeDecodeError) as exc:
        return Corrupt(f"bad container: {exc}", raw)


class MessageReader:
    """Reassembles messages from a byte stream.

    Bytes before a signature are skipped (counted in ``skipped``); a header whose CRC does not
    match is reported as :class:`Corrupt` and the search resumes one byte after its signature
    (its length field cannot be trusted); a good header with a bad container is :class:`Corrupt`
    and skipped whole.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0

    def pending(self) -> bool:
        """An unfinished message (or the start of a signature) is buffered."""
        return bool(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while True:
            start = self._buffer.find(SIGNATURE)
            if start < 0:
                keep = _partial_signature(self._buffer)
                self.skipped += len(self._buffer) - keep
                del self._buffer[: len(self._buffer) - keep]
                return out
            if start:
                self.skipped += start
                del self._buffer[:start]
            if len(self._buffer) < HEADER_SIZE:
                return out
            head = bytes(self._buffer[: HEADER_SIZE - 2])
            (crc,) = struct.unpack_from("<H", self._buffer, HEADER_SIZE - 2)
            if crc16_ccitt(head) != crc:
                out.append(Corrupt("header CRC mismatch", bytes(self._buffer[:HEADER_SIZE])))
                del self._buffer[:1]
                continue
            (length,) = struct.unpack_from("<H", self._buffer, 24)
            if len(self._buffer) < HEADER_SIZE + length:
                return out
            raw = bytes(self._buffer[: HEADER_SIZE + length])
            del self._buffer[: HEADER_SIZE + length]
            out.append(decode_message(raw))


def _partial_signature(buffer: bytearray) -> int:
    """How many trailing bytes could be the start of a signature."""
    for keep in range(min(len(SIGNATURE) - 1, len(buffer)), 0, -1):
        if buffer[-keep:] == SIGNATURE[:keep]:
            return keep
    return 0


def _serial_bytes(fn_serial: str) -> bytes:
    raw = fn_serial.encode("ascii") if fn_serial.isascii() else b""
    if len(raw) != SERIAL_SIZE:
        raise ProtocolError(f"ФН serial must be {SERIAL_SIZE} ASCII characters, not {fn_serial!r}")
    return raw


def _u32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ProtocolError(f"FD number {value} does not fit 4 bytes")
    return struct.pack("<I", value)


def _required(items: dict[int, bytes], tag: int) -> bytes:
    if tag not in items:
        raise ProtocolError(f"tag {tag} missing")
    return items[tag]


def _fixed(items: dict[int, bytes], tag: int, size: int) -> bytes:
    value = _required(items, tag)
    if len(value) != size:
        raise ProtocolError(f"tag {tag} has {len(value)} bytes, not {size}")
    return value


def _read_u32(items: dict[int, bytes], tag: int) -> int:
    value: int = struct.unpack("<I", _fixed(items, tag, 4))[0]
    return value


def _read_u8(items: dict[int, bytes], tag: int) -> int:
    return _fixed(items, tag, 1)[0]
