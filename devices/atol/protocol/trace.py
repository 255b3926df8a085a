"""Trace rendering: :func:`describe`, one never-raising line for any chunk of wire bytes.

Decodes v3 frames (§3.2) and their task-buffer payloads (§3.3), v2 frames and control bytes
(§3.4) and the application-layer requests and answers inside them (§3.5, error texts §3.7).
Anything it cannot decode is shown as hex.
"""

from __future__ import annotations

from ..errors import error_text
from ._base import CodecError, hex_text
from .answers import STATUS_BLOCK_SIZE, StatusBlock
from .buffer import BufferCmd, decode_buffer_answer, decode_buffer_command
from .commands import Cmd, FnQuery, cmd_name, decode_command
from .v2 import ACK, ENQ, EOT, NAK, V2_STX, V2Control, V2Corrupt, V2Reader
from .v3 import V3_STX, V3Corrupt, V3Reader


def _describe_request(task: bytes) -> str:
    req = decode_command(task)
    text = cmd_name(req.code)
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
        text += f" params={hex_text(params)}"
    return text


def _describe_answer(payload: bytes) -> str:
    if not payload:
        return "empty answer"
    lead = payload[0]
    if lead == 0x44 and len(payload) >= STATUS_BLOCK_SIZE:
        try:
            block = StatusBlock.decode(payload)
        except CodecError:
            return f"D {hex_text(payload[1:])}"
        flags = block.flags.name if block.flags else "0"
        return (
            f"D status serial={block.serial_text} mode={block.mode}.{block.submode} "
            f"shift={block.shift_number} receipt_state={block.receipt_state} "
            f"flags={flags} {block.datetime.isoformat(' ')}"
        )
    if lead == 0x55 and len(payload) >= 2:
        err = payload[1]
        text = f"U err={err} ({error_text(err)})"
        if len(payload) > 2:
            text += f" data={hex_text(payload[2:])}"
        return text
    return f"answer {hex_text(payload)}"


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
                body = hex_text(item.payload)
            parts.append(f"v3 id={item.packet_id:02X} {body}")
    if reader.in_frame:
        parts.append("v3 incomplete frame")
    return " | ".join(parts) if parts else f"raw {hex_text(chunk)}"


def _describe_v2(chunk: bytes) -> str:
    reader = V2Reader()
    parts: list[str] = []
    for item in reader.feed(chunk):
        if isinstance(item, V2Control):
            parts.append(item.name)
        elif isinstance(item, V2Corrupt):
            parts.append(f"v2 CORRUPT {item.reason}: {hex_text(item.data)}")
        else:
            try:
                parts.append(f"v2 {_describe_app(item.data)}")
            except (CodecError, ValueError, IndexError):
                parts.append(f"v2 {hex_text(item.data)}")
    if reader.in_frame:
        parts.append("v2 incomplete frame")
    return " ".join(parts) if parts else f"raw {hex_text(chunk)}"


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
        return f"raw {hex_text(chunk)}"
    except Exception:  # noqa: BLE001 -- a trace line must never break the run
        try:
            return f"undecodable {bytes(frame_bytes).hex(' ').upper()}"
        except Exception:  # noqa: BLE001
            return f"undecodable {frame_bytes!r}"
