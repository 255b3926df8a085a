"""A real labgrid lab on loopback for tests/test_labgrid.py: labgrid-coordinator, one
labgrid-exporter, emulated registers behind it, and places made with labgrid-client.

labgrid lives in its own venv (``make setup`` makes ``.venv-labgrid``: its pyserial fork cannot
share the stand's venv).  Without it the tests FAIL, telling to run ``make setup`` — never skip.

The exporter exports:
* ``pty``: an emulator's pty as a ``RawSerialPort`` (the exporter starts ser2net, clients see a
  ``NetworkSerialPort`` with protocol rfc2217);
* ``raw``: an emulator's loopback TCP port as a ``NetworkSerialPort`` with protocol raw, plus a
  ``NetworkPowerPort`` (labgrid's ``simplerest`` model) switching that emulator through
  :class:`PowerRelay`, a small HTTP relay onto its control channel.

Every process is in its own process group, killed with it at the end (ser2net is the exporter's
child); every wait has a deadline; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cli_helpers import Control, Proc

ROOT = Path(__file__).resolve().parents[1]
LABGRID_BIN = ROOT / ".venv-labgrid" / "bin"
CLIENT = LABGRID_BIN / "labgrid-client"
START_TIMEOUT = 30.0  # a coordinator or exporter coming up on a busy 2-core host
CALL_TIMEOUT = 30.0


def require_labgrid() -> Path:
    """The labgrid venv's bin directory, or the test FAILS saying how to make it."""
    missing = [p.name for p in (CLIENT, LABGRID_BIN / "labgrid-coordinator", LABGRID_BIN / "labgrid-exporter")]
    missing = [name for name in missing if not os.access(LABGRID_BIN / name, os.X_OK)]
    if missing:
        pytest.fail(f"labgrid is not installed ({', '.join(missing)} missing in {LABGRID_BIN}): run `make setup`")
    return LABGRID_BIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PowerRelay:
    """``GET /relay/0/1`` (on), ``/relay/0/0`` (off), ``/relay/0`` (state: "1"/"0"): what labgrid's
    ``simplerest`` power backend asks; it switches the emulator through its control channel."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.switched: list[int] = []
        self.on = True
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[2] in ("0", "1"):
                    relay.on = parts[2] == "1"
                    relay.switched.append(int(parts[2]))
                    relay.control.ok({"op": "power", "action": "on" if relay.on else "off"})
                body = b"1" if relay.on else b"0"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LabgridLab:
    """Coordinator + exporter + emulators; ``client(...)`` runs labgrid-client against it."""

    def __init__(self, work: Path) -> None:
        self.bin = require_labgrid()
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.emulators: list[Proc] = []
        self.controls: list[Control] = []
        self.relay: PowerRelay | None = None
        self.raw_control: Control | None = None  # the control channel of the register behind exp/raw
        self.pty_control = ""  # tcp://… of the register behind exp/pty (a run's lab: #control=)
        self.port = free_port()
        self.coordinator = f"127.0.0.1:{self.port}"

    # -------------------------------------------------------------------- processes

    def _start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.work / log).open("wb")
        proc = subprocess.Popen(
            list(args),
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        coordinator = self._start(str(self.bin / "labgrid-coordinator"), "-l", self.coordinator, log="coordinator.log")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                break
            if coordinator.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"labgrid-coordinator did not come up: {self.log('coordinator.log')}")
            time.sleep(0.05)
        pty, pty_control_port = self._emulator("--pty")
        self.pty_control = f"tcp://127.0.0.1:{pty_control_port}"
        raw_url, control_port = self._emulator("--listen", "tcp://127.0.0.1:0")
        self.raw_control = Control(control_port)  # the test's; the relay has its own connection
        self.controls += [self.raw_control, Control(control_port)]
        self.relay = PowerRelay(self.controls[-1])
        config = {
            "pty": {"RawSerialPort": {"port": pty, "speed": 57600}},
            "raw": {
                "NetworkSerialPort": {"host": "127.0.0.1", "port": int(raw_url.rsplit(":", 1)[1]), "protocol": "raw"},
                "NetworkPowerPort": {
                    "model": "simplerest",
                    "host": f"http://127.0.0.1:{self.relay.port}/relay/{{index}}/{{value}}",
                    "index": 0,
                },
            },
        }
        (self.work / "exporter.yaml").write_text(json.dumps(config))  # JSON is YAML
        exporter = self._start(
            str(self.bin / "labgrid-exporter"),
            "-c",
            self.coordinator,
            "--name",
            "exp",
            "--hostname",
            "127.0.0.1",
            "exporter.yaml",
            log="exporter.log",
        )
        while "exp/raw/NetworkPowerPort" not in self.client("resources", check=False).stdout:
            if exporter.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"labgrid-exporter did not export: {self.log('exporter.log')}")
            time.sleep(0.1)

    def _emulator(self, *listen: str) -> tuple[str, int]:
        """``kkt-hil emulate kf`` (real clock, as a register has): its URL and control port."""
        proc = Proc(["emulate", "kf", *listen, "--control", "tcp://127.0.0.1:0"], cwd=self.work)
        self.emulators.append(proc)
        url = proc.readline().removeprefix("listening ")
        return url, int(proc.readline().rsplit(":", 1)[1])

    def log(self, name: str) -> str:
        return (self.work / name).read_text("utf-8", "replace")[-3000:]

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        for control in self.controls:
            control.close()
        for proc in reversed(self.procs):  # SIGTERM first: the exporter stops its ser2net
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group it started (ser2net of the exporter)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5.0)
        for emulator in self.emulators:
            emulator.kill()

    # -------------------------------------------------------------------- labgrid-client

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a kkt-hil run in this lab gets."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LG_", "KKT_HIL_LABGRID"))}
        return {**env, "LG_COORDINATOR": self.coordinator, "KKT_HIL_LABGRID_CLIENT": str(CLIENT), **extra}

    def client(self, *args: str, place: str | None = None, user: str | None = None, check: bool = True) -> Any:
        env = self.env(**({"LG_USERNAME": user} if user else {}))
        command = [str(CLIENT), "-x", self.coordinator, *(["-p", place] if place else []), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=CALL_TIMEOUT, env=env)
        if check:
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        return done

    def make_place(self, name: str, group: str, **tags: str) -> None:
        self.client("create", place=name)
        self.client("add-match", f"exp/{group}/*", place=name)
        if tags:
            self.client("set-tags", *(f"{k}={v}" for k, v in tags.items()), place=name)

    def holder(self, place: str) -> str | None:
        for line in self.client("show", place=place).stdout.splitlines():
            if line.startswith("  acquired: "):
                value = line.split(": ", 1)[1].strip()
                return None if value == "None" else value
        raise AssertionError(f"no 'acquired:' line for {place}")

    def held_places(self) -> list[str]:
        """The places acquired now (``labgrid-client places --acquired``)."""
        return self.client("places", "--acquired").stdout.split()

    def wait_holder(self, place: str, wanted: str | None, timeout: float) -> float:
        """Seconds until ``place``'s holder is ``wanted`` (AssertionError after ``timeout``)."""
        start = time.monotonic()
        while (holder := self.holder(place)) != wanted:
            if time.monotonic() - start > timeout:
                raise AssertionError(f"{place} still held by {holder!r} after {timeout} s (wanted {wanted!r})")
            time.sleep(0.1)
        return time.monotonic() - start


@contextlib.contextmanager
def labgrid_lab(work: Path) -> Iterator[LabgridLab]:
    lab = LabgridLab(work)
    try:
        lab.start()
        yield lab
    finally:
        lab.close()
