"""One-line descriptions of Pirit frames and control bytes for the wire trace (reference
``protocols.md`` §2.5)."""

from __future__ import annotations

import json
from typing import Literal

from .framing import (
    _HEX_DIGITS,
    CONTROL_NAMES,
    DEFAULT_PASSWORD,
    ENCODING,
    Request,
    Response,
    _crc_mismatch,
    _decode_request,
    _decode_response,
    is_recovery_frame,
)


def _looks_like_answer(frame: bytes) -> bool:
    # An answer has hex digits (command + error) right after the id; a request has the last
    # three password bytes and the id there - "IRI!" for the default password.
    return len(frame) >= 6 and all(byte in _HEX_DIGITS for byte in frame[2:6])


def _fields_text(fields: tuple[str, ...]) -> str:
    return json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))


def describe(frame: bytes, *, kind: Literal["request", "answer"] | None = None) -> str:
    """One line for a wire trace; never raises.

    ``REQ id=0x21 00 status []``, ``ANS id=0x21 00 status err=00 ["0","4","0"]``, ``ENQ``.
    Whether a frame is a request or an answer is guessed from its shape unless ``kind`` says.
    A wrong CRC is shown as a ``BAD-CRC`` suffix; anything else that cannot be decoded gives
    ``undecodable: <reason>: <hex>``.
    """
    try:
        frame = bytes(frame)
        if len(frame) == 1 and frame[0] in CONTROL_NAMES:
            return CONTROL_NAMES[frame[0]]
        if kind is None:
            kind = "answer" if _looks_like_answer(frame) else "request"
        message: Request | Response
        if kind == "answer":
            message = _decode_response(frame, check_crc=False)
            text = (
                f"ANS id=0x{message.packet_id:02X} {message.command:02X} {message.command_name}"
                f" err={message.error:02X} {_fields_text(message.fields)}"
            )
            if is_recovery_frame(message):
                text += " (recovery frame)"
        else:
            message = _decode_request(frame, check_crc=False)
            text = f"REQ id=0x{message.packet_id:02X} "
            if message.password != DEFAULT_PASSWORD:
                text += f"pwd={message.password.decode(ENCODING)!r} "
            text += f"{message.command:02X} {message.command_name} {_fields_text(message.fields)}"
        if mismatch := _crc_mismatch(frame):
            text += f" BAD-CRC(got {mismatch[0]:02X}, want {mismatch[1]:02X})"
        return text
    except Exception as exc:  # noqa: BLE001 - a trace line must never break the caller
        try:
            shown = bytes(frame)[:64].hex(" ").upper()
        except Exception:  # noqa: BLE001
            shown = repr(frame)[:64]
        return f"undecodable: {exc}: {shown}"
