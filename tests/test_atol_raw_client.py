"""A raw-frame АТОЛ client written from protocols.md §3.2/§3.3/§3.5 alone (no codec import),
run through a whole sale, a refusal for paper and a Z report against the emulator over a pty,
and against ``kkt-hil emulate atol`` over TCP with paper pulled through the control channel.
"""

from __future__ import annotations

import json
import os
import select
import socket
from collections.abc import Callable
from decimal import Decimal

from devices.atol.emulator import AtolFrontEnd
from devices.emulator.build import build_emulator
from devices.emulator.serve import serve
from harness.device import DocumentKind, PaperState

from .atol_common import START
from .cli_helpers import Proc, start_emulator

# ------------------------------------------------------------------ a raw client, from the reference alone
#
# Everything below builds and parses bytes by hand from protocols.md §3.2/§3.3/§3.5 (no codec import):
# FE | len&7F | len>>7 | id | escaped(data + crc8(id + data)), CRC-8 poly 0x31 init 0xFF.


def _crc8(data: bytes) -> int:
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _frame(packet_id: int, data: bytes) -> bytes:
    body = data + bytes([_crc8(bytes([packet_id]) + data)])
    escaped = body.replace(b"\xfd", b"\xfd\xed").replace(b"\xfe", b"\xfd\xee")
    return bytes([0xFE, len(data) & 0x7F, len(data) >> 7, packet_id]) + escaped


def _frames(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    for chunk in raw.split(b"\xfe")[1:]:
        size = chunk[0] | (chunk[1] << 7)
        body = chunk[3:].replace(b"\xfd\xee", b"\xfe").replace(b"\xfd\xed", b"\xfd")
        assert len(body) == size + 1 and body[-1] == _crc8(chunk[2:3] + body[:-1])
        out.append((chunk[2], body[:-1]))
    return out


class RawClient:
    """ADD with NeedResult, wait for the A6/A7 on ID F0, ACK -- over a real pty."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.packet = 0x10
        self.tid = 0x40

    def exchange(self, data: bytes, expect: int) -> list[tuple[int, bytes]]:
        self.packet += 1
        os.write(self.fd, _frame(self.packet, data))
        raw = b""
        while len(_complete(raw)) < expect:
            ready, _, _ = select.select([self.fd], [], [], 2.0)
            assert ready, f"no answer to {data.hex(' ')} (so far {raw.hex(' ')})"
            raw += os.read(self.fd, 4096)
        return _frames(raw)

    def task(self, command: bytes) -> tuple[int, bytes]:
        """Run password 00 00 + command; return (async status, application answer)."""
        self.tid += 1
        frames = self.exchange(bytes([0xC1, 0x01, self.tid]) + b"\x00\x00" + command, expect=2)
        (sync_id, sync), (async_id, result) = frames
        assert (sync_id, sync) == (self.packet, b"\xa1")  # pending: the result comes asynchronously
        assert async_id == 0xF0 and result[1] == self.tid
        ack = self.exchange(bytes([0xC2, self.tid]), expect=1)
        assert ack[0][0] == self.packet
        return result[0], result[2:]


def _complete(raw: bytes) -> list[bytes]:
    """Frames fully received so far (a frame is complete when its unescaped length is reached)."""
    done = []
    for chunk in raw.split(b"\xfe")[1:]:
        if len(chunk) >= 3:
            size = chunk[0] | (chunk[1] << 7)
            body = chunk[3:].replace(b"\xfd\xee", b"\xfe").replace(b"\xfd\xed", b"\xfd")
            if len(body) >= size + 1:
                done.append(chunk)
    return done


def _bcd(value: int, width: int) -> bytes:
    return bytes.fromhex(f"{value:0{2 * width}d}")


def _open_a_receipt_for_sugar(client: RawClient) -> None:
    """Mode 1 (registration) with the system administrator's password 30, a sale receipt opened
    and one position registered (Сахар, 100.00, quantity 1.000)."""
    assert client.task(b"\x56\x01" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
    assert client.task(b"\x92\x00\x01") == (0xA6, b"\x55\x00\x00")
    name = "Сахар".encode("cp866").ljust(64, b"\x00")
    position = (
        b"\x00" + name + _bcd(10000, 6) + _bcd(1000, 5) + b"\x01\x00" + bytes(6) + b"\x06\x00" + bytes(16) + b"\x00"
    )
    assert client.task(b"\xe6" + position) == (0xA6, b"\x55\x00\x00")


def test_raw_frame_client_from_the_reference() -> None:
    core = build_emulator("atol", {"clock": START.isoformat(), "ofd": "offline"}).core
    server = serve(lambda: AtolFrontEnd(core), "pty")
    fd = os.open(server.url, os.O_RDWR | os.O_NOCTTY)
    try:
        import tty

        tty.setraw(fd)
        client = RawClient(fd)
        assert client.exchange(b"\xc4", expect=1)[0][1] == b"\xa3"  # ABORT
        # 3Fh: 'D' and the 30-byte block
        status, block = client.task(b"\x3f")
        assert status == 0xA6 and block[0] == 0x44 and len(block) == 30
        assert block[3:6] == bytes.fromhex("201230") and block[6:9] == bytes.fromhex("100000")  # BCD date/time
        assert block[14] == 61  # model byte: АТОЛ 30Ф
        assert block[9] & 0b1000 and not block[9] & 0b10  # paper present, shift closed
        assert block[10:14] == bytes.fromhex(core.serial[-8:]) and block[17] == 0  # serial BCD, select mode
        _open_a_receipt_for_sugar(client)  # then cash payment and close
        assert client.task(b"\x99\x00\x01" + _bcd(15000, 5)) == (0xA6, b"\x55\x00" + _bcd(0, 5) + _bcd(5000, 5))
        assert client.task(b"\x4a\x00\x01" + bytes(5)) == (0xA6, b"\x55\x00\x00")
        assert core.last_fd().kind == DocumentKind.RECEIPT and core.last_fd().total == Decimal("100.00")
        # no paper: the next receipt is refused with 103, asynchronously as an error
        core.set_paper(PaperState.OUT)
        assert client.task(b"\x92\x00\x01") == (0xA7, b"\x55\x67\x00")
        core.set_paper(PaperState.OK)
        # Z in mode 3: leave mode 1, enter 3, 5Ah, leave
        assert client.task(b"\x5a") == (0xA7, b"\x55\x66\x00")  # 102: not in mode 1
        assert client.task(b"\x48") == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x56\x03" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x5a") == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x48") == (0xA6, b"\x55\x00\x00")
        assert not core.shift.is_open
        # A4h/30h: phase, ..., FN number (16 ASCII) at 10, last FD number (4 LE) at 26
        status, fn = client.task(b"\xa4\x30")
        assert fn[:2] == b"\x55\x00" and fn[2] == 0x03
        assert fn[2 + 10 : 2 + 26].decode("ascii").strip() == core.fn.serial
        assert int.from_bytes(fn[2 + 26 : 2 + 30], "little") == core.last_fd().number == 4
        # A4h/20h: flags, read started, unsent count (2 LE), first unsent (4 LE), its date-time (5 binary)
        status, ofd = client.task(b"\xa4\x20")
        data = ofd[2:]
        assert int.from_bytes(data[2:4], "little") == 3 and int.from_bytes(data[4:8], "little") == 2
        assert data[8:13] == bytes([20, 12, 30, 10, 0])
    finally:
        os.close(fd)
        server.close()


def test_raw_frame_client_against_kkt_hil_emulate_atol(spawn: Callable[..., Proc]) -> None:
    """Issue acceptance: the reference-only client against `kkt-hil emulate atol` over TCP, with
    paper pulled through the control channel."""
    proc, port, cport = start_emulator(spawn, "--set", "ofd=offline", model="atol", clock=START.isoformat())
    assert cport is not None
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        ctl = socket.create_connection(("127.0.0.1", cport), timeout=5).makefile("rw")

        def lab(request: dict) -> dict:
            ctl.write(json.dumps(request) + "\n")
            ctl.flush()
            reply = json.loads(ctl.readline())
            assert reply["ok"], reply
            return reply

        client = RawClient(sock.fileno())
        assert client.exchange(b"\xc4", expect=1)[0][1] == b"\xa3"
        status, block = client.task(b"\x3f")
        assert status == 0xA6 and block[0] == 0x44 and len(block) == 30 and block[14] == 61
        _open_a_receipt_for_sugar(client)
        assert client.task(b"\x99\x00\x01" + _bcd(10000, 5))[0] == 0xA6
        assert client.task(b"\x4a\x00\x01" + bytes(5)) == (0xA6, b"\x55\x00\x00")
        lab({"op": "paper", "state": "out"})
        assert client.task(b"\x92\x00\x01") == (0xA7, b"\x55\x67\x00")  # 103: no paper
        lab({"op": "paper", "state": "ok"})
        assert client.task(b"\x48") == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x56\x03" + _bcd(30, 4)) == (0xA6, b"\x55\x00\x00")
        assert client.task(b"\x5a") == (0xA6, b"\x55\x00\x00")  # Z in mode 3
        assert lab({"op": "state"})["state"]["shift"]["is_open"] is False
        status, fn = client.task(b"\xa4\x30")
        assert fn[:2] == b"\x55\x00" and fn[2] == 0x03
        status, ofd = client.task(b"\xa4\x20")
        assert int.from_bytes(ofd[2:][2:4], "little") == lab({"op": "state"})["state"]["ofd_queue"]["count"] > 0
        sock.close()
        ctl.close()
    finally:
        assert proc.terminate(timeout=10) == 0
