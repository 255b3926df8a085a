"""Black-box test of ``kkt-hil emulate kf`` on the wire, with a Pirit client written here from
reference/protocols.md §2 only (no import from ``devices`` or ``harness``).

The emulator runs as a subprocess on 127.0.0.1 with a frozen virtual clock; time moves only
through its control channel.  Every read has a deadline; the process is killed in teardown.
Worked frames of §2.6 are asserted byte for byte where the emulator's state makes them apply.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

START = datetime(2020, 12, 30, 10, 0, 0)
IO_TIMEOUT = 5.0
LINE_TIMEOUT = 15.0

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
        except (socket.timeout, TimeoutError):
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


# ------------------------------------------------------------------ the emulator process


def kkt_hil() -> list[str]:
    script = shutil.which("kkt-hil", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "harness.cli"]


def _readline(proc: subprocess.Popen[bytes], selector: selectors.BaseSelector, buffer: bytearray) -> str:
    deadline = time.monotonic() + LINE_TIMEOUT
    assert proc.stdout is not None
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"emulator printed no line within {LINE_TIMEOUT} s: {bytes(buffer)!r}"
        if selector.select(remaining):
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"emulator exited early with {proc.poll()}"
            buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode("utf-8")


@dataclass
class Stand:
    link: PiritLink
    control: Control
    port: int

    def new_link(self) -> PiritLink:
        return PiritLink(self.port)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.control({"op": "state"})["state"]["clock"]["rtc"])


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    proc = subprocess.Popen(
        [
            *kkt_hil(),
            "emulate",
            "kf",
            "--listen",
            "tcp://127.0.0.1:0",
            "--control",
            "tcp://127.0.0.1:0",
            "--frozen-clock",
            "--clock",
            START.isoformat(),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    selector = selectors.DefaultSelector()
    link = control = None
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        selector.register(proc.stdout, selectors.EVENT_READ)
        buffer = bytearray()
        listening = re.fullmatch(r"listening socket://127\.0\.0\.1:(\d+)", _readline(proc, selector, buffer))
        controlling = re.fullmatch(r"control tcp://127\.0\.0\.1:(\d+)", _readline(proc, selector, buffer))
        assert listening and controlling
        port = int(listening.group(1))
        link = PiritLink(port)
        control = Control(int(controlling.group(1)))
        yield Stand(link, control, port)
    finally:
        for closer in (link, control):
            if closer is not None:
                closer.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(IO_TIMEOUT)
        selector.close()
        if proc.stdout:
            proc.stdout.close()


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


SALE_OPEN = [2, 1, "Кассир", "", 1, ""]  # sale, department 1, cashier, no number, УСН доход, no address
SALE_ITEM = ["Сахар", "", 1, "100.00", 3]  # name, article, quantity, price, tax index 3 (без НДС)

# current-flags bits (§2.5.1)
NOT_STARTED, SHIFT_OPEN, SHIFT_OVER_24H, NOT_REGISTERED = 1 << 0, 1 << 2, 1 << 3, 1 << 5
NO_PAPER = 1 << 1  # 0x04 mask


# ====================================================================== the client itself vs §2.6


def test_client_builds_the_worked_request_frames_of_the_reference() -> None:
    assert request(0x00, packet_id=0x21) == bytes.fromhex("02 50 49 52 49 21 30 30 03 32 30")
    assert request(0x10, ["231124", "101500"], packet_id=0x22) == bytes.fromhex(
        "02 50 49 52 49 22 31 30 32 33 31 31 32 34 1C 31 30 31 35 30 30 1C 03 32 30"
    )
    assert request(0x78, [7], packet_id=0x23) == bytes.fromhex("02 50 49 52 49 23 37 38 37 1C 03 30 36")
    assert request(0x02, [1], packet_id=0x24).endswith(bytes.fromhex("1C 03 30 41"))
    assert request(0x02, [1], packet_id=0x24) == b"\x02PIRI$021\x1c\x030A"
    assert request(0x23, ["Кассир"], packet_id=0x25) == bytes.fromhex(
        "02 50 49 52 49 25 32 33 8A A0 E1 E1 A8 E0 1C 03 35 42"
    )


def test_client_parses_the_worked_answer_frames_of_the_reference() -> None:
    status = parse_answer(bytes.fromhex("02 21 30 30 30 30 30 1C 34 1C 30 1C 03 30 41"))
    assert (status.packet_id, status.command, status.error, status.fields) == (0x21, 0x00, 0, ["0", "4", "0"])
    no_paper = parse_answer(bytes.fromhex("02 27 33 30 30 38 03 32 46"))
    assert (no_paper.packet_id, no_paper.command, no_paper.error, no_paper.fields) == (0x27, 0x30, 0x08, [])
    ofd = parse_answer(b"\x02#78007\x1c2\x1c3\x1c125\x1c221124\x1c153000\x1c\x03" + crc(b"#78007\x1c2\x1c3\x1c125\x1c221124\x1c153000\x1c\x03"))
    assert ofd.fields == ["7", "2", "3", "125", "221124", "153000"]
    assert crc(b"#78007\x1c2\x1c3\x1c125\x1c221124\x1c153000\x1c\x03") == b"2E"  # as printed in §2.6
    with pytest.raises(AssertionError):
        parse_answer(bytes.fromhex("02 27 33 30 30 38 03 32 45"))  # the parser does check the CRC


# ====================================================================== link level


def test_enq_gets_ack(stand: Stand) -> None:
    stand.link.send(bytes([ENQ]))
    assert stand.link.read_bytes(1) == bytes([ACK])
    assert stand.link.silent(0.2)  # exactly one byte


def test_status_before_start_of_work(stand: Stand) -> None:
    link = stand.link
    link.send(bytes.fromhex("02 50 49 52 49 21 30 30 03 32 30"))  # §2.6 worked frame
    answer = parse_answer(link.read_frame())
    assert (answer.packet_id, answer.command, answer.error) == (0x21, 0x00, 0)
    fatal, current, document = (int(f) for f in answer.fields)
    assert answer.data.count(bytes([FS])) == 3  # Dreamkas' parser counts three terminators
    assert fatal == 0
    assert current & NOT_STARTED
    assert not current & SHIFT_OPEN and not current & NOT_REGISTERED
    assert document == 0


def test_commands_before_start_of_work_are_refused_with_extended_code_1(stand: Stand) -> None:
    link = stand.link
    answer = link.call(0x23, ["Кассир"])
    assert answer.error == 0x01
    extended = link.ok(0x06, [1])
    assert extended[0] == "1"  # §2.5.6: 1 = "start of work" not called
    assert link.printer() == 0  # 0x04 still allowed


def test_start_of_work_with_the_device_time(stand: Stand) -> None:
    link = stand.link
    now = stand.now()
    assert now == START
    answer = link.call(0x10, [date6(now), time6(now)], packet_id=0x22)
    assert answer.raw == bytes.fromhex("02 22 31 30 30 30 03") + crc(bytes.fromhex("22 31 30 30 30 03"))
    _, current, _ = link.status()
    assert not current & NOT_STARTED
    assert link.ok(0x13) == [date6(START), time6(START)]  # 0x13 reads the clock back


def test_start_of_work_before_the_last_document_is_refused_with_0c(stand: Stand) -> None:
    link = stand.link
    answer = link.start_work(datetime(2019, 1, 1, 12, 0, 0))
    assert answer.error == 0x0C
    _, current, _ = link.status()
    assert current & NOT_STARTED  # initialisation not done (§2.5.7)


def test_start_of_work_more_than_8_minutes_off_answers_0b_but_initialises(stand: Stand) -> None:
    link = stand.link
    answer = link.start_work(START + timedelta(minutes=30))
    assert answer.error == 0x0B
    _, current, _ = link.status()
    assert not current & NOT_STARTED
    assert link.ok(0x13) == [date6(START), time6(START)]  # the device keeps its own clock


def test_identity(stand: Stand) -> None:
    link = ready(stand)
    (serial,) = link.info(1)
    assert serial.startswith("0497") and serial.isdigit() and len(serial) == 10
    assert link.info(21) == ["9"]  # punix "Пирит 2СФ"
    (version,) = link.info(70)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert stand.control({"op": "state"})["state"]["firmware"] == version
    # the same request with the reference's id '$': byte-exact frame, id echoed
    answer = link.exchange_raw(b"\x02PIRI$021\x1c\x030A")
    assert answer.packet_id == ord("$") and answer.fields == ["1", serial]


def test_firmware_change_through_control_shows_in_0x02_70(stand: Stand) -> None:
    link = ready(stand)
    stand.control({"op": "firmware", "version": "2.25.0"})
    assert link.info(70) == ["2.25.0"]


# ====================================================================== shift and sale


def test_open_shift_with_the_worked_frame_and_status_answer(stand: Stand) -> None:
    link = ready(stand)
    link.send(bytes.fromhex("02 50 49 52 49 25 32 33 8A A0 E1 E1 A8 E0 1C 03 35 42"))  # §2.6
    answer = parse_answer(link.read_frame())
    assert (answer.packet_id, answer.command, answer.error) == (0x25, 0x23, 0)
    # §2.6: "answer to 0x00: no fatal, shift open, no document" — byte for byte
    link.send(request(0x00, packet_id=0x21))
    assert link.read_frame() == bytes.fromhex("02 21 30 30 30 30 30 1C 34 1C 30 1C 03 30 41")
    assert link.fn_query(6)[:2] == ["1", "1"]  # shift 1, open
    # a second 0x23 on an open shift is refused
    assert link.call(0x23, ["Кассир"]).error != 0


def test_sale_with_one_item_cash(stand: Stand) -> None:
    link = open_shift(stand)
    (last_fd_before,) = link.fn_query(3)
    assert link.ok(0x30, SALE_OPEN) == []
    assert link.status()[2] == 0x12  # state 1 (open), type 2 (sale)
    (tax,) = link.ok(0x42, SALE_ITEM)
    assert re.fullmatch(r"\d+\.\d{4}", tax) and float(tax) == 0.0  # без НДС: no tax, 4 decimals
    assert link.ok(0x44) == []
    assert link.status()[2] >> 4 == 2  # after the first subtotal
    assert link.ok(0x47, [0, "100.00"]) == []
    assert link.status()[2] == 0x42  # settled, must be closed
    fields = link.ok(0x31, [0])
    assert len(fields) >= 9
    fd_number, fiscal_sign = int(fields[3]), fields[4]
    assert fd_number == int(last_fd_before) + 1
    assert re.fullmatch(r"\d{1,10}", fiscal_sign) and int(fiscal_sign) > 0
    assert str(fd_number) in fields[2] and fiscal_sign in fields[2]  # "ФД и ФП"
    assert fields[5] == "1"  # shift number
    assert fields[7:9] == [date6(START), time6(START)]  # frozen clock
    assert link.status()[2] == 0  # no document
    assert link.fn_query(3) == [str(fd_number)]
    tape = "\n".join(stand.control({"op": "tape"})["tape"])
    assert "Сахар" in tape and fiscal_sign in tape
    # the next receipt gets the next number and a different fiscal sign
    link.ok(0x30, SALE_OPEN)
    link.ok(0x42, SALE_ITEM)
    link.ok(0x47, [0, "100.00"])
    second = link.ok(0x31, [0])
    assert int(second[3]) == fd_number + 1 and second[4] != fiscal_sign


def test_requests_without_trailing_fs_are_accepted(stand: Stand) -> None:
    link = ready(stand)
    assert link.ok(0x02, [1], trailing_fs=False)[0] == "1"
    assert link.ok(0x10, [date6(START), time6(START)], trailing_fs=False) == []


# ====================================================================== printer


def test_no_paper(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "paper", "state": "out"})
    link.send(request(0x30, SALE_OPEN, packet_id=0x27))
    assert link.read_frame() == bytes.fromhex("02 27 33 30 30 38 03 32 46")  # §2.6, byte for byte
    assert link.printer() & NO_PAPER
    assert link.status()[2] == 0  # no document was opened
    stand.control({"op": "paper", "state": "ok"})
    assert not link.printer() & NO_PAPER
    assert link.ok(0x30, SALE_OPEN) == []
    assert link.ok(0x32) == []  # cancel
    assert link.status()[2] == 0


def test_cover_open_refuses_printing_with_09(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "cover", "open": True})
    assert link.call(0x30, SALE_OPEN).error == 0x09
    assert link.printer() & (1 << 2)
    stand.control({"op": "cover", "open": False})
    assert link.printer() & (1 << 2) == 0
    assert link.ok(0x30, SALE_OPEN) == []


# ====================================================================== 24 h rule


def test_shift_longer_than_24_hours(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "clock", "advance": 86401})
    _, current, _ = link.status()
    assert current & SHIFT_OPEN and current & SHIFT_OVER_24H
    assert link.call(0x30, SALE_OPEN).error == 0x0A
    assert link.status()[2] == 0
    assert link.ok(0x21, ["Кассир"]) == []  # Z is allowed on the expired shift
    _, current, _ = link.status()
    assert not current & SHIFT_OPEN and not current & SHIFT_OVER_24H
    assert link.ok(0x23, ["Кассир"]) == []  # a new shift works again
    assert link.fn_query(6)[:2] == ["2", "1"]
    assert link.ok(0x30, SALE_OPEN) == []


def test_shift_is_not_expired_one_second_before_24_hours(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "clock", "advance": 86399})
    _, current, _ = link.status()
    assert current & SHIFT_OPEN and not current & SHIFT_OVER_24H
    stand.control({"op": "clock", "advance": 2})
    _, current, _ = link.status()
    assert current & SHIFT_OVER_24H


# ====================================================================== OFD queue


def test_ofd_queue_drains_when_the_ofd_comes_online(stand: Stand) -> None:
    link = open_shift(stand)
    link.ok(0x30, SALE_OPEN)
    link.ok(0x42, SALE_ITEM)
    link.ok(0x47, [0, "100.00"])
    receipt_fd = int(link.ok(0x31, [0])[3])
    status, count, first, day, clock = link.fn_query(7)
    assert int(count) == 2  # the shift-open report and the receipt wait for the OFD
    assert int(first) == receipt_fd - 1
    assert (day, clock) == (date6(START), time6(START))
    assert int(status) & (1 << 1)  # message waiting for the OFD
    assert not int(status) & 1  # OFD offline: no transport connection
    stand.control({"op": "ofd", "online": True})
    status, count, first, day, clock = link.fn_query(7)
    assert int(count) == 0
    assert not int(status) & (1 << 1)


# ====================================================================== protocol errors


def test_bad_crc_is_answered_07_with_the_same_id(stand: Stand) -> None:
    link = stand.link
    frame = bytearray(request(0x00, packet_id=0x2A))
    frame[-1] = ord("1") if frame[-1] != ord("1") else ord("2")
    link.send(bytes(frame))
    answer = parse_answer(link.read_frame())
    assert (answer.packet_id, answer.command, answer.error) == (0x2A, 0x00, 0x07)
    assert answer.raw == b"\x02*0007\x03" + crc(b"*0007\x03")
    assert link.status()[0] == 0  # the link still works


def test_wrong_password_is_answered_06(stand: Stand) -> None:
    answer = stand.link.call(0x00, password=b"XXXX")
    assert answer.error == 0x06 and answer.fields == []


def test_unknown_command_is_answered_02(stand: Stand) -> None:
    answer = stand.link.call(0xFE)
    assert answer.error == 0x02


def test_lower_case_crc_is_accepted(stand: Stand) -> None:
    link = ready(stand)
    frame = request(0x02, [1], packet_id=0x24)
    assert frame[-2:] == b"0A"
    answer = link.exchange_raw(frame[:-2] + b"0a")
    assert answer.error == 0 and answer.fields[0] == "1" and answer.fields[1].startswith("0497")


def test_after_protocol_errors_the_device_still_answers(stand: Stand) -> None:
    link = stand.link
    bad = bytearray(request(0x00, packet_id=0x30))
    bad[-2:] = b"FF" if bad[-2:] != b"FF" else b"00"
    link.send(bytes(bad))
    assert parse_answer(link.read_frame()).error == 0x07
    assert link.call(0x00, password=b"XXXX").error == 0x06
    assert link.call(0xFE).error == 0x02
    link.send(b"\x0a")  # LF: feed a line, no answer (§2.2)
    link.send(b"garbage\xff\xfe")  # not framed: dropped
    link.send(bytes([ENQ]))
    assert link.read_bytes(1) == bytes([ACK])
    fatal, current, _ = link.status()
    assert fatal == 0 and current & NOT_STARTED
    assert ready(stand).info(21) == ["9"]


def test_a_frame_sent_byte_by_byte_and_two_frames_in_one_write(stand: Stand) -> None:
    link = stand.link
    for byte in request(0x00, packet_id=0x31):
        link.send(bytes([byte]))
    assert parse_answer(link.read_frame()).packet_id == 0x31
    link.send(request(0x00, packet_id=0x32) + request(0x04, packet_id=0x33))
    first, second = parse_answer(link.read_frame()), parse_answer(link.read_frame())
    assert (first.packet_id, first.command) == (0x32, 0x00)
    assert (second.packet_id, second.command) == (0x33, 0x04)


def test_a_second_connection_sees_the_same_device(stand: Stand) -> None:
    link = open_shift(stand)
    other = stand.new_link()
    try:
        _, current, _ = other.status()
        assert current & SHIFT_OPEN and not current & NOT_STARTED
    finally:
        other.close()
    assert link.status()[1] & SHIFT_OPEN


def test_power_off_is_silent_and_power_on_needs_start_of_work(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "power", "action": "off"})
    link.send(bytes([ENQ]))
    assert link.silent(0.5)
    link.send(request(0x00, packet_id=0x21))
    assert link.silent(0.5)
    stand.control({"op": "power", "action": "on"})
    _, current, _ = link.status()
    assert current & NOT_STARTED and current & SHIFT_OPEN  # the shift survives a power cycle
    ready(stand)
    assert not link.status()[1] & NOT_STARTED
