"""Splitting a Pirit byte stream into events, and handing out packet ids (reference
``protocols.md`` §2.2).

:class:`FrameReader` (stream splitter): inside a frame only STX is special (it starts a new
frame; the partial one is reported as garbage) and ETX ends the data; the two bytes after ETX
are the CRC, whatever they are (:func:`~devices.pirit.protocol.framing.decode_request` /
:func:`~devices.pirit.protocol.framing.decode_response` validate them).  ENQ, ACK, NAK, LF are
reported as :class:`Control` only *outside* frames.  Other bytes outside frames are collected
into one :class:`Garbage` event per :meth:`FrameReader.feed` call (flushed before the next frame
or control byte), so how a stream is chunked never changes the frames and control bytes found,
only how garbage is grouped.  The raw payload of two-stage binary commands (logo, pictures,
§2.2) is not framed; read it around the reader (``reset()`` first).

:class:`PacketIds` hands out 0x21..0x3F cyclically and never 0x20, the id of the "recovery"
frame a device may send after a link failure (see
:func:`~devices.pirit.protocol.framing.is_recovery_frame`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from .framing import CONTROL_NAMES, ETX, MIN_ANSWER_LENGTH, STX

STX_BYTE = bytes([STX])
ETX_BYTE = bytes([ETX])

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
        """Consume ``data``; return the events completed by it, in stream order.

        The same events as judging byte by byte, found with ``bytes.find``: the data of a frame
        (no STX, no ETX) is taken in one slice, bounded by ``max_frame``."""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        frame = self._frame
        limit = self._max_frame
        size = len(data)
        if (  # the usual chunk: exactly one whole frame, nothing before it
            not frame
            and 3 < size <= limit
            and data[0] == STX
            and data.find(ETX_BYTE) == size - 3
            and data.find(STX_BYTE, 1) < 0
        ):
            return [Frame(bytes(data))]
        events: list[Event] = []
        garbage = bytearray()
        i = 0
        while i < size:
            if frame and not self._crc_left:  # inside a frame, before its ETX: up to the next STX/ETX
                stx = data.find(STX_BYTE, i)
                etx = data.find(ETX_BYTE, i, stx if stx >= 0 else size)
                end = etx if etx >= 0 else stx if stx >= 0 else size
                room = limit - len(frame)
                if end - i > room:  # oversized at byte i + room: give up, skip to the next STX
                    frame += data[i : i + room + 1]
                    garbage += frame
                    self.reset()
                    i += room + 1
                    continue
                frame += data[i:end]
                i = end
                if i == size:
                    break
                if data[i] == ETX:
                    frame.append(ETX)
                    i += 1
                    if len(frame) > limit:
                        garbage += frame
                        self.reset()
                    else:
                        self._crc_left = 2
                    continue
                # data[i] is STX: judged below
            byte = data[i]
            i += 1
            if byte == STX:
                garbage += frame  # abandoned partial frame (resync)
                self.reset()
                if garbage:
                    events.append(Garbage(bytes(garbage)))
                    garbage.clear()
                frame.append(byte)
            elif frame:  # a CRC character
                frame.append(byte)
                if len(frame) > limit:
                    garbage += frame  # oversized: give up, skip to the next STX
                    self.reset()
                else:
                    self._crc_left -= 1
                    if not self._crc_left:
                        if garbage:
                            events.append(Garbage(bytes(garbage)))
                            garbage.clear()
                        events.append(Frame(bytes(frame)))
                        self.reset()
            elif byte in CONTROL_NAMES:
                if garbage:
                    events.append(Garbage(bytes(garbage)))
                    garbage.clear()
                events.append(Control(byte))
            else:
                garbage.append(byte)
        if garbage:
            events.append(Garbage(bytes(garbage)))
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
