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
