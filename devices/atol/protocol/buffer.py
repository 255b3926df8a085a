"""v3 task buffer (reference §3.3): the host's buffer commands and the register's status answers.

The payload of a v3 frame.  Host side: :class:`BufferCmd` ADD/ACK/REQ/ABORT/ACK_ADD
(:func:`encode_add` ... :func:`decode_buffer_command`); register side: :class:`BufferStatus`
A1..A8, B1..B4 (:func:`encode_status`, :func:`decode_buffer_answer`).  Whether synchronous
answers carry the TId is **[not found]**; see ``sync_tid`` and the package docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

from ._base import CodecError, check_byte, hex_text, need


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
_TASK_STATUSES: Final = frozenset(
    {
        BufferStatus.PENDING,
        BufferStatus.IN_PROGRESS,
        BufferStatus.RESULT,
        BufferStatus.ERROR,
        BufferStatus.STOPPED,
        BufferStatus.WAITING,
    }
)
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
    return check_byte(tid, "TId")


def encode_add(tid: int, task: bytes, flags: AddFlags | int = AddFlags.NEED_RESULT) -> bytes:
    """``C1 flags TId task`` -- queue ``task`` (an :func:`encode_command` result)."""
    if not task:
        raise CodecError("ADD needs a non-empty task")
    return bytes([BufferCmd.ADD, check_byte(int(flags), "flags"), check_byte(tid, "TId")]) + bytes(task)


def encode_ack(tid: int) -> bytes:
    """``C2 TId`` -- acknowledge (and drop) a finished task."""
    return bytes([BufferCmd.ACK, check_byte(tid, "TId")])


def encode_req(tid: int) -> bytes:
    """``C3 TId`` -- ask for the state of a task."""
    return bytes([BufferCmd.REQ, check_byte(tid, "TId")])


def encode_abort() -> bytes:
    """``C4`` -- cancel all tasks and clear the buffer."""
    return bytes([BufferCmd.ABORT])


def encode_ack_add(ack_tid: int, tid: int, task: bytes, flags: AddFlags | int = AddFlags.NEED_RESULT) -> bytes:
    """``C5 ackTId flags TId task`` (layout [inferred] from the name; atol4j never sends it)."""
    if not task:
        raise CodecError("ACK_ADD needs a non-empty task")
    return bytes(
        [BufferCmd.ACK_ADD, check_byte(ack_tid, "ack TId"), check_byte(int(flags), "flags"), check_byte(tid, "TId")]
    ) + bytes(task)


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
        need(payload, 4, "ADD")
        return BufferCommand(kind, tid=payload[2], flags=AddFlags(payload[1]), task=payload[3:])
    if kind in (BufferCmd.ACK, BufferCmd.REQ):
        if len(payload) != 2:
            raise CodecError(f"{kind.name} takes exactly one TId byte: {hex_text(payload)}")
        return BufferCommand(kind, tid=payload[1])
    if kind == BufferCmd.ABORT:
        if len(payload) != 1:
            raise CodecError(f"ABORT takes no parameters: {hex_text(payload)}")
        return BufferCommand(kind)
    need(payload, 5, "ACK_ADD")
    return BufferCommand(kind, tid=payload[3], flags=AddFlags(payload[2]), task=payload[4:], ack_tid=payload[1])


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
        return self.status in (
            BufferStatus.RESULT,
            BufferStatus.ERROR,
            BufferStatus.STOPPED,
            BufferStatus.ASYNC_RESULT,
            BufferStatus.ASYNC_ERROR,
        )

    def encode(self, *, sync_tid: bool = False) -> bytes:
        return encode_status(self.status, self.data, tid=self.tid, sync_tid=sync_tid)


def encode_status(
    status: BufferStatus | int, data: bytes = b"", *, tid: int | None = None, sync_tid: bool = False
) -> bytes:
    """Register payload: ``status [TId] data``.

    A6/A7 always carry ``tid``.  A1..A5/A8 carry it only with ``sync_tid=True`` (see the package
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
        need(payload, 2, status.name)
        return BufferAnswer(status, payload[1], payload[2:])
    return BufferAnswer(status, None, payload[1:])
