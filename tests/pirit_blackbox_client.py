"""A Pirit client written from reference/protocols.md §2 only (no import from ``devices`` or
``harness``), for the black-box tests of ``kkt-hil emulate kf`` on the wire
(tests/test_pirit_blackbox_*.py): framing, answer parsing, a deadline-bound TCP link, the
control-channel client and the ``Stand`` handed out by the ``stand`` fixture (tests/conftest.py),
which runs the emulator as a subprocess on 127.0.0.1 with a frozen virtual clock.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

START = datetime(2020, 12, 30, 10, 0, 0)
IO_TIMEOUT = 5.0

# ------------------------------------------------------------------ Pirit framing (§2.2, from the text)

STX, ETX, FS = 0x02, 0x03, 0x1C
ENQ, ACK = 0x05, 0x06
PASSWORD = b"PIRI"
ENCODING = "cp866"  # §2.1


def crc(body: bytes) -> bytes:
    """XOR of every byte after STX up to and including ETX, two upper-case hex digits (§2.2)."""
    value = 0
    for byte in body:
        value ^= byte
    return b"%02X" % value


def field_bytes(value: object) -> bytes:
    return str(value).encode(ENCODING)


def request(
    command: int,
    fields: Sequence[object] = (),
    *,
    packet_id: int,
    password: bytes = PASSWORD,
    trailing_fs: bool = True,
) -> bytes:
    """STX password id "CC" (field FS)* ETX crc.  No fields → no FS (Dreamkas C++ style)."""
    assert 0x20 <= packet_id <= 0xF0
    data = b"".join(field_bytes(f) + bytes([FS]) for f in fields)
    if fields and not trailing_fs:
        data = data[:-1]
    body = password + bytes([packet_id]) + b"%02X" % command + data + bytes([ETX])
    return bytes([STX]) + body + crc(body)


@dataclass(frozen=True)
class Answer:
    raw: bytes
    packet_id: int
    command: int
    error: int
    data: bytes

    @property
    def fields(self) -> list[str]:
        """Fields as text; every field is FS-terminated (§2.2), so the last split part is empty."""
        if not self.data:
            return []
        parts = self.data.decode(ENCODING).split("\x1c")
        assert parts[-1] == "", f"answer data not FS-terminated: {self.data!r}"
        return parts[:-1]


def parse_answer(raw: bytes) -> Answer:
    """STX id "CC" "EE" data ETX crc, CRC verified (upper-case hex, as Dreamkas writes it)."""
    assert len(raw) >= 9, f"answer shorter than 9 bytes: {raw!r}"  # §2.2 minimum
    assert raw[0] == STX and raw[-3] == ETX, raw
    body = raw[1:-2]
    assert raw[-2:] == crc(body), f"bad CRC in answer {raw!r}"
    return Answer(
        raw=raw,
        packet_id=raw[1],
        command=int(raw[2:4].decode("ascii"), 16),
        error=int(raw[4:6].decode("ascii"), 16),
        data=raw[6:-3],
    )


def date6(value: datetime) -> str:
    return value.strftime("%d%m%y")


def time6(value: datetime) -> str:
    return value.strftime("%H%M%S")


class PiritLink:
    """One TCP connection to the device; reads are deadline-bound, never blocking forever."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self._buffer = b""
        self._next_id = 0x21  # 0x21…0x3F, never 0x20 (the recovery id, §2.2)

    def close(self) -> None:
        self.sock.close()

    def next_id(self) -> int:
        packet_id = self._next_id
        self._next_id = 0x21 if packet_id >= 0x3F else packet_id + 1
        return packet_id

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(4096)
        except TimeoutError:
            return False
        assert chunk, "device closed the connection"
        self._buffer += chunk
        return True

    def read_bytes(self, count: int, timeout: float = IO_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self._buffer) < count:
            if not self._fill(deadline):
                break
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        return out

    def read_frame(self, timeout: float = IO_TIMEOUT) -> bytes:
        """Bytes from STX to ETX plus the two CRC characters."""
        deadline = time.monotonic() + timeout
        while True:
            start = self._buffer.find(bytes([STX]))
            if start >= 0:
                end = self._buffer.find(bytes([ETX]), start)
                if end >= 0 and len(self._buffer) >= end + 3:
                    assert start == 0, f"stray bytes before the answer: {self._buffer[:start]!r}"
                    frame, self._buffer = self._buffer[: end + 3], self._buffer[end + 3 :]
                    return frame
            if not self._fill(deadline):
                raise AssertionError(f"no complete answer within {timeout} s; got {self._buffer!r}")

    def silent(self, timeout: float = 0.5) -> bool:
        """True when nothing arrives within ``timeout`` (a deadline-bound read, not a sleep)."""
        return not self._buffer and not self._fill(time.monotonic() + timeout)

    def exchange_raw(self, frame: bytes) -> Answer:
        self.send(frame)
        return parse_answer(self.read_frame())

    def call(self, command: int, fields: Sequence[object] = (), *, packet_id: int | None = None, **kw: Any) -> Answer:
        packet_id = self.next_id() if packet_id is None else packet_id
        answer = self.exchange_raw(request(command, fields, packet_id=packet_id, **kw))
        assert answer.packet_id == packet_id, "packet id not echoed"
        assert answer.command == command, "command not echoed"
        return answer

    def ok(self, command: int, fields: Sequence[object] = (), **kw: Any) -> list[str]:
        answer = self.call(command, fields, **kw)
        assert answer.error == 0, f"command {command:#04x} {list(fields)!r} → error {answer.error:#04x}"
        return answer.fields

    # --------------------------------------------------------------------- commands used here

    def status(self) -> tuple[int, int, int]:
        fatal, current, document = (int(x) for x in self.ok(0x00))
        return fatal, current, document

    def printer(self) -> int:
        (mask,) = self.ok(0x04)
        return int(mask)

    def info(self, n: int) -> list[str]:
        fields = self.ok(0x02, [n])
        assert fields[0] == str(n), "sub-request number not echoed"
        return fields[1:]

    def fn_query(self, n: int) -> list[str]:
        fields = self.ok(0x78, [n])
        assert fields[0] == str(n)
        return fields[1:]

    def start_work(self, when: datetime) -> Answer:
        return self.call(0x10, [date6(when), time6(when)])


# ------------------------------------------------------------------ control channel (DESIGN.md)


class Control:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.file = self.sock.makefile("rwb")

    def __call__(self, req: dict[str, Any]) -> dict[str, Any]:
        self.file.write((json.dumps(req) + "\n").encode("utf-8"))
        self.file.flush()
        line = self.file.readline()  # socket timeout applies
        assert line, "control channel closed"
        reply = json.loads(line)
        assert reply["ok"] is True, (req, reply)
        return reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@dataclass
class Stand:
    link: PiritLink
    control: Control
    port: int

    def new_link(self) -> PiritLink:
        return PiritLink(self.port)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.control({"op": "state"})["state"]["clock"]["rtc"])


def ready(stand: Stand) -> PiritLink:
    """Start of work with the device's own date/time (§2.5.7)."""
    link = stand.link
    answer = link.start_work(stand.now())
    assert answer.error == 0 and answer.fields == []
    return link


def open_shift(stand: Stand) -> PiritLink:
    link = ready(stand)
    assert link.ok(0x23, ["Кассир"]) == []
    return link


# current-flags bits (§2.5.1)
NOT_STARTED, SHIFT_OPEN, SHIFT_OVER_24H, NOT_REGISTERED = 1 << 0, 1 << 2, 1 << 3, 1 << 5
NO_PAPER = 1 << 1  # 0x04 mask
