"""Pure codec for the ATOL "Протокол ККТ 3.x" (platform 2.5 registers: 30Ф, 55Ф, 90Ф, 91Ф, 92Ф ...).

No I/O, no threads, no clocks: bytes in, values out (and back).  Everything here follows
``/work/shared/reference/protocols.md`` §3 and §4; section numbers below refer to it.

Layers, bottom up
=================

1. **v3 transport** (§3.2) -- ``FE | len&0x7F | len>>7 | ID | escaped(DATA + CRC)``.
   Inside DATA and CRC ``FE`` becomes ``FD EE`` and ``FD`` becomes ``FD ED``; ``len`` counts
   unescaped data bytes; CRC-8 (poly 0x31, init 0xFF, MSB first = CRC-8/NRSC-5) runs over the ID
   and the unescaped data.  A frame with an empty payload is a retransmission request for the
   packet with that ID.  Packet ID :data:`ASYNC_ID` (0xF0) is reserved for unsolicited messages
   from the register.  :func:`encode_frame` builds a frame, :class:`V3Reader` splits a byte
   stream into :class:`V3Frame` / :class:`V3Corrupt` items, resynchronising on every 0xFE.

2. **v3 task buffer** (§3.3) -- the payload of a v3 frame.  The host sends buffer commands
   (:class:`BufferCmd`: ADD, ACK, REQ, ABORT, ACK_ADD); the register answers with a status byte
   (:class:`BufferStatus` A1..A8, B1..B4).  An ADD carries a *task*, which is an
   application-layer command (layer 4).  Results come back either synchronously (same packet
   ID) or asynchronously on ID 0xF0 as ``A6 TId result`` / ``A7 TId error``.

   Assumption (the reference marks it **[not found]**): *synchronous* answers (A1..A5, A8 and
   B1..B4) do **not** carry the TId -- atol4j, the only public implementation, cannot map a
   synchronous result to a TId, which is consistent with the TId being absent.  Only A6/A7 carry
   it.  :func:`decode_buffer_answer` and :func:`encode_status` take ``sync_tid=True`` to switch
   A1..A5/A8 to the "TId follows the status byte" layout if a real device proves otherwise.

3. **v2 (legacy) transport** (§3.4) -- ``STX(02) | DLE-stuffed data | ETX(03) | LRC``; 0x10 and
   0x03 inside data are preceded by DLE; LRC is the XOR of everything after STX up to and
   including ETX as transmitted.  Line control bytes ENQ/ACK/NAK/EOT travel outside frames.
   :func:`encode_v2_frame` and :class:`V2Reader`.  Timing (T1..T8) is the driver's business.

4. **application layer** (§3.5) -- identical under both transports.  A request is
   ``access password (2 bytes BCD) | command byte | parameters`` (:func:`encode_command`).  An
   answer starts with ``'U'`` then an error byte (most commands), ``'D'`` + the 30-byte status
   block (3Fh), or the error byte directly (A5h); :func:`parse_answer` needs to be told which
   command was sent.  Typed values with ``encode()``/``decode()``: :class:`StatusBlock` (3Fh),
   :class:`StateAnswer` (45h), :class:`DeviceType` (A5h), :class:`FirmwareVersion` (9Dh),
   :class:`ShiftParams` (A4h/10h), :class:`OfdExchangeStatus` (A4h/20h), :class:`FnStatus`
   (A4h/30h), :class:`FnValidity` (A4h/32h), plus the request parameters of the sale path
   (:class:`EnterMode`, :class:`OpenReceipt`, :class:`Position`, :class:`Payment`,
   :class:`CloseReceipt`).  Layouts the reference leaves open and this project fixed for its
   driver and emulator alike, all **[inferred]**: E8h/E9h requisites as FN-style TLVs
   (:class:`WriteRequisite`, :class:`ReadRequisite`, :func:`encode_tlv`, :class:`Tag`), A6h
   ``kind [tax mask]`` (:class:`Registration`), A4h/43h registration totals
   (:class:`RegistrationTotals`), EDh ``DD MM YY hh mm ss`` BCD, the E6h tax byte in libfptr
   numbering (:class:`TaxType`) and 3Fh flags bit 4 as "printout pending"
   (:data:`STATUS_PRINT_PENDING`).

5. **errors and trace** -- :data:`ATOL_ERRORS` (§3.7) and :func:`describe`, a one-line,
   never-raising rendering of any chunk of wire bytes for the trace.

Choices on the reference's open points
======================================

* 3Fh flags bit 2 **[conflict]**: named :attr:`StatusFlags.CASH_DRAWER_OPEN` (S6 and S8 agree);
  S7 reads it as "paper in presenter".
* A4h/10h number encoding **[conflict]**: :class:`NumberEncoding` parameter, default
  ``BINARY_LE`` (S7); atol4j reads the same bytes as BCD with the low byte first (``BCD_LE``).
* 9Dh layout **[conflict]**: default per S7 (``'U' err version subversion language build(2)``),
  ``reserved_byte=True`` gives atol4j's reading with one extra byte after the error.  Fields are
  BCD as atol4j decodes them.
* 45h answers ``'U' mode flags`` with **no** error byte (S6/S7/S8 agree); :func:`parse_answer`
  reports ``error=0`` for it.
* Money is BCD with 2 implied decimals, quantities 3 (E6h quantity scale is [inferred]).
* A frame's length field is limited to :data:`MAX_PAYLOAD_LEN` (0x7EFF) so that the high length
  byte can never be 0xFE -- otherwise the "0xFE only ever starts a frame" rule would break.

Malformed input raises :class:`CodecError` (a :class:`ValueError`); readers report corrupt
frames as values instead of raising.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum, IntFlag, StrEnum
from typing import Final, Self

__all__ = [
    # errors
    "CodecError",
    # numbers and text
    "to_bcd", "from_bcd", "to_le", "from_le",
    "money_to_bcd", "money_from_bcd", "quantity_to_bcd", "quantity_from_bcd",
    "TEXT_ENCODING", "encode_text", "decode_text",
    # v3 transport
    "V3_STX", "V3_ESC", "ASYNC_ID", "MAX_HOST_ID", "MAX_PAYLOAD_LEN",
    "crc8", "escape_v3", "encode_frame", "CorruptReason", "V3Frame", "V3Corrupt", "V3Reader",
    # task buffer
    "BufferCmd", "AddFlags", "BufferStatus", "ASYNC_STATUSES",
    "BufferCommand", "BufferAnswer",
    "encode_add", "encode_ack", "encode_req", "encode_abort", "encode_ack_add",
    "decode_buffer_command", "encode_status", "decode_buffer_answer",
    # v2 transport
    "V2_STX", "ETX", "EOT", "ENQ", "ACK", "NAK", "DLE",
    "V2Control", "V2Frame", "V2Corrupt", "V2Reader", "lrc", "encode_v2_frame",
    # application layer
    "Cmd", "FnQuery", "Mode", "ReceiptType", "PaymentType", "Interface", "ShiftState", "FnPhase",
    "NumberEncoding", "COMMAND_TIMEOUTS", "DEFAULT_TIMEOUT", "answer_timeout",
    "CommandRequest", "encode_command", "decode_command",
    "AnswerForm", "Answer", "parse_answer", "NO_ERROR_BYTE_COMMANDS",
    "StatusFlags", "STATUS_BLOCK_SIZE", "StatusBlock", "PrinterFlags", "StateAnswer", "DeviceType",
    "FirmwareVersion", "ShiftParams", "OfdFlags", "OfdExchangeStatus", "FnWarnings",
    "FnStatus", "FnValidity", "RegistrationTotals",
    "EnterMode", "OpenReceipt", "POSITION_PARAMS_SIZE", "Position", "Payment", "PaymentResult", "CloseReceipt",
    "Tag", "FFD_CODES", "FFD_NAMES", "encode_tlv", "decode_tlvs", "WriteRequisite", "ReadRequisite",
    "TaxType", "RegistrationKind", "Registration", "encode_date_params", "decode_date_params",
    "encode_time_params", "decode_time_params", "encode_datetime_params", "decode_datetime_params",
    "STATUS_PRINT_PENDING",
    # errors table and trace
    "ATOL_ERRORS", "error_text", "describe",
]


class CodecError(ValueError):
    """Bytes or values that the ATOL codec cannot encode or decode."""


# ------------------------------------------------------------------------------------------------
# Numbers and text
# ------------------------------------------------------------------------------------------------

def to_bcd(value: int, width: int) -> bytes:
    """Packed BCD, big-endian, exactly ``width`` bytes (``to_bcd(1234, 3)`` -> ``00 12 34``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"BCD value must be an int, got {value!r}")
    if width < 0:
        raise CodecError(f"negative BCD width {width}")
    if value < 0 or value >= 10 ** (2 * width):
        raise CodecError(f"{value} does not fit in {width} BCD byte(s)")
    digits = f"{int(value):0{2 * width}d}"
    return bytes(int(digits[i:i + 2], 16) for i in range(0, len(digits), 2))


def from_bcd(data: bytes) -> int:
    """Decode packed big-endian BCD; a nibble above 9 raises :class:`CodecError`."""
    value = 0
    for byte in data:
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise CodecError(f"invalid BCD byte 0x{byte:02X} in {bytes(data).hex(' ')}")
        value = value * 100 + high * 10 + low
    return value


def to_le(value: int, width: int, *, signed: bool = False) -> bytes:
    """Little-endian binary integer of exactly ``width`` bytes."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"integer expected, got {value!r}")
    try:
        return value.to_bytes(width, "little", signed=signed)
    except (OverflowError, ValueError) as exc:
        raise CodecError(f"{value} does not fit in {width} byte(s)") from exc


def from_le(data: bytes, *, signed: bool = False) -> int:
    """Little-endian binary integer."""
    return int.from_bytes(data, "little", signed=signed)


def _scaled(amount: Decimal | int | str, decimals: int) -> int:
    """``amount`` * 10**decimals as an exact non-negative int (no silent rounding)."""
    if isinstance(amount, (bool, float)) or not isinstance(amount, (Decimal, int, str)):
        raise CodecError(f"use Decimal, int or str for amounts, not {type(amount).__name__}")
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise CodecError(f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise CodecError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise CodecError(f"{amount} has more than {decimals} decimal place(s)")
    if scaled < 0:
        raise CodecError(f"negative amount {amount} cannot be BCD-encoded")
    return int(scaled)


def money_to_bcd(amount: Decimal | int | str, width: int = 5, decimals: int = 2) -> bytes:
    """Money as BCD with ``decimals`` implied decimals (100 -> ``00 00 01 00 00``)."""
    return to_bcd(_scaled(amount, decimals), width)


def money_from_bcd(data: bytes, decimals: int = 2) -> Decimal:
    """Inverse of :func:`money_to_bcd`; the result carries ``decimals`` places."""
    return Decimal(from_bcd(data)).scaleb(-decimals)


def quantity_to_bcd(quantity: Decimal | int | str, width: int = 5) -> bytes:
    """Quantity as BCD with 3 implied decimals (``1`` -> ``00 00 00 10 00``)."""
    return to_bcd(_scaled(quantity, 3), width)


def quantity_from_bcd(data: bytes) -> Decimal:
    """Inverse of :func:`quantity_to_bcd`."""
    return Decimal(from_bcd(data)).scaleb(-3)


TEXT_ENCODING: Final = "cp866"


def encode_text(text: str, width: int | None = None, *, fill: int = 0x00,
                truncate: bool = False) -> bytes:
    """CP866 text; with ``width`` a fixed-width field padded on the right with ``fill``.

    Text longer than ``width`` raises unless ``truncate`` is set.  Characters CP866 lacks raise.
    """
    try:
        raw = text.encode(TEXT_ENCODING)
    except UnicodeEncodeError as exc:
        raise CodecError(f"text not representable in CP866: {text!r}") from exc
    if width is None:
        return raw
    if len(raw) > width:
        if not truncate:
            raise CodecError(f"text of {len(raw)} bytes does not fit a {width}-byte field")
        raw = raw[:width]
    return raw + bytes([fill]) * (width - len(raw))


def decode_text(data: bytes, *, strip: bool = True) -> str:
    """CP866 text; with ``strip`` trailing NUL and space padding is removed."""
    text = bytes(data).decode(TEXT_ENCODING)
    return text.rstrip("\x00 ") if strip else text


def _hex(data: bytes, limit: int = 48) -> str:
    data = bytes(data)
    if len(data) <= limit:
        return data.hex(" ").upper()
    return data[:limit].hex(" ").upper() + f" ...(+{len(data) - limit})"


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise CodecError(f"{what}: need {size} bytes, got {len(data)} ({_hex(data)})")


def _byte(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise CodecError(f"{what} must be a byte (0..255), got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------
# v3 transport (§3.2)
# ------------------------------------------------------------------------------------------------

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
    _byte(packet_id, "packet id")
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
                    self._fail(out, CorruptReason.BAD_LENGTH,
                               f"frame interrupted by STX after {len(self._body)} of "
                               f"{self._length + 1} data+CRC bytes")
                self._state = _V3State.LEN_LO
                continue
            state = self._state
            if state == _V3State.IDLE:
                self.skipped += 1
            elif state == _V3State.LEN_LO:
                if byte > 0x7F:
                    self._fail(out, CorruptReason.BAD_LENGTH,
                               f"length low byte 0x{byte:02X} > 0x7F")
                else:
                    self._len_lo = byte
                    self._state = _V3State.LEN_HI
            elif state == _V3State.LEN_HI:
                self._length = self._len_lo | (byte << 7)
                self._state = _V3State.ID
            elif state == _V3State.ID:
                self._id = byte
                if self._length > self.max_payload:
                    self._fail(out, CorruptReason.BAD_LENGTH,
                               f"length {self._length} exceeds {self.max_payload}")
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
                        self._fail(out, CorruptReason.BAD_CRC,
                                   f"received {received:02X}, computed {expected:02X}")
                    else:
                        out.append(V3Frame(packet_id, payload))
                        self.reset()
        return out


# ------------------------------------------------------------------------------------------------
# v3 task buffer (§3.3)
# ------------------------------------------------------------------------------------------------

class BufferCmd(IntEnum):
    """First byte of every host payload."""

    ADD = 0xC1
    ACK = 0xC2
    REQ = 0xC3
    ABORT = 0xC4
    ACK_ADD = 0xC5


class AddFlags(IntFlag):
    """Flags of ADD / ACK_ADD."""

    NONE = 0
    NEED_RESULT = 0x01
    IGNORE_ERROR = 0x02
    WAIT_ASYNC_DATA = 0x04


class BufferStatus(IntEnum):
    """First byte of every register payload."""

    PENDING = 0xA1
    IN_PROGRESS = 0xA2
    RESULT = 0xA3
    ERROR = 0xA4
    STOPPED = 0xA5
    ASYNC_RESULT = 0xA6
    ASYNC_ERROR = 0xA7
    WAITING = 0xA8
    OVERFLOW = 0xB1
    ALREADY_EXISTS = 0xB2
    NOT_FOUND = 0xB3
    ILLEGAL_VALUE = 0xB4


ASYNC_STATUSES: Final = frozenset({BufferStatus.ASYNC_RESULT, BufferStatus.ASYNC_ERROR})
_TASK_STATUSES: Final = frozenset({
    BufferStatus.PENDING, BufferStatus.IN_PROGRESS, BufferStatus.RESULT, BufferStatus.ERROR,
    BufferStatus.STOPPED, BufferStatus.WAITING,
})
"""Synchronous statuses that get a TId when ``sync_tid=True`` (B1..B4 never do)."""


@dataclass(frozen=True)
class BufferCommand:
    """A decoded host payload.  ``tid`` is None for ABORT, ``ack_tid`` only set for ACK_ADD."""

    kind: BufferCmd
    tid: int | None = None
    flags: AddFlags = AddFlags.NONE
    task: bytes = b""
    ack_tid: int | None = None

    def encode(self) -> bytes:
        if self.kind == BufferCmd.ADD:
            return encode_add(_tid(self.tid), self.task, self.flags)
        if self.kind == BufferCmd.ACK:
            return encode_ack(_tid(self.tid))
        if self.kind == BufferCmd.REQ:
            return encode_req(_tid(self.tid))
        if self.kind == BufferCmd.ABORT:
            return encode_abort()
        return encode_ack_add(_tid(self.ack_tid), _tid(self.tid), self.task, self.flags)


def _tid(tid: int | None) -> int:
    if tid is None:
        raise CodecError("this buffer command needs a TId")
    return _byte(tid, "TId")


def encode_add(tid: int, task: bytes, flags: AddFlags | int = AddFlags.NEED_RESULT) -> bytes:
    """``C1 flags TId task`` -- queue ``task`` (an :func:`encode_command` result)."""
    if not task:
        raise CodecError("ADD needs a non-empty task")
    return bytes([BufferCmd.ADD, _byte(int(flags), "flags"), _byte(tid, "TId")]) + bytes(task)


def encode_ack(tid: int) -> bytes:
    """``C2 TId`` -- acknowledge (and drop) a finished task."""
    return bytes([BufferCmd.ACK, _byte(tid, "TId")])


def encode_req(tid: int) -> bytes:
    """``C3 TId`` -- ask for the state of a task."""
    return bytes([BufferCmd.REQ, _byte(tid, "TId")])


def encode_abort() -> bytes:
    """``C4`` -- cancel all tasks and clear the buffer."""
    return bytes([BufferCmd.ABORT])


def encode_ack_add(ack_tid: int, tid: int, task: bytes,
                   flags: AddFlags | int = AddFlags.NEED_RESULT) -> bytes:
    """``C5 ackTId flags TId task`` (layout [inferred] from the name; atol4j never sends it)."""
    if not task:
        raise CodecError("ACK_ADD needs a non-empty task")
    return bytes([BufferCmd.ACK_ADD, _byte(ack_tid, "ack TId"), _byte(int(flags), "flags"),
                  _byte(tid, "TId")]) + bytes(task)


def decode_buffer_command(payload: bytes) -> BufferCommand:
    """Parse a host payload (what an emulator receives).  Malformed input raises CodecError."""
    payload = bytes(payload)
    if not payload:
        raise CodecError("empty payload is a resend request, not a buffer command")
    try:
        kind = BufferCmd(payload[0])
    except ValueError as exc:
        raise CodecError(f"unknown buffer command 0x{payload[0]:02X}") from exc
    if kind == BufferCmd.ADD:
        _need(payload, 4, "ADD")
        return BufferCommand(kind, tid=payload[2], flags=AddFlags(payload[1]), task=payload[3:])
    if kind in (BufferCmd.ACK, BufferCmd.REQ):
        if len(payload) != 2:
            raise CodecError(f"{kind.name} takes exactly one TId byte: {_hex(payload)}")
        return BufferCommand(kind, tid=payload[1])
    if kind == BufferCmd.ABORT:
        if len(payload) != 1:
            raise CodecError(f"ABORT takes no parameters: {_hex(payload)}")
        return BufferCommand(kind)
    _need(payload, 5, "ACK_ADD")
    return BufferCommand(kind, tid=payload[3], flags=AddFlags(payload[2]), task=payload[4:],
                         ack_tid=payload[1])


@dataclass(frozen=True)
class BufferAnswer:
    """A decoded register payload: status, TId where the layout carries one, then data."""

    status: BufferStatus
    tid: int | None = None
    data: bytes = b""

    @property
    def is_async(self) -> bool:
        return self.status in ASYNC_STATUSES

    @property
    def is_final(self) -> bool:
        """The task finished (with a result or an error) or was stopped."""
        return self.status in (BufferStatus.RESULT, BufferStatus.ERROR, BufferStatus.STOPPED,
                               BufferStatus.ASYNC_RESULT, BufferStatus.ASYNC_ERROR)

    def encode(self, *, sync_tid: bool = False) -> bytes:
        return encode_status(self.status, self.data, tid=self.tid, sync_tid=sync_tid)


def encode_status(status: BufferStatus | int, data: bytes = b"", *, tid: int | None = None,
                  sync_tid: bool = False) -> bytes:
    """Register payload: ``status [TId] data``.

    A6/A7 always carry ``tid``.  A1..A5/A8 carry it only with ``sync_tid=True`` (see the module
    docstring); B1..B4 never do.  Passing a ``tid`` where the chosen layout has none raises, so
    the emulator cannot silently disagree with the decoder.
    """
    try:
        status = BufferStatus(status)
    except ValueError as exc:
        raise CodecError(f"unknown buffer status 0x{int(status):02X}") from exc
    carries_tid = status in ASYNC_STATUSES or (sync_tid and status in _TASK_STATUSES)
    if carries_tid:
        return bytes([status, _tid(tid)]) + bytes(data)
    if tid is not None:
        raise CodecError(f"{status.name} carries no TId in this layout (sync_tid={sync_tid})")
    return bytes([status]) + bytes(data)


def decode_buffer_answer(payload: bytes, *, sync_tid: bool = False) -> BufferAnswer:
    """Parse a register payload (what the host receives); see :func:`encode_status`."""
    payload = bytes(payload)
    if not payload:
        raise CodecError("empty payload is a resend request, not a buffer answer")
    try:
        status = BufferStatus(payload[0])
    except ValueError as exc:
        raise CodecError(f"unknown buffer status 0x{payload[0]:02X}") from exc
    if status in ASYNC_STATUSES or (sync_tid and status in _TASK_STATUSES):
        _need(payload, 2, status.name)
        return BufferAnswer(status, payload[1], payload[2:])
    return BufferAnswer(status, None, payload[1:])


# ------------------------------------------------------------------------------------------------
# v2 transport (§3.4)
# ------------------------------------------------------------------------------------------------

V2_STX: Final = 0x02
ETX: Final = 0x03
EOT: Final = 0x04
ENQ: Final = 0x05
ACK: Final = 0x06
DLE: Final = 0x10
NAK: Final = 0x15


class V2Control(IntEnum):
    """Line-discipline bytes that travel outside v2 frames."""

    ENQ = 0x05
    ACK = 0x06
    NAK = 0x15
    EOT = 0x04


def lrc(data: bytes) -> int:
    """XOR of all bytes."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_v2_frame(data: bytes) -> bytes:
    """``STX | data with DLE before 10/03 | ETX | LRC`` (LRC over stuffed data + ETX)."""
    stuffed = bytearray()
    for byte in bytes(data):
        if byte in (DLE, ETX):
            stuffed.append(DLE)
        stuffed.append(byte)
    stuffed.append(ETX)
    return bytes([V2_STX]) + bytes(stuffed) + bytes([lrc(stuffed)])


@dataclass(frozen=True)
class V2Frame:
    """A v2 frame with a good LRC (data unstuffed)."""

    data: bytes

    def encode(self) -> bytes:
        return encode_v2_frame(self.data)


@dataclass(frozen=True)
class V2Corrupt:
    """A v2 frame with a bad LRC or that grew past the reader's limit (the receiver sends NAK)."""

    reason: CorruptReason
    data: bytes = b""
    detail: str = ""


class _V2State(IntEnum):
    IDLE = 0
    DATA = 1
    DLE_PENDING = 2
    LRC = 3


class V2Reader:
    """Incremental v2 splitter: returns frames, corrupt frames and control bytes in wire order.

    Outside a frame, ENQ/ACK/NAK/EOT become :class:`V2Control` items and other bytes except STX
    are skipped.  Inside a frame every byte is data (0x02 is not stuffed, so a frame cannot be
    resynchronised on STX); call :meth:`reset` on the inter-byte timeout instead.
    """

    def __init__(self, max_data: int = 4096) -> None:
        self.max_data = max_data
        self.skipped = 0
        self.reset()

    def reset(self) -> None:
        self._state = _V2State.IDLE
        self._data = bytearray()
        self._xor = 0

    @property
    def in_frame(self) -> bool:
        return self._state != _V2State.IDLE

    def feed(self, data: bytes) -> list[V2Frame | V2Corrupt | V2Control]:
        out: list[V2Frame | V2Corrupt | V2Control] = []
        for byte in bytes(data):
            state = self._state
            if state == _V2State.IDLE:
                if byte == V2_STX:
                    self._state = _V2State.DATA
                    self._data = bytearray()
                    self._xor = 0
                elif byte in (ENQ, ACK, NAK, EOT):
                    out.append(V2Control(byte))
                else:
                    self.skipped += 1
            elif state == _V2State.LRC:
                if byte == self._xor:
                    out.append(V2Frame(bytes(self._data)))
                else:
                    out.append(V2Corrupt(CorruptReason.BAD_LRC, bytes(self._data),
                                         f"received {byte:02X}, computed {self._xor:02X}"))
                self.reset()
            else:
                self._xor ^= byte
                if state == _V2State.DLE_PENDING:
                    self._data.append(byte)
                    self._state = _V2State.DATA
                elif byte == DLE:
                    self._state = _V2State.DLE_PENDING
                elif byte == ETX:
                    self._state = _V2State.LRC
                else:
                    self._data.append(byte)
                if len(self._data) > self.max_data:
                    out.append(V2Corrupt(CorruptReason.BAD_LENGTH, bytes(self._data),
                                         f"no ETX within {self.max_data} bytes"))
                    self.reset()
        return out


# ------------------------------------------------------------------------------------------------
# Application layer: codes and enums (§3.5)
# ------------------------------------------------------------------------------------------------

class Cmd(IntEnum):
    """Application-layer command bytes."""

    STATUS = 0x3F
    DISCOUNT = 0x43
    STATE = 0x45
    EXIT_MODE = 0x48
    CASH_IN = 0x49
    CLOSE_RECEIPT = 0x4A
    SET_TIME = 0x4B
    CASH_IN_DRAWER = 0x4D
    CASH_OUT = 0x4F
    ENTER_MODE = 0x56
    LAST_SHIFT_TOTALS = 0x58
    CANCEL_RECEIPT = 0x59
    Z_REPORT = 0x5A
    SET_DATE = 0x64
    X_REPORT = 0x67
    TECH_RESET = 0x6B
    INIT_TABLES = 0x71
    GENERAL_RESET = 0x77
    READ_REGISTER = 0x91
    OPEN_RECEIPT = 0x92
    REPRINT_LAST = 0x95
    CLEAR_LAST_DOCUMENT = 0x97
    PAYMENT = 0x99
    OPEN_SHIFT = 0x9A
    PAYMENT_STORNO = 0x9B
    FIRMWARE = 0x9D
    FN = 0xA4
    DEVICE_TYPE = 0xA5
    REGISTRATION = 0xA6
    CLOSE_ARCHIVE = 0xA7
    PRINT_REGISTRATION_TOTALS = 0xA8
    PRINT_FN_DOCUMENT = 0xAB
    LAST_ERROR = 0xB3
    RECEIPT_TAX = 0xB8
    POWER = 0xCE
    """Sub-command 41h reboots, 00h powers off."""
    REGISTER_POSITION = 0xE6
    WRITE_REQUISITE = 0xE8
    READ_REQUISITE = 0xE9
    SET_DATETIME = 0xED
    REPRINT_REPORT = 0xEE


class FnQuery(IntEnum):
    """Sub-commands of A4h (first parameter byte)."""

    SHIFT = 0x10
    OFD_EXCHANGE = 0x20
    STATUS = 0x30
    NUMBER = 0x31
    VALIDITY = 0x32
    VERSION = 0x33
    ERRORS = 0x35
    REGISTRATION = 0x43
    """[inferred] registration totals, see :class:`RegistrationTotals`."""
    UNCONFIRMED_COUNT = 0x42


class Mode(IntEnum):
    """Low nibble of the mode byte (high nibble = sub-mode)."""

    SELECT = 0
    REGISTRATION = 1
    X_REPORT = 2
    Z_REPORT = 3
    PROGRAMMING = 4
    FISCAL_MEMORY = 5
    FN = 6


class ReceiptType(IntEnum):
    """92h receipt types; also the 3Fh receipt-state byte (0 = no receipt open)."""

    SALE = 1
    SALE_RETURN = 2
    EXPENSE = 4
    EXPENSE_RETURN = 5
    CORRECTION_SALE = 7
    CORRECTION_EXPENSE = 9
    CORRECTION_OTHER = 10
    """Listed among the correction types by the reference; which correction it is is [not found]."""


class PaymentType(IntEnum):
    """99h / 4Ah payment type byte."""

    CASH = 1
    ELECTRONIC = 2
    PREPAID = 3
    CREDIT = 4
    OTHER = 5


class Interface(IntEnum):
    """3Fh offset 29."""

    RS232 = 1
    USB = 4
    BLUETOOTH = 5
    ETHERNET = 6
    WIFI = 7


class ShiftState(IntEnum):
    """A4h/10h shift state; EXPIRED is plausible but [not confirmed]."""

    CLOSED = 0
    OPEN = 1
    EXPIRED = 2


class FnPhase(IntEnum):
    """A4h/30h FN life phase."""

    SETUP = 0x00
    READY = 0x01
    FISCAL = 0x03
    POST_FISCAL = 0x07
    ARCHIVE = 0x0F


class NumberEncoding(StrEnum):
    """How A4h/10h encodes its 2-byte numbers ([conflict] in the reference)."""

    BINARY_LE = "binary-le"   # S7
    BCD_LE = "bcd-le"         # atol4j: BCD digits, low byte first
    BCD_BE = "bcd-be"


DEFAULT_TIMEOUT: Final = 10.0
COMMAND_TIMEOUTS: Final[dict[int, float]] = {
    0x6B: 10.0, 0x8D: 20.0, 0x8E: 20.0, Cmd.CLOSE_ARCHIVE: 20.0, Cmd.CLOSE_RECEIPT: 20.0,
    Cmd.Z_REPORT: 40.0, Cmd.READ_REGISTER: 45.0, Cmd.REGISTRATION: 50.0,
    Cmd.REGISTER_POSITION: 50.0, 0xEA: 50.0, 0xEB: 50.0,
    Cmd.PRINT_REGISTRATION_TOTALS: 120.0, Cmd.PRINT_FN_DOCUMENT: 120.0,
}
"""Per-command answer timeout T5 in seconds (§3.4); others use :data:`DEFAULT_TIMEOUT`."""


def answer_timeout(code: int) -> float:
    """T5 for a command byte, in seconds (unscaled)."""
    return COMMAND_TIMEOUTS.get(int(code), DEFAULT_TIMEOUT)


# ------------------------------------------------------------------------------------------------
# Application layer: requests and answers
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CommandRequest:
    """A decoded task: access password, command byte, raw parameters."""

    password: int
    code: int
    params: bytes = b""

    def encode(self) -> bytes:
        return encode_command(self.code, self.params, self.password)


def encode_command(code: int, params: bytes = b"", password: int = 0) -> bytes:
    """``password (2 BCD) | code | params`` -- the task carried by ADD or a v2 frame."""
    return to_bcd(password, 2) + bytes([_byte(int(code), "command code")]) + bytes(params)


def decode_command(task: bytes) -> CommandRequest:
    """Inverse of :func:`encode_command` (what an emulator receives)."""
    task = bytes(task)
    _need(task, 3, "command")
    return CommandRequest(from_bcd(task[:2]), task[2], task[3:])


class AnswerForm(StrEnum):
    """Layout of an answer payload."""

    U = "U"     # 'U' err data...
    D = "D"     # 'D' + status block (3Fh)
    M = "M"     # 'M' + cash sum (4Dh)
    A5 = "A5"   # err data... (A5h)


NO_ERROR_BYTE_COMMANDS: Final = frozenset({Cmd.STATE})
"""Commands whose 'U' answer has no error byte (45h answers ``'U' mode flags``)."""

_FORM_LEAD: Final = {AnswerForm.U: 0x55, AnswerForm.D: 0x44, AnswerForm.M: 0x4D}


@dataclass(frozen=True)
class Answer:
    """An application-layer answer.  ``data`` is what follows the error byte (or the lead byte)."""

    form: AnswerForm
    error: int = 0
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.error == 0

    @property
    def error_text(self) -> str:
        return error_text(self.error)

    def encode(self, command: int | None = None) -> bytes:
        """Bytes of this answer to ``command`` (needed only to drop 45h's missing error byte)."""
        if self.form == AnswerForm.A5:
            return bytes([_byte(self.error, "error")]) + self.data
        lead = bytes([_FORM_LEAD[AnswerForm(self.form)]])
        if self.form == AnswerForm.U and command not in NO_ERROR_BYTE_COMMANDS:
            return lead + bytes([_byte(self.error, "error")]) + self.data
        if self.error:
            raise CodecError(f"a {self.form} answer to {command!r} has no error byte")
        return lead + self.data


def parse_answer(payload: bytes, command: int | None = None) -> Answer:
    """Split an answer payload into form, error and data.

    ``command`` is the command byte that was sent: A5h answers start with the error code, 45h's
    'U' answer has no error byte, 3Fh answers 'D' (or 'U' err on failure), 4Dh answers 'M'.
    """
    payload = bytes(payload)
    if not payload:
        raise CodecError("empty answer")
    if command == Cmd.DEVICE_TYPE:
        return Answer(AnswerForm.A5, payload[0], payload[1:])
    lead = payload[0]
    if lead == 0x55:
        if command in NO_ERROR_BYTE_COMMANDS:
            return Answer(AnswerForm.U, 0, payload[1:])
        _need(payload, 2, "'U' answer")
        return Answer(AnswerForm.U, payload[1], payload[2:])
    if lead == 0x44 and command in (None, Cmd.STATUS):
        return Answer(AnswerForm.D, 0, payload[1:])
    if lead == 0x4D and command in (None, Cmd.CASH_IN_DRAWER):
        return Answer(AnswerForm.M, 0, payload[1:])
    raise CodecError(f"unexpected answer to {_cmd_name(command)}: {_hex(payload)}")


def _bcd_date(data: bytes) -> _dt.date:
    """BCD ``YY MM DD`` (20YY)."""
    try:
        return _dt.date(2000 + from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:3]))
    except ValueError as exc:
        raise CodecError(f"invalid BCD date {_hex(data)}") from exc


def _bcd_time(data: bytes) -> _dt.time:
    try:
        return _dt.time(from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:3]))
    except ValueError as exc:
        raise CodecError(f"invalid BCD time {_hex(data)}") from exc


def _year2(year: int) -> int:
    if not 2000 <= year <= 2099:
        raise CodecError(f"year {year} outside 2000..2099")
    return year - 2000


def _encode_bcd_date(value: _dt.date) -> bytes:
    return to_bcd(_year2(value.year), 1) + to_bcd(value.month, 1) + to_bcd(value.day, 1)


def _encode_bcd_time(value: _dt.time) -> bytes:
    return to_bcd(value.hour, 1) + to_bcd(value.minute, 1) + to_bcd(value.second, 1)


def _bin_date(data: bytes) -> _dt.date | None:
    """Binary ``YY MM DD``; all zeros -> None."""
    if not any(data[:3]):
        return None
    try:
        return _dt.date(2000 + data[0], data[1], data[2])
    except ValueError as exc:
        raise CodecError(f"invalid binary date {_hex(data[:3])}") from exc


def _encode_bin_date(value: _dt.date | None) -> bytes:
    if value is None:
        return bytes(3)
    return bytes([_year2(value.year), value.month, value.day])


def _bin_datetime(data: bytes) -> _dt.datetime | None:
    """Binary ``YY MM DD hh mm`` (FN format); all zeros -> None."""
    if not any(data[:5]):
        return None
    try:
        return _dt.datetime(2000 + data[0], data[1], data[2], data[3], data[4])
    except ValueError as exc:
        raise CodecError(f"invalid binary date-time {_hex(data[:5])}") from exc


def _encode_bin_datetime(value: _dt.datetime | None) -> bytes:
    if value is None:
        return bytes(5)
    return bytes([_year2(value.year), value.month, value.day, value.hour, value.minute])


def _mode_byte(mode: int, submode: int) -> int:
    if not (0 <= mode <= 0x0F and 0 <= submode <= 0x0F):
        raise CodecError(f"mode {mode} / sub-mode {submode} must be nibbles")
    return (submode << 4) | mode


# --- 3Fh status block ---------------------------------------------------------------------------

class StatusFlags(IntFlag):
    """3Fh flags byte (offset 9)."""

    NONE = 0
    FISCAL = 0x01
    SHIFT_OPEN = 0x02
    CASH_DRAWER_OPEN = 0x04
    """[conflict]: S6/S8 "cash drawer open"; S7 reads bit 2 as "paper in presenter"."""
    PAPER_PRESENT = 0x08
    """1 = paper OK."""
    BIT4 = 0x10
    """Unused / unknown."""
    COVER_OPEN = 0x20
    FN_ACTIVATED = 0x40
    BATTERY_LOW = 0x80


STATUS_BLOCK_SIZE: Final = 30


@dataclass(frozen=True)
class StatusBlock:
    """The 3Fh answer: ``'D'`` and 29 bytes (§3.5.1).

    ``shift_number`` is the last *closed* shift (the open one is that + 1).  ``receipt_sum`` is
    scaled by ``decimal_point`` digits.  Bytes beyond offset 29 (newer firmware) go to ``extra``.
    """

    date: _dt.date = _dt.date(2000, 1, 1)
    time: _dt.time = _dt.time(0, 0, 0)
    cashier: int = 0
    number_in_hall: int = 1
    flags: StatusFlags = StatusFlags.NONE
    serial: int = 0
    model: int = 0
    version: bytes = b"\x00\x00"
    mode: int = Mode.SELECT
    submode: int = 0
    receipt_number: int = 0
    shift_number: int = 0
    receipt_state: int = 0
    receipt_sum: Decimal = Decimal("0.00")
    decimal_point: int = 2
    interface: int = Interface.USB
    extra: bytes = b""

    @property
    def datetime(self) -> _dt.datetime:
        return _dt.datetime.combine(self.date, self.time)

    @property
    def serial_text(self) -> str:
        """Serial number as the 8 BCD digits on the wire."""
        return f"{self.serial:08d}"

    @property
    def receipt_open(self) -> bool:
        return self.receipt_state != 0

    def encode(self) -> bytes:
        if len(self.version) != 2:
            raise CodecError("StatusBlock.version must be 2 bytes")
        out = bytearray(b"D")
        out += to_bcd(self.cashier, 1)
        out.append(_byte(self.number_in_hall, "number in hall"))
        out += _encode_bcd_date(self.date)
        out += _encode_bcd_time(self.time)
        out.append(_byte(int(self.flags), "flags"))
        out += to_bcd(self.serial, 4)
        out.append(_byte(self.model, "model"))
        out += self.version
        out.append(_mode_byte(self.mode, self.submode))
        out += to_bcd(self.receipt_number, 2)
        out += to_bcd(self.shift_number, 2)
        out.append(_byte(self.receipt_state, "receipt state"))
        out += money_to_bcd(self.receipt_sum, 5, self.decimal_point)
        out.append(_byte(self.decimal_point, "decimal point"))
        out.append(_byte(self.interface, "interface"))
        return bytes(out) + self.extra

    @classmethod
    def decode(cls, payload: bytes) -> StatusBlock:
        """Decode the full 3Fh answer payload (starting with ``'D'``)."""
        payload = bytes(payload)
        _need(payload, STATUS_BLOCK_SIZE, "3Fh status block")
        if payload[0] != 0x44:
            raise CodecError(f"3Fh status block must start with 'D': {_hex(payload)}")
        point = payload[28]
        return cls(
            cashier=from_bcd(payload[1:2]),
            number_in_hall=payload[2],
            date=_bcd_date(payload[3:6]),
            time=_bcd_time(payload[6:9]),
            flags=StatusFlags(payload[9]),
            serial=from_bcd(payload[10:14]),
            model=payload[14],
            version=payload[15:17],
            mode=payload[17] & 0x0F,
            submode=payload[17] >> 4,
            receipt_number=from_bcd(payload[18:20]),
            shift_number=from_bcd(payload[20:22]),
            receipt_state=payload[22],
            receipt_sum=money_from_bcd(payload[23:28], point),
            decimal_point=point,
            interface=payload[29],
            extra=payload[STATUS_BLOCK_SIZE:],
        )


# --- 45h state code ------------------------------------------------------------------------------

class PrinterFlags(IntFlag):
    """45h printer flags."""

    NONE = 0
    NO_PAPER = 0x01
    NO_PRINTER_LINK = 0x02
    MECHANICAL_ERROR = 0x04
    CUTTER_ERROR = 0x08
    HEAD_OVERHEAT = 0x10
    PAPER_JAM = 0x20
    PRESENTER_ERROR = 0x40
    PAPER_NEAR_END = 0x80


@dataclass(frozen=True)
class StateAnswer:
    """45h answer data (after ``'U'``): mode byte, printer flags."""

    mode: int = Mode.SELECT
    submode: int = 0
    flags: PrinterFlags = PrinterFlags.NONE

    def encode(self) -> bytes:
        return bytes([_mode_byte(self.mode, self.submode), _byte(int(self.flags), "flags")])

    @classmethod
    def decode(cls, data: bytes) -> StateAnswer:
        _need(data, 2, "45h state")
        return cls(data[0] & 0x0F, data[0] >> 4, PrinterFlags(data[1]))


# --- A5h device type -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceType:
    """A5h answer data (after the error byte).

    ``firmware`` is kept raw: its 5-byte layout is not pinned down by the sources.
    """

    protocol_version: int = 0
    device_type: int = 0
    model: int = 0
    mode: int = Mode.SELECT
    submode: int = 0
    firmware: bytes = bytes(5)
    name: str = ""

    @property
    def firmware_text(self) -> str:
        return ".".join(f"{b:02X}" for b in self.firmware)

    def encode(self) -> bytes:
        if len(self.firmware) != 5:
            raise CodecError("DeviceType.firmware must be 5 bytes")
        return bytes([_byte(self.protocol_version, "protocol version"),
                      _byte(self.device_type, "device type"), _byte(self.model, "model"),
                      _byte(self.mode, "mode"), _byte(self.submode, "sub-mode")]) \
            + self.firmware + encode_text(self.name)

    @classmethod
    def decode(cls, data: bytes) -> DeviceType:
        data = bytes(data)
        _need(data, 10, "A5h device type")
        return cls(data[0], data[1], data[2], data[3], data[4], data[5:10],
                   decode_text(data[10:]))


# --- 9Dh firmware version ------------------------------------------------------------------------

@dataclass(frozen=True)
class FirmwareVersion:
    """9Dh answer data (after ``'U' err``): version, sub-version, language, build (BCD)."""

    version: int = 0
    subversion: int = 0
    language: int = 0
    build: int = 0

    @property
    def text(self) -> str:
        return f"{self.version}.{self.subversion}.{self.language}.{self.build}"

    def encode(self, *, reserved_byte: bool = False) -> bytes:
        body = (to_bcd(self.version, 1) + to_bcd(self.subversion, 1) + to_bcd(self.language, 1)
                + to_bcd(self.build, 2))
        return (b"\x00" + body) if reserved_byte else body

    @classmethod
    def decode(cls, data: bytes, *, reserved_byte: bool = False) -> FirmwareVersion:
        """``reserved_byte=True``: atol4j's layout with one extra byte before the version."""
        data = bytes(data)
        if reserved_byte:
            _need(data, 1, "9Dh firmware version")
            data = data[1:]
        _need(data, 5, "9Dh firmware version")
        return cls(from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:3]),
                   from_bcd(data[3:5]))


# --- A4h FN queries ------------------------------------------------------------------------------

def _encode_num2(value: int, encoding: NumberEncoding) -> bytes:
    if encoding == NumberEncoding.BINARY_LE:
        return to_le(value, 2)
    if encoding == NumberEncoding.BCD_LE:
        return to_bcd(value, 2)[::-1]
    return to_bcd(value, 2)


def _decode_num2(data: bytes, encoding: NumberEncoding) -> int:
    if encoding == NumberEncoding.BINARY_LE:
        return from_le(data)
    if encoding == NumberEncoding.BCD_LE:
        return from_bcd(bytes(data)[::-1])
    return from_bcd(data)


@dataclass(frozen=True)
class ShiftParams:
    """A4h/10h answer data: shift state, shift number, receipt number."""

    state: int = ShiftState.CLOSED
    shift_number: int = 0
    receipt_number: int = 0

    def encode(self, encoding: NumberEncoding = NumberEncoding.BINARY_LE) -> bytes:
        return (bytes([_byte(self.state, "shift state")])
                + _encode_num2(self.shift_number, encoding)
                + _encode_num2(self.receipt_number, encoding))

    @classmethod
    def decode(cls, data: bytes,
               encoding: NumberEncoding = NumberEncoding.BINARY_LE) -> ShiftParams:
        data = bytes(data)
        _need(data, 5, "A4h/10h shift parameters")
        return cls(data[0], _decode_num2(data[1:3], encoding), _decode_num2(data[3:5], encoding))


class OfdFlags(IntFlag):
    """A4h/20h exchange status bits."""

    NONE = 0
    TRANSPORT_CONNECTED = 0x01
    MESSAGE_WAITING = 0x02
    AWAITING_RECEIPT = 0x04
    OFD_COMMAND = 0x08
    SETTINGS_CHANGED = 0x10
    AWAITING_COMMAND_ANSWER = 0x20


@dataclass(frozen=True)
class OfdExchangeStatus:
    """A4h/20h answer data; ``first_unsent_at`` is None when the FN sends all zeros."""

    flags: OfdFlags = OfdFlags.NONE
    read_started: int = 0
    unsent_count: int = 0
    first_unsent_number: int = 0
    first_unsent_at: _dt.datetime | None = None

    def encode(self) -> bytes:
        return (bytes([_byte(int(self.flags), "flags"), _byte(self.read_started, "read started")])
                + to_le(self.unsent_count, 2) + to_le(self.first_unsent_number, 4)
                + _encode_bin_datetime(self.first_unsent_at))

    @classmethod
    def decode(cls, data: bytes) -> OfdExchangeStatus:
        data = bytes(data)
        _need(data, 13, "A4h/20h OFD exchange status")
        return cls(OfdFlags(data[0]), data[1], from_le(data[2:4]), from_le(data[4:8]),
                   _bin_datetime(data[8:13]))


class FnWarnings(IntFlag):
    """A4h/30h FN warning flags."""

    NONE = 0
    URGENT_REPLACEMENT = 0x01
    RESOURCE_LOW = 0x02
    """Less than 30 days of FN life left."""
    MEMORY_90 = 0x04
    OFD_TIMEOUT = 0x08
    CRITICAL = 0x80


@dataclass(frozen=True)
class FnStatus:
    """A4h/30h answer data (the FN's own status record)."""

    phase: int = FnPhase.FISCAL
    current_document: int = 0
    document_data_received: bool = False
    shift_open: bool = False
    warnings: FnWarnings = FnWarnings.NONE
    last_document_at: _dt.datetime | None = None
    fn_number: str = ""
    last_fd_number: int = 0

    def encode(self) -> bytes:
        try:
            number = self.fn_number.encode("ascii")
        except UnicodeEncodeError as exc:
            raise CodecError(f"FN number must be ASCII: {self.fn_number!r}") from exc
        if len(number) > 16:
            raise CodecError(f"FN number longer than 16 characters: {self.fn_number!r}")
        return (bytes([_byte(self.phase, "phase"), _byte(self.current_document, "document"),
                       int(self.document_data_received), int(self.shift_open),
                       _byte(int(self.warnings), "warnings")])
                + _encode_bin_datetime(self.last_document_at)
                + number.ljust(16, b" ") + to_le(self.last_fd_number, 4))

    @classmethod
    def decode(cls, data: bytes) -> FnStatus:
        data = bytes(data)
        _need(data, 30, "A4h/30h FN status")
        return cls(data[0], data[1], bool(data[2]), bool(data[3]), FnWarnings(data[4]),
                   _bin_datetime(data[5:10]),
                   data[10:26].decode("ascii", "replace").rstrip("\x00 "),
                   from_le(data[26:30]))


@dataclass(frozen=True)
class FnValidity:
    """A4h/32h answer data: FN end date (binary YY MM DD), re-registrations left / done."""

    valid_until: _dt.date | None = None
    registrations_left: int = 0
    registrations_done: int = 0

    def encode(self) -> bytes:
        return _encode_bin_date(self.valid_until) + bytes([
            _byte(self.registrations_left, "registrations left"),
            _byte(self.registrations_done, "registrations done")])

    @classmethod
    def decode(cls, data: bytes) -> FnValidity:
        data = bytes(data)
        _need(data, 5, "A4h/32h FN validity")
        return cls(_bin_date(data[0:3]), data[3], data[4])


@dataclass(frozen=True)
class RegistrationTotals:
    """A4h/43h answer data [inferred]: the last (re-)registration.

    A4h/30h..33h pass the ФН's own 30h..33h answers through (§3.5.4); by the same analogy 43h is
    the ФН's "registration totals": date-time (5, binary), INN (12 ASCII), RNM (20 ASCII), tax
    systems (1, tag 1062 bits), work mode (1), FD number (4 LE), fiscal sign (4 LE).
    """

    at: _dt.datetime | None = None
    inn: str = ""
    rnm: str = ""
    tax_systems: int = 0
    work_mode: int = 0
    fd_number: int = 0
    fiscal_sign: int = 0

    def encode(self) -> bytes:
        try:
            inn = self.inn.encode("ascii")
            rnm = self.rnm.encode("ascii")
        except UnicodeEncodeError as exc:
            raise CodecError(f"INN/RNM must be ASCII: {self.inn!r} {self.rnm!r}") from exc
        if len(inn) > 12 or len(rnm) > 20:
            raise CodecError(f"INN (12) or RNM (20) too long: {self.inn!r} {self.rnm!r}")
        return (_encode_bin_datetime(self.at) + inn.ljust(12, b" ") + rnm.ljust(20, b" ")
                + bytes([_byte(self.tax_systems, "tax systems"), _byte(self.work_mode, "work mode")])
                + to_le(self.fd_number, 4) + to_le(self.fiscal_sign, 4))

    @classmethod
    def decode(cls, data: bytes) -> RegistrationTotals:
        data = bytes(data)
        _need(data, 47, "A4h/43h registration totals")
        return cls(_bin_datetime(data[0:5]), data[5:17].decode("ascii", "replace").strip(),
                   data[17:37].decode("ascii", "replace").strip(), data[37], data[38],
                   from_le(data[39:43]), from_le(data[43:47]))


# --- request parameters of the sale path ---------------------------------------------------------

@dataclass(frozen=True)
class EnterMode:
    """56h parameters: mode(1), mode password (4 bytes BCD)."""

    mode: int
    password: int = 0

    def encode(self) -> bytes:
        return bytes([_byte(self.mode, "mode")]) + to_bcd(self.password, 4)

    @classmethod
    def decode(cls, params: bytes) -> EnterMode:
        params = bytes(params)
        _need(params, 5, "56h enter mode")
        return cls(params[0], from_bcd(params[1:5]))


@dataclass(frozen=True)
class OpenReceipt:
    """92h parameters: flags(1) (bit0 test mode), receipt type(1)."""

    receipt_type: int = ReceiptType.SALE
    flags: int = 0

    def encode(self) -> bytes:
        return bytes([_byte(self.flags, "flags"), _byte(self.receipt_type, "receipt type")])

    @classmethod
    def decode(cls, params: bytes) -> OpenReceipt:
        params = bytes(params)
        _need(params, 2, "92h open receipt")
        return cls(params[1], params[0])


POSITION_NAME_WIDTH: Final = 64
POSITION_TEXT_WIDTH: Final = 16
POSITION_PARAMS_SIZE: Final = 103


@dataclass(frozen=True)
class Position:
    """E6h parameters (FFD 1.05 register position, 103 bytes, layout per S7/atol4j).

    ``flags``: bit0 check only, bit1 do not check cash.  ``discount_type``: 0 percent, 1 sum;
    ``discount_sign``: 0 discount, 1 markup.  The name is CP866, zero-padded to 64 bytes.
    """

    name: str
    price: Decimal
    quantity: Decimal = Decimal(1)
    flags: int = 0
    discount_type: int = 1
    discount_sign: int = 0
    discount: Decimal = Decimal(0)
    tax: int = 0
    section: int = 0
    text: bytes = bytes(POSITION_TEXT_WIDTH)

    @property
    def amount(self) -> Decimal:
        """price x quantity, rounded to kopecks (half-up)."""
        return (self.price * self.quantity).quantize(Decimal("0.01"), "ROUND_HALF_UP")

    def encode(self) -> bytes:
        if len(self.text) > POSITION_TEXT_WIDTH:
            raise CodecError(f"position text longer than {POSITION_TEXT_WIDTH} bytes")
        return (bytes([_byte(self.flags, "flags")])
                + encode_text(self.name, POSITION_NAME_WIDTH)
                + money_to_bcd(self.price, 6) + quantity_to_bcd(self.quantity, 5)
                + bytes([_byte(self.discount_type, "discount type"),
                         _byte(self.discount_sign, "discount sign")])
                + money_to_bcd(self.discount, 6)
                + bytes([_byte(self.tax, "tax"), _byte(self.section, "section")])
                + bytes(self.text).ljust(POSITION_TEXT_WIDTH, b"\x00") + b"\x00")

    @classmethod
    def decode(cls, params: bytes) -> Position:
        p = bytes(params)
        _need(p, POSITION_PARAMS_SIZE, "E6h register position")
        return cls(name=decode_text(p[1:65]), price=money_from_bcd(p[65:71]),
                   quantity=quantity_from_bcd(p[71:76]), flags=p[0], discount_type=p[76],
                   discount_sign=p[77], discount=money_from_bcd(p[78:84]), tax=p[84],
                   section=p[85], text=p[86:102])


@dataclass(frozen=True)
class _TypedSum:
    """flags(1), payment type(1), sum (5 bytes BCD): the layout 99h and 4Ah share."""

    payment_type: int = PaymentType.CASH
    amount: Decimal = Decimal(0)
    flags: int = 0
    _what = ""

    def encode(self) -> bytes:
        return (bytes([_byte(self.flags, "flags"), _byte(self.payment_type, "payment type")])
                + money_to_bcd(self.amount, 5))

    @classmethod
    def decode(cls, params: bytes) -> Self:
        params = bytes(params)
        _need(params, 7, cls._what)
        return cls(params[1], money_from_bcd(params[2:7]), params[0])


@dataclass(frozen=True)
class Payment(_TypedSum):
    """99h parameters: flags(1), payment type(1), sum (5 bytes BCD)."""

    _what = "99h payment"


@dataclass(frozen=True)
class PaymentResult:
    """99h answer data (after ``'U' err``): remainder to pay, change (5 bytes BCD each)."""

    remainder: Decimal = Decimal(0)
    change: Decimal = Decimal(0)

    def encode(self) -> bytes:
        return money_to_bcd(self.remainder, 5) + money_to_bcd(self.change, 5)

    @classmethod
    def decode(cls, data: bytes) -> PaymentResult:
        data = bytes(data)
        _need(data, 10, "99h payment answer")
        return cls(money_from_bcd(data[0:5]), money_from_bcd(data[5:10]))


@dataclass(frozen=True)
class CloseReceipt(_TypedSum):
    """4Ah parameters: flags(1), payment type(1), sum (5 bytes BCD)."""

    _what = "4Ah close receipt"


# --- requisites (E8h / E9h), re-registration (A6h), date and time (64h / 4Bh / EDh) ----------------
#
# The reference gives E8h/E9h parameters only in outline and no A6h layout at all (§3.5.5:
# "parameters for FFD 1.05+ are written as requisites before the call [inferred]").  The layouts
# below are this project's [inferred] choices; the emulator and the driver share them.

class Tag(IntEnum):
    """FFD requisite tags the stand writes (E8h) or reads (E9h)."""

    KKT_SERIAL = 1013
    INN = 1018
    CASHIER = 1021
    RNM = 1037
    FN_SERIAL = 1041
    RECEIPT_TAX_SYSTEM = 1055
    TAX_SYSTEMS = 1062
    REREG_REASON = 1101
    """FFD 1.05 single reason code (4 = change of ККТ settings)."""
    REREG_REASONS = 1205
    """FFD 1.1/1.2 reason bit mask (bit 7 = change of the tax-system list)."""
    FFD_VERSION = 1209
    """1 = 1.0, 2 = 1.05, 3 = 1.1, 4 = 1.2."""


FFD_CODES: Final[dict[str, int]] = {"1.0": 1, "1.05": 2, "1.1": 3, "1.2": 4}
FFD_NAMES: Final[dict[int, str]] = {code: name for name, code in FFD_CODES.items()}


def encode_tlv(tag: int, value: bytes) -> bytes:
    """FN-style TLV: tag (2 bytes LE), length (2 bytes LE), value."""
    value = bytes(value)
    if not 0 <= int(tag) <= 0xFFFF:
        raise CodecError(f"TLV tag {tag} out of range")
    return to_le(int(tag), 2) + to_le(len(value), 2) + value


def decode_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs in ``data``; a truncated header or value raises :class:`CodecError`."""
    data = bytes(data)
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise CodecError(f"truncated TLV header at offset {pos}: {_hex(data[pos:])}")
        tag, size = from_le(data[pos:pos + 2]), from_le(data[pos + 2:pos + 4])
        if len(data) - pos - 4 < size:
            raise CodecError(f"TLV {tag} claims {size} bytes, {len(data) - pos - 4} left")
        out.append((tag, data[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return out


@dataclass(frozen=True)
class WriteRequisite:
    """E8h parameters: flags(1), block count(1), block number(1), data (TLVs) [inferred]."""

    data: bytes
    flags: int = 0
    blocks: int = 1
    block: int = 0

    def encode(self) -> bytes:
        return bytes([_byte(self.flags, "flags"), _byte(self.blocks, "block count"),
                      _byte(self.block, "block number")]) + bytes(self.data)

    @classmethod
    def decode(cls, params: bytes) -> WriteRequisite:
        params = bytes(params)
        _need(params, 3, "E8h write requisite")
        return cls(params[3:], params[0], params[1], params[2])


@dataclass(frozen=True)
class ReadRequisite:
    """E9h parameters: tag (2 bytes LE), block number(1) [inferred byte order]."""

    tag: int
    block: int = 0

    def encode(self) -> bytes:
        return to_le(int(self.tag), 2) + bytes([_byte(self.block, "block number")])

    @classmethod
    def decode(cls, params: bytes) -> ReadRequisite:
        params = bytes(params)
        _need(params, 2, "E9h read requisite")
        return cls(from_le(params[0:2]), params[2] if len(params) > 2 else 0)


class TaxType(IntEnum):
    """E6h tax byte.  [inferred]: libfptr's LIBFPTR_TAX_* numbering (S11-style constant tables)."""

    DEPARTMENT = 0
    VAT18 = 1
    VAT10 = 2
    VAT118 = 3
    VAT110 = 4
    VAT0 = 5
    NONE = 6
    VAT20 = 7
    VAT120 = 8


class RegistrationKind(IntEnum):
    """First A6h parameter byte [inferred]."""

    REGISTRATION = 1
    CHANGE_PARAMETERS = 2
    """Re-registration without ФН replacement (e.g. a new tax-system list)."""
    FN_REPLACEMENT = 3


@dataclass(frozen=True)
class Registration:
    """A6h parameters [inferred]: kind(1), then optionally the tax-system mask (1062) directly.

    Without the mask the register takes 1062 as last written with E8h (and keeps the registered
    list when none was written).  The reason (1205 / 1101) is written with E8h beforehand.
    """

    kind: int = RegistrationKind.CHANGE_PARAMETERS
    tax_systems: int | None = None

    def encode(self) -> bytes:
        out = bytes([_byte(self.kind, "registration kind")])
        if self.tax_systems is not None:
            out += bytes([_byte(self.tax_systems, "tax systems")])
        return out

    @classmethod
    def decode(cls, params: bytes) -> Registration:
        params = bytes(params)
        _need(params, 1, "A6h registration")
        return cls(params[0], params[1] if len(params) > 1 else None)


def encode_date_params(value: _dt.date) -> bytes:
    """64h parameters: DD MM YY (BCD)."""
    return to_bcd(value.day, 1) + to_bcd(value.month, 1) + to_bcd(_year2(value.year), 1)


def decode_date_params(params: bytes) -> _dt.date:
    params = bytes(params)
    _need(params, 3, "64h date")
    try:
        return _dt.date(2000 + from_bcd(params[2:3]), from_bcd(params[1:2]), from_bcd(params[0:1]))
    except ValueError as exc:
        raise CodecError(f"invalid date {_hex(params[:3])}") from exc


def encode_time_params(value: _dt.time) -> bytes:
    """4Bh parameters: hh mm ss (BCD)."""
    return _encode_bcd_time(value)


def decode_time_params(params: bytes) -> _dt.time:
    params = bytes(params)
    _need(params, 3, "4Bh time")
    return _bcd_time(params[:3])


def encode_datetime_params(value: _dt.datetime) -> bytes:
    """EDh parameters: DD MM YY hh mm ss, one BCD byte each [inferred: BCD like 64h/4Bh]."""
    return encode_date_params(value.date()) + encode_time_params(value.time())


def decode_datetime_params(params: bytes) -> _dt.datetime:
    params = bytes(params)
    _need(params, 6, "EDh date and time")
    return _dt.datetime.combine(decode_date_params(params[:3]), decode_time_params(params[3:6]))


STATUS_PRINT_PENDING: Final = StatusFlags.BIT4
"""[inferred] 3Fh flags bit 4 (unused per the sources): a document is committed in the ФН but its
printout is unfinished (paper ran out); 95h finishes it.  Set by the emulator only."""


# ------------------------------------------------------------------------------------------------
# Error table (§3.7)
# ------------------------------------------------------------------------------------------------

ATOL_ERRORS: Final[dict[int, str]] = {
    0: "OK",
    8: "bad price",
    10: "bad quantity",
    19: "bad format",
    20: "bad length",
    22: "date entry must be confirmed",
    30: "mode entry blocked",
    31: "check date and time",
    32: "register date/time earlier than in the FN",
    102: "not allowed in this mode",
    103: "no paper",
    104: "no link with the receipt printer",
    105: "printer mechanical error",
    106: "bad receipt type",
    122: "model cannot do this",
    128: "forbidden by the settings table",
    129: "receipt total overflow",
    136: "shift exceeded 24 hours",
    140: "wrong password",
    143: "register already cleared (repeated Z impossible)",
    154: "receipt closed - operation impossible",
    155: "receipt open - operation impossible",
    156: "shift open - operation impossible",
    159: "re-registration limit exhausted",
    164: "invalid (mode) password",
    168: "register not fiscalised",
    191: "shift numbers differ between register and FN",
    208: "FN activation impossible in this register",
    209: "print-head overheat",
    210: "FN exchange error (I2C) - FN missing or unreachable",
    211: "FN transfer format error",
    212: "wrong FN state",
    213: "FN fatal error",
    214: "FN crypto error",
    215: "FN lifetime expired",
    216: "FN archive full",
    217: "wrong date/time sent to the FN",
    218: "no requested data in the FN",
    219: "FN total overflow",
    231: "bad FN command parameters",
    232: "TLV too large",
    233: "no transport connection",
    234: "FN crypto resource exhausted",
    235: "OFD document storage exhausted",
    236: "OFD message rejected by the FN",
    237: "unsent fiscal documents in the FN",
    238: "read the extended error code from register 55",
    239: "OFD wait resource exhausted (30 days)",
    240: "FN shift exceeded 24 hours",
    241: "bad time difference between FN operations",
    243: "too many positions",
}


def error_text(code: int) -> str:
    """English text of an ATOL error code (``'unknown error N'`` if not in the table)."""
    return ATOL_ERRORS.get(code, f"unknown error {code}")


# ------------------------------------------------------------------------------------------------
# describe(): one line for the wire trace
# ------------------------------------------------------------------------------------------------

def _cmd_name(code: int | None) -> str:
    if code is None:
        return "unknown command"
    try:
        return f"{code:02X}h {Cmd(code).name}"
    except ValueError:
        return f"{code:02X}h"


def _describe_request(task: bytes) -> str:
    req = decode_command(task)
    text = _cmd_name(req.code)
    if req.code == Cmd.FN and req.params:
        try:
            text += f"/{FnQuery(req.params[0]).name}"
        except ValueError:
            text += f"/{req.params[0]:02X}h"
        params = req.params[1:]
    else:
        params = req.params
    if req.password:
        text += f" pwd={req.password:04d}"
    if params:
        text += f" params={_hex(params)}"
    return text


def _describe_answer(payload: bytes) -> str:
    if not payload:
        return "empty answer"
    lead = payload[0]
    if lead == 0x44 and len(payload) >= STATUS_BLOCK_SIZE:
        try:
            block = StatusBlock.decode(payload)
        except CodecError:
            return f"D {_hex(payload[1:])}"
        flags = block.flags.name if block.flags else "0"
        return (f"D status serial={block.serial_text} mode={block.mode}.{block.submode} "
                f"shift={block.shift_number} receipt_state={block.receipt_state} "
                f"flags={flags} {block.datetime.isoformat(' ')}")
    if lead == 0x55 and len(payload) >= 2:
        err = payload[1]
        text = f"U err={err} ({error_text(err)})"
        if len(payload) > 2:
            text += f" data={_hex(payload[2:])}"
        return text
    return f"answer {_hex(payload)}"


def _looks_like_answer(payload: bytes) -> bool:
    return bool(payload) and payload[0] in (0x44, 0x4D, 0x55)


def _describe_app(payload: bytes) -> str:
    if _looks_like_answer(payload):
        return _describe_answer(payload)
    try:
        return _describe_request(payload)
    except CodecError:
        return _describe_answer(payload)


def _describe_v3_payload(payload: bytes) -> str:
    first = payload[0]
    if first in {member.value for member in BufferCmd}:
        cmd = decode_buffer_command(payload)
        if cmd.kind == BufferCmd.ABORT:
            return "ABORT"
        if cmd.kind in (BufferCmd.ACK, BufferCmd.REQ):
            return f"{cmd.kind.name} tid=0x{cmd.tid:02X}"
        flags = cmd.flags.name if cmd.flags else "0"
        head = f"{cmd.kind.name} tid=0x{cmd.tid:02X} flags={flags}"
        if cmd.kind == BufferCmd.ACK_ADD:
            head = f"ACK_ADD ack_tid=0x{cmd.ack_tid:02X} tid=0x{cmd.tid:02X} flags={flags}"
        return f"{head}: {_describe_request(cmd.task)}"
    ans = decode_buffer_answer(payload)
    head = ans.status.name + (f" tid=0x{ans.tid:02X}" if ans.tid is not None else "")
    if not ans.data:
        return head
    return f"{head}: {_describe_answer(ans.data)}"


def _describe_v3(chunk: bytes) -> str:
    reader = V3Reader()
    parts: list[str] = []
    for item in reader.feed(chunk):
        if isinstance(item, V3Corrupt):
            pid = "?" if item.packet_id is None else f"{item.packet_id:02X}"
            parts.append(f"v3 id={pid} CORRUPT {item.reason}: {item.detail}")
        elif item.is_resend_request:
            parts.append(f"v3 id={item.packet_id:02X} resend request")
        else:
            try:
                body = _describe_v3_payload(item.payload)
            except (CodecError, ValueError, IndexError):
                body = _hex(item.payload)
            parts.append(f"v3 id={item.packet_id:02X} {body}")
    if reader.in_frame:
        parts.append("v3 incomplete frame")
    return " | ".join(parts) if parts else f"raw {_hex(chunk)}"


def _describe_v2(chunk: bytes) -> str:
    reader = V2Reader()
    parts: list[str] = []
    for item in reader.feed(chunk):
        if isinstance(item, V2Control):
            parts.append(item.name)
        elif isinstance(item, V2Corrupt):
            parts.append(f"v2 CORRUPT {item.reason}: {_hex(item.data)}")
        else:
            try:
                parts.append(f"v2 {_describe_app(item.data)}")
            except (CodecError, ValueError, IndexError):
                parts.append(f"v2 {_hex(item.data)}")
    if reader.in_frame:
        parts.append("v2 incomplete frame")
    return " ".join(parts) if parts else f"raw {_hex(chunk)}"


def describe(frame_bytes: bytes) -> str:
    """One line of human text for a chunk of wire bytes (v3 frames, v2 frames or control bytes).

    Never raises: anything it cannot decode is shown as hex.
    """
    try:
        chunk = bytes(frame_bytes)
        if not chunk:
            return "(no bytes)"
        if chunk[0] == V3_STX:
            return _describe_v3(chunk)
        if chunk[0] == V2_STX or chunk[0] in (ENQ, ACK, NAK, EOT):
            return _describe_v2(chunk)
        return f"raw {_hex(chunk)}"
    except Exception:  # noqa: BLE001 -- a trace line must never break the run
        try:
            return f"undecodable {bytes(frame_bytes).hex(' ').upper()}"
        except Exception:  # noqa: BLE001
            return f"undecodable {frame_bytes!r}"
