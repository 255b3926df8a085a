"""v3 transport (reference §3.2): framing, CRC-8, byte stuffing and the incremental reader.

``FE | len&0x7F | len>>7 | ID | escaped(DATA + CRC)``; :func:`encode_frame` builds a frame,
:class:`V3Reader` splits a byte stream into :class:`V3Frame` / :class:`V3Corrupt` items.
:class:`CorruptReason` is shared with the v2 reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from ._base import CodecError, check_byte

V3_STX: Final = 0xFE
V3_ESC: Final = 0xFD
_TSTX: Final = 0xEE
_TESC: Final = 0xED
ASYNC_ID: Final = 0xF0
"""Packet ID of unsolicited messages from the register (A6/A7)."""
MAX_HOST_ID: Final = 0xDF
"""atol4j's host packet/TId counter wraps after 0xDF."""
MAX_PAYLOAD_LEN: Final = (0xFD << 7) | 0x7F
"""0x7EFF: the largest length whose high byte is not 0xFE (keeps 0xFE a pure frame start)."""


def _make_crc8_table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8_TABLE: Final = _make_crc8_table(0x31)


def crc8(data: bytes, init: int = 0xFF) -> int:
    """CRC-8/NRSC-5: poly 0x31, init 0xFF, MSB first, no reflection, no final XOR."""
    crc = init
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def escape_v3(data: bytes) -> bytes:
    """v3 byte stuffing: FD -> FD ED, FE -> FD EE."""
    return bytes(data).replace(b"\xfd", b"\xfd\xed").replace(b"\xfe", b"\xfd\xee")


def encode_frame(packet_id: int, payload: bytes) -> bytes:
    """One v3 frame.  An empty payload is a retransmission request for ``packet_id``."""
    check_byte(packet_id, "packet id")
    if packet_id == V3_STX:
        raise CodecError("packet id 0xFE would be read as a frame start")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD_LEN:
        raise CodecError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_LEN}")
    crc = crc8(bytes([packet_id]) + payload)
    size = len(payload)
    header = bytes([V3_STX, size & 0x7F, size >> 7, packet_id])
    return header + escape_v3(payload + bytes([crc]))


class CorruptReason(StrEnum):
    """Why a reader rejected a frame."""

    BAD_CRC = "bad CRC"
    BAD_LENGTH = "bad length"
    BAD_ESCAPE = "bad escape"
    BAD_LRC = "bad LRC"


@dataclass(frozen=True)
class V3Frame:
    """A well-formed v3 frame (payload unescaped, CRC checked)."""

    packet_id: int
    payload: bytes

    @property
    def is_resend_request(self) -> bool:
        """Empty payload: the peer asks for the packet with this ID again."""
        return not self.payload

    @property
    def is_async(self) -> bool:
        return self.packet_id == ASYNC_ID

    def encode(self) -> bytes:
        return encode_frame(self.packet_id, self.payload)


@dataclass(frozen=True)
class V3Corrupt:
    """A v3 frame that started but could not be accepted.

    ``packet_id`` is None when the frame broke before its ID byte.  Per atol4j the host answers a
    corrupt non-async frame with an empty frame carrying the same ID.
    """

    packet_id: int | None
    reason: CorruptReason
    detail: str = ""


class _V3State(IntEnum):
    IDLE = 0
    LEN_LO = 1
    LEN_HI = 2
    ID = 3
    BODY = 4


class V3Reader:
    """Incremental v3 frame splitter.

    ``feed()`` any chunk of received bytes, get back the frames completed by it.  Bytes outside
    frames are skipped (counted in :attr:`skipped`); every 0xFE starts a new frame, and a frame
    interrupted by one is reported as ``V3Corrupt(..., BAD_LENGTH)``.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD_LEN) -> None:
        self.max_payload = max_payload
        self.skipped = 0
        self.reset()

    def reset(self) -> None:
        """Forget any partial frame (e.g. after the driver's inter-byte timeout)."""
        self._state = _V3State.IDLE
        self._len_lo = 0
        self._length = 0
        self._id: int | None = None
        self._body = bytearray()
        self._escape = False

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not finished."""
        return self._state != _V3State.IDLE

    def _fail(self, out: list[V3Frame | V3Corrupt], reason: CorruptReason, detail: str) -> None:
        out.append(V3Corrupt(self._id, reason, detail))
        self.reset()

    def feed(self, data: bytes) -> list[V3Frame | V3Corrupt]:
        out: list[V3Frame | V3Corrupt] = []
        for byte in bytes(data):
            if byte == V3_STX:
                if self._state != _V3State.IDLE:
                    self._fail(
                        out,
                        CorruptReason.BAD_LENGTH,
                        f"frame interrupted by STX after {len(self._body)} of {self._length + 1} data+CRC bytes",
                    )
                self._state = _V3State.LEN_LO
                continue
            state = self._state
            if state == _V3State.IDLE:
                self.skipped += 1
            elif state == _V3State.LEN_LO:
                if byte > 0x7F:
                    self._fail(out, CorruptReason.BAD_LENGTH, f"length low byte 0x{byte:02X} > 0x7F")
                else:
                    self._len_lo = byte
                    self._state = _V3State.LEN_HI
            elif state == _V3State.LEN_HI:
                self._length = self._len_lo | (byte << 7)
                self._state = _V3State.ID
            elif state == _V3State.ID:
                self._id = byte
                if self._length > self.max_payload:
                    self._fail(out, CorruptReason.BAD_LENGTH, f"length {self._length} exceeds {self.max_payload}")
                else:
                    self._state = _V3State.BODY
            else:  # BODY
                if self._escape:
                    self._escape = False
                    if byte == _TSTX:
                        self._body.append(V3_STX)
                    elif byte == _TESC:
                        self._body.append(V3_ESC)
                    else:
                        self._fail(out, CorruptReason.BAD_ESCAPE, f"FD followed by {byte:02X}")
                        continue
                elif byte == V3_ESC:
                    self._escape = True
                    continue
                else:
                    self._body.append(byte)
                if len(self._body) == self._length + 1:
                    payload = bytes(self._body[:-1])
                    received = self._body[-1]
                    packet_id = self._id if self._id is not None else 0
                    expected = crc8(bytes([packet_id]) + payload)
                    if received != expected:
                        self._fail(out, CorruptReason.BAD_CRC, f"received {received:02X}, computed {expected:02X}")
                    else:
                        out.append(V3Frame(packet_id, payload))
                        self.reset()
        return out
