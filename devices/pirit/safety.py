"""Which Pirit requests cannot be undone: what the safety guard (``harness.safety``) refuses on a
register not proven sacrificial.  Pure: bytes in, findings out.

0x60 registration / re-registration, 0x63 technological reset, 0x71 ФН close, 0xA0 emergency shift
close (the step before an emergency ФН close), 0xA4 emergency ФН close (§2.5.12, §2.5.13), and
0x14 clock set (§2.5.8) — moving the clock forward burns ФН time.
A frame the codec cannot fully decode is judged by its command bytes alone: a device may be more
lenient than our decoder, the guard may not be.
"""

from __future__ import annotations

from datetime import datetime

from harness.safety import Destructive

from .protocol import Frame, FrameError, FrameReader, decode_request, parse_date, parse_time

DESTRUCTIVE = {
    0x60: "registration / re-registration (0x60)",
    0x63: "technological reset (0x63)",
    0x71: "ФН close (0x71)",
    0xA0: "emergency shift close (0xA0)",
    0xA4: "emergency ФН close (0xA4)",
}
CLOCK_SET = 0x14
COMMAND_AT = slice(6, 8)  # STX, password(4), packet id, then the command as two hex digits


def _command(raw: bytes) -> tuple[int | None, tuple[str, ...]]:
    try:
        request = decode_request(raw)
        return request.command, request.fields
    except FrameError:
        try:
            return int(raw[COMMAND_AT].decode("ascii"), 16), ()
        except (UnicodeDecodeError, ValueError):
            return None, ()


def _clock(fields: tuple[str, ...]) -> datetime | None:
    try:
        return datetime.combine(parse_date(fields[0]), parse_time(fields[1]))
    except (IndexError, ValueError):
        return None


def scan(stream: bytes) -> tuple[list[Destructive], int]:
    """Destructive requests among the complete frames of ``stream``, and how many bytes they span."""
    reader = FrameReader()
    found: list[Destructive] = []
    for event in reader.feed(stream):
        if not isinstance(event, Frame):
            continue
        command, fields = _command(event.raw)
        if command in DESTRUCTIVE:
            found.append(Destructive(DESTRUCTIVE[command]))
        elif command == CLOCK_SET:
            found.append(Destructive("clock set (0x14)", clock=_clock(fields)))
    return found, len(stream) - len(reader.partial())
