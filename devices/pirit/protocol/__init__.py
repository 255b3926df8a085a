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

Modules
-------
* :mod:`.framing` — constants, :class:`FrameError` / :class:`BadCrc` / :class:`MalformedFrame`,
  :func:`crc`, ``$xy`` field escaping, field values, :class:`Request` / :class:`Response`,
  :func:`is_recovery_frame`, ``encode_*`` / ``decode_*`` (§2.2).  Its docstring records the
  decisions taken where the reference leaves a choice: field terminators, the ``$xy`` escape
  and literal ``$``, CP866 text, packet id range, number formatting.
* :mod:`.stream` — :class:`FrameReader` splitting a byte stream into :class:`Frame`,
  :class:`Control` and :class:`Garbage` events, and :class:`PacketIds` (0x21..0x3F, never the
  recovery id 0x20).
* :mod:`.values` — data types (§2.4): dates, times, money, quantities, int and decimal fields.
* :mod:`.names` — :data:`COMMAND_NAMES` (§2.5), :data:`COMMAND_TIMEOUTS` (§2.3).
* :mod:`.tracing` — :func:`describe`, one line per frame for the wire trace.

Import from this package (``from devices.pirit.protocol import X`` or
``from devices.pirit import protocol as p``); the split into modules is an implementation detail.
"""

from __future__ import annotations

from .framing import (
    ACK,
    CONTROL_NAMES,
    DEFAULT_PASSWORD,
    ENCODING,
    ENQ,
    ETX,
    FS,
    LF,
    MIN_ANSWER_LENGTH,
    MIN_REQUEST_LENGTH,
    NAK,
    RECOVERY_PACKET_ID,
    STX,
    BadCrc,
    Field,
    FrameError,
    MalformedFrame,
    Request,
    Response,
    crc,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    escape_field,
    is_recovery_frame,
    unescape_field,
)
from .framing import MAX_PACKET_ID as MAX_PACKET_ID  # public, though never in __all__
from .framing import MIN_PACKET_ID as MIN_PACKET_ID
from .names import COMMAND_NAMES, COMMAND_TIMEOUTS, DEFAULT_TIMEOUT
from .stream import Control, Event, Frame, FrameReader, Garbage, PacketIds
from .tracing import describe
from .values import (
    format_date,
    format_money,
    format_quantity,
    format_time,
    parse_date,
    parse_decimal,
    parse_int,
    parse_time,
)

__all__ = [
    "ACK",
    "COMMAND_NAMES",
    "COMMAND_TIMEOUTS",
    "CONTROL_NAMES",
    "DEFAULT_PASSWORD",
    "DEFAULT_TIMEOUT",
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
