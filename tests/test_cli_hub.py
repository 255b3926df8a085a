"""Issue acceptance, black box: `kkt-hil hub` + `kkt-hil emulate kf --hub`, a task scheduled through
the admin API, the emulator clock moved across midnight over the control channel, a shift opened
with raw Pirit frames, the new tax-system mask read back (0x02/23) and the hub saying reregistered."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

TIMEOUT = 10.0


def start(*args: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    wanted = 2 if "--control" in args else 1
    buffer = b""
    while buffer.count(b"\n") < wanted:
        if not sel.select(TIMEOUT):
            proc.kill()
            raise AssertionError(f"no banner from kkt-hil {' '.join(args)}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"kkt-hil {' '.join(args)} exited: {proc.stderr.read() if proc.stderr else b''!r}")
        buffer += chunk
    return proc, buffer.decode().splitlines()[:wanted]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


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


def test_black_box_deferred_reregistration(processes: list[subprocess.Popen[bytes]]) -> None:
    hub, (hub_banner,) = start("hub", "--listen", "tcp://127.0.0.1:0")
    processes.append(hub)
    assert hub_banner.startswith("listening http://127.0.0.1:")
    hub_url = hub_banner.split()[1]
    emu, (listening, control) = start(
        "emulate",
        "kf",
        "--listen",
        "tcp://127.0.0.1:0",
        "--control",
        "tcp://127.0.0.1:0",
        "--hub",
        hub_url,
        "--frozen-clock",
        "--clock",
        "2020-12-31T20:00:00",
    )
    processes.append(emu)
    host, port = listening.split("//")[1].split(":")
    ctl_host, ctl_port = control.split("//")[1].split(":")

    serial_sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    ctl = socket.create_connection((ctl_host, int(ctl_port)), timeout=TIMEOUT).makefile("rw")
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


def test_state_file_survives_a_restart(tmp_path, processes: list[subprocess.Popen[bytes]]) -> None:
    state = tmp_path / "kf.json"

    def run_once(request: dict | None, *clock: str) -> dict:
        proc, (_, control) = start(
            "emulate",
            "kf",
            "--listen",
            "tcp://127.0.0.1:0",
            "--control",
            "tcp://127.0.0.1:0",
            "--frozen-clock",
            *clock,
            "--state",
            str(state),
        )
        host, port = control.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            ctl = sock.makefile("rw")
            if request:
                ctl.write(json.dumps(request) + "\n")
                ctl.flush()
                assert json.loads(ctl.readline())["ok"]
            ctl.write(json.dumps({"op": "state"}) + "\n")
            ctl.flush()
            snapshot = json.loads(ctl.readline())["state"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        return snapshot

    first = run_once({"op": "clock", "advance": 3 * 86400}, "--clock", "2020-12-30T10:00:00")
    assert state.exists()
    second = run_once(None)  # the register comes back as it was
    assert second["clock"]["rtc"] == first["clock"]["rtc"] == "2021-01-02T10:00:00"
    assert second["fn"]["documents"] == first["fn"]["documents"]
