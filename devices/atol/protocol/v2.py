"""v2 (legacy) transport (reference §3.4): STX/ETX framing, DLE stuffing, LRC, line control bytes.

:func:`encode_v2_frame` and the incremental :class:`V2Reader`.  Timing (T1..T8) is the driver's
business.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from .v3 import CorruptReason

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


def lrc(data: bytes | bytearray) -> int:
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

    @property
    def expected_lrc(self) -> int | None:
        """Right after a frame's ETX: the LRC byte that would make the frame good; else None."""
        return self._xor if self._state == _V2State.LRC else None

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
                    out.append(
                        V2Corrupt(
                            CorruptReason.BAD_LRC, bytes(self._data), f"received {byte:02X}, computed {self._xor:02X}"
                        )
                    )
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
                    out.append(
                        V2Corrupt(CorruptReason.BAD_LENGTH, bytes(self._data), f"no ETX within {self.max_data} bytes")
                    )
                    self.reset()
        return out
