"""Issue acceptance, black box: `kkt-hil hub` + `kkt-hil emulate kf --hub`, a task scheduled through
the admin API, the emulator clock moved across midnight over the control channel, a shift opened
with raw Pirit frames, the new tax-system mask read back (0x02/23) and the hub saying reregistered."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from .cli_helpers import Proc, start_emulator

TIMEOUT = 10.0


@pytest.fixture
def processes(spawn: Callable[..., Proc]) -> Iterator[list[Proc]]:
    """The processes of a test, each of which must exit with 0 on SIGTERM (``spawn`` kills what is left)."""
    procs: list[Proc] = []
    yield procs
    for proc in procs:
        assert proc.terminate(timeout=TIMEOUT) == 0


def frame(packet_id: int, command: str, *fields: str) -> bytes:
    body = (
        b"PIRI"
        + bytes([packet_id])
        + command.encode()
        + b"".join(f.encode("cp866") + b"\x1c" for f in fields)
        + b"\x03"
    )
    crc = 0
    for byte in body:
        crc ^= byte
    return b"\x02" + body + f"{crc:02X}".encode()


def ask(sock: socket.socket, packet_id: int, command: str, *fields: str) -> tuple[int, list[str]]:
    sock.sendall(frame(packet_id, command, *fields))
    data = b""
    while not (len(data) > 3 and data[-3] == 0x03):
        chunk = sock.recv(4096)
        assert chunk, "emulator closed the connection"
        data += chunk
    assert data[0] == 0x02 and data[1] == packet_id
    error = int(data[4:6], 16)
    fields_out = data[6:-3].split(b"\x1c")[:-1]
    return error, [f.decode("cp866") for f in fields_out]


def http(method: str, url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        return json.loads(resp.read())


def test_black_box_deferred_reregistration(spawn: Callable[..., Proc], processes: list[Proc]) -> None:
    hub = spawn("hub", "--listen", "tcp://127.0.0.1:0")
    processes.append(hub)
    hub_banner = hub.readline()
    assert hub_banner.startswith("listening http://127.0.0.1:")
    hub_url = hub_banner.split()[1]
    emu, port, ctl_port = start_emulator(spawn, "--hub", hub_url, clock="2020-12-31T20:00:00")
    processes.append(emu)
    assert ctl_port is not None

    serial_sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    ctl = socket.create_connection(("127.0.0.1", ctl_port), timeout=TIMEOUT).makefile("rw")
    try:
        assert ask(serial_sock, 0x21, "10", "311220", "200000")[0] == 0  # start of work
        serial = ask(serial_sock, 0x22, "02", "1")[1][1]
        task = http("POST", f"{hub_url}/admin/tasks", {"serial": serial, "tax_systems": ["osn"], "date": "2021-01-01"})
        assert task["task_id"]
        ctl.write(json.dumps({"op": "clock", "advance": 4 * 3600}) + "\n")  # 31.12 20:00 → 01.01 00:00
        ctl.flush()
        assert json.loads(ctl.readline())["now"] == "2021-01-01T00:00:00"
        assert ask(serial_sock, 0x23, "23", "Кассир")[0] == 0  # open shift: re-registers first
        error, fields = ask(serial_sock, 0x24, "02", "23")
        assert error == 0 and fields[1] == "1"  # ОСН
        status = http("GET", f"{hub_url}/admin/devices/{serial}")
        assert status["reregistered"] is True and status["task_received"] is True and status["updated"] is True
    finally:
        serial_sock.close()
        ctl.close()


def test_state_file_survives_a_restart(tmp_path, spawn: Callable[..., Proc]) -> None:
    state = tmp_path / "kf.json"

    def run_once(request: dict | None, clock: str | None) -> dict:
        proc, _, port = start_emulator(spawn, "--state", str(state), clock=clock)
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            ctl = sock.makefile("rw")
            if request:
                ctl.write(json.dumps(request) + "\n")
                ctl.flush()
                assert json.loads(ctl.readline())["ok"]
            ctl.write(json.dumps({"op": "state"}) + "\n")
            ctl.flush()
            snapshot = json.loads(ctl.readline())["state"]
        assert proc.terminate(timeout=TIMEOUT) == 0
        return snapshot

    first = run_once({"op": "clock", "advance": 3 * 86400}, "2020-12-30T10:00:00")
    assert state.exists()
    second = run_once(None, None)  # the register comes back as it was
    assert second["clock"]["rtc"] == first["clock"]["rtc"] == "2021-01-02T10:00:00"
    assert second["fn"]["documents"] == first["fn"]["documents"]
