"""Which АТОЛ requests cannot be undone: what the safety guard (``harness.safety``) refuses on a
register not proven sacrificial.  Pure: bytes in, findings out.

A6h registration / re-registration / ФН replacement, A7h ФН archive close, 6Bh technological
reset, 77h general reset, 71h settings reset, and the clock sets 64h / 4Bh / EDh (moving the
clock forward burns ФН time) — sent as v3 task-buffer ADD / ACK_ADD tasks or as legacy v2 frames.
"""

from __future__ import annotations

from datetime import datetime, time

from harness.safety import Destructive

from .protocol import (
    V2_STX,
    BufferCmd,
    Cmd,
    CodecError,
    V2Corrupt,
    V2Frame,
    V2Reader,
    V3Frame,
    V3Reader,
    decode_buffer_command,
    decode_command,
    decode_date_params,
    decode_datetime_params,
)

V3_STX = 0xFE
V2_LOOKBACK = 512  # a v2 command's data is short: no more than this many bytes
V2_MAX_FRAME = 2 * V2_LOOKBACK + 8  # STX, data with every byte DLE-stuffed, ETX, CRC: the most a frame spans
DESTRUCTIVE = {
    Cmd.REGISTRATION: "registration / re-registration (A6h)",
    Cmd.CLOSE_ARCHIVE: "ФН archive close (A7h)",
    Cmd.TECH_RESET: "technological reset (6Bh)",
    Cmd.GENERAL_RESET: "general reset (77h)",
    Cmd.INIT_TABLES: "settings tables reset (71h)",
}


def _clock(code: int, params: bytes) -> datetime | None:
    """The time asked for, as far as the frame tells it (a date alone: its midnight; a time alone:
    unknown).  Deterministic: the same frame is the same finding (the guard counts on it)."""
    try:
        if code == Cmd.SET_DATETIME:
            return decode_datetime_params(params)
        if code == Cmd.SET_DATE:
            return datetime.combine(decode_date_params(params), time())
        return None
    except (CodecError, ValueError):
        return None


def _task(task: bytes) -> Destructive | None:
    try:
        request = decode_command(task)
    except (CodecError, ValueError):
        return None
    if request.code in DESTRUCTIVE:
        return Destructive(DESTRUCTIVE[Cmd(request.code)])
    if request.code in (Cmd.SET_DATE, Cmd.SET_TIME, Cmd.SET_DATETIME):
        return Destructive(f"clock set ({request.code:02X}h)", clock=_clock(request.code, request.params))
    return None


def _v3_tasks(stream: bytes) -> tuple[list[bytes], int]:
    reader = V3Reader(max_payload=1 << 15)
    tasks = []
    for item in reader.feed(stream):
        if not isinstance(item, V3Frame) or not item.payload:
            continue
        try:
            command = decode_buffer_command(item.payload)
        except (CodecError, ValueError):
            continue
        if command.kind in (BufferCmd.ADD, BufferCmd.ACK_ADD) and command.task:
            tasks.append(command.task)
    return tasks, (stream.rfind(V3_STX) if reader.in_frame else len(stream))


def _v2_tasks(stream: bytes) -> tuple[list[bytes], int]:
    """Legacy v2 frames starting at any STX of the whole stream: a stray 0x02 inside v3 traffic
    must not hide a real frame behind it, so every STX is tried as a frame start (a superset of
    what a register parses).  Each try reads at most one frame's worth of bytes; only a frame
    that may still complete (its STX within that many bytes of the end) keeps the tail."""
    tasks: list[bytes] = []
    open_from = len(stream)
    start = stream.find(V2_STX)
    while start != -1:
        reader = V2Reader(max_data=V2_LOOKBACK)
        items = reader.feed(stream[start : start + V2_MAX_FRAME])
        frame = next((item for item in items if isinstance(item, (V2Frame, V2Corrupt))), None)
        if isinstance(frame, V2Frame):
            tasks.append(frame.data)
        elif frame is None and reader.in_frame and len(stream) - start < V2_MAX_FRAME:
            open_from = min(open_from, start)
        start = stream.find(V2_STX, start + 1)
    return tasks, open_from


def scan(stream: bytes) -> tuple[list[Destructive], int]:
    """Destructive tasks among the complete v3 and v2 frames of ``stream``, and the bytes they span."""
    v3, used_v3 = _v3_tasks(stream)
    v2, used_v2 = _v2_tasks(stream)
    found = [finding for task in v3 + v2 if (finding := _task(task)) is not None]
    return found, min(used_v3, used_v2)
