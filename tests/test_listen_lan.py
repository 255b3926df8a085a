"""Listening beyond loopback only when the user asks for it: ``kkt-hil emulate`` (device port and
``--control``), ``kkt-hil hub`` and ``kkt-hil ofd`` take ``--allow-lan``; then the address is
bound and ONE warning line on stderr says that nothing authenticates who connects.  Without
``--allow-lan`` a non-loopback address is one usage line, exit 2, and nothing is bound.  Also
the other start-up refusals of harness/cli/serve.py: ``--hub`` that is not a URL, ``--state``
that cannot be a state file.

Network discipline: the servers listen on 0.0.0.0 (the wildcard, which includes loopback) and the
tests connect only to 127.0.0.1; a LAN address is only ever handed to the CLI to be refused.
Every read has a deadline (tests/cli_helpers.py); nothing sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.control import ControlServer
from harness.families import cloud
from harness.ofd.protocol import MessageReader, ReceiptMessage, encode_document
from harness.ofd.server import OfdServer

from .cli_helpers import (
    IO_TIMEOUT,
    Control,
    Proc,
    assert_clean_failure,
    enq,
    one_line,
    run_cli,
    run_recording_binds,
)

WILDCARD_WIRE = re.compile(r"^listening socket://0\.0\.0\.0:(\d+)$")
WILDCARD_CONTROL = re.compile(r"^control tcp://0\.0\.0\.0:(\d+)$")
FROZEN = ["--frozen-clock", "--clock", "2020-12-30T10:00:00"]


def warning(proc: Proc) -> str:
    """The one warning line on stderr (AssertionError if there is not exactly one line)."""
    line = one_line(proc.stderr())
    assert line.startswith("kkt-hil: warning: ") and "no authentication" in line, line
    assert "anyone on that network can" in line, line
    return line


# ================================================================================ kkt-hil emulate


def test_emulate_on_the_wildcard_serves_loopback_and_warns_once(spawn) -> None:
    proc = spawn("emulate", "kf", "--listen", "tcp://0.0.0.0:0", "--control", "tcp://0.0.0.0:0", "--allow-lan", *FROZEN)
    wire = WILDCARD_WIRE.match(proc.readline())
    control = WILDCARD_CONTROL.match(proc.readline())
    assert wire and control
    assert enq(int(wire.group(1))) == b"\x06"  # reached over 127.0.0.1
    client = Control(int(control.group(1)))
    try:
        assert client.state()["model"] == "kf"
    finally:
        client.close()
    line = warning(proc)
    assert f"socket://0.0.0.0:{wire.group(1)}" in line and f"tcp://0.0.0.0:{control.group(1)}" in line
    assert "control channel" in line and "drive the register" in line
    assert proc.terminate() == 0
    assert warning(proc) == line  # still one line after the exit


def test_emulate_with_only_the_control_channel_on_the_network(spawn) -> None:
    proc = spawn(
        "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://0.0.0.0:0", "--allow-lan", *FROZEN
    )
    assert proc.readline().startswith("listening socket://127.0.0.1:")
    control = WILDCARD_CONTROL.match(proc.readline())
    assert control
    client = Control(int(control.group(1)))
    try:
        assert client.ok({"op": "paper", "state": "out"})["paper"] == "out"
    finally:
        client.close()
    line = warning(proc)
    assert "the register's control channel" in line and "port (" not in line
    assert proc.terminate() == 0


def test_emulate_with_only_the_device_port_on_the_network(spawn) -> None:
    proc = spawn("emulate", "kf", "--listen", "tcp://0.0.0.0:0", "--allow-lan", *FROZEN)
    wire = WILDCARD_WIRE.match(proc.readline())
    assert wire and enq(int(wire.group(1))) == b"\x06"
    line = warning(proc)
    assert "the register's port" in line and "control channel" not in line
    assert proc.terminate() == 0


def test_allow_lan_on_loopback_addresses_changes_nothing(spawn) -> None:
    proc = spawn(
        "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0", "--allow-lan", *FROZEN
    )
    assert proc.readline().startswith("listening socket://127.0.0.1:")
    assert proc.readline().startswith("control tcp://127.0.0.1:")
    assert proc.terminate() == 0
    assert proc.stderr() == ""


# ================================================================================ hub and ofd


def test_hub_on_the_wildcard_answers_its_admin_api_and_warns_once(spawn) -> None:
    proc = spawn("hub", "--listen", "tcp://0.0.0.0:0", "--allow-lan")
    match = re.fullmatch(r"listening http://0\.0\.0\.0:(\d+)", proc.readline())
    assert match
    connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=IO_TIMEOUT)
    try:
        connection.request("GET", "/admin/devices")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"ok": True, "devices": []}
    finally:
        connection.close()
    line = warning(proc)
    assert "admin API" in line and f"http://0.0.0.0:{match.group(1)}" in line and "drive the hub" in line
    assert proc.terminate() == 0


def test_ofd_on_the_wildcard_acknowledges_and_warns_once(spawn) -> None:
    proc = spawn("ofd", "--listen", "tcp://0.0.0.0:0", "--allow-lan")
    match = re.fullmatch(r"listening tcp://0\.0\.0\.0:(\d+)", proc.readline())
    assert match
    with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=IO_TIMEOUT) as conn:
        conn.sendall(encode_document("9999078900000001", 7, "1234567890", 1, datetime(2021, 1, 1, 10, 0)))
        reader = MessageReader()
        answers: list[object] = []
        while not answers:
            chunk = conn.recv(4096)  # the socket's timeout bounds each wait
            assert chunk, "the OFD hung up without a receipt"
            answers = list(reader.feed(chunk))
    assert isinstance(answers[0], ReceiptMessage) and answers[0].number == 7
    assert "emulated OFD" in warning(proc)
    assert proc.terminate() == 0


# ================================================================================ refusals


@pytest.mark.parametrize(
    ("args", "option", "host"),
    [
        (["emulate", "kf", "--listen", "tcp://0.0.0.0:0"], "--listen", "0.0.0.0"),
        (["emulate", "kf", "--listen", "tcp://192.168.1.10:0"], "--listen", "192.168.1.10"),
        (["emulate", "kf", "--control", "tcp://0.0.0.0:0"], "--control", "0.0.0.0"),
        (["hub", "--listen", "tcp://0.0.0.0:8080"], "--listen", "0.0.0.0"),
        (["ofd", "--listen", "tcp://10.0.0.1:0"], "--listen", "10.0.0.1"),
    ],
    ids=["emulate-wildcard", "emulate-lan", "emulate-control", "hub", "ofd"],
)
def test_a_network_address_without_allow_lan_is_one_line_and_binds_nothing(
    tmp_path: Path, args: list[str], option: str, host: str
) -> None:
    result, binds = run_recording_binds(tmp_path, *args)
    line = assert_clean_failure(result, 2)
    assert line.startswith(f"kkt-hil: {option}: {host} is not a loopback address") and "--allow-lan" in line
    assert result.stdout == ""
    assert binds == []


def test_the_hub_refuses_an_ipv6_address_even_with_allow_lan(tmp_path: Path) -> None:
    result, binds = run_recording_binds(tmp_path, "hub", "--listen", "tcp://[::]:0", "--allow-lan")
    assert "IPv4" in assert_clean_failure(result, 2)
    assert binds == []


@pytest.mark.parametrize(
    "url", ["notaurl", "127.0.0.1:8080", "ftp://127.0.0.1:21", "http://", "http://127.0.0.1:99999"]
)
def test_a_hub_that_is_not_a_url_is_one_line(tmp_path: Path, url: str) -> None:
    result, binds = run_recording_binds(tmp_path, "emulate", "kf", "--hub", url)
    line = assert_clean_failure(result, 2)
    assert "--hub takes the hub's address like http://127.0.0.1:PORT" in line and repr(url) in line
    assert result.stdout == "" and binds == []


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state.fifo"
    os.mkfifo(path)
    yield path
    path.unlink()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/nonexistent/dir/s.json", "directory /nonexistent/dir does not exist"),
        ("", "--state takes a file path"),
        ("/dev/zero", "is not a regular file"),
    ],
    ids=["missing-directory", "empty", "device"],
)
def test_a_state_path_that_cannot_be_a_state_file_is_one_line_before_anything_listens(
    tmp_path: Path, path: str, message: str
) -> None:
    result, binds = run_recording_binds(tmp_path, "emulate", "kf", "--state", path)
    assert message in assert_clean_failure(result, 2)
    assert result.stdout == "" and binds == []


def test_a_fifo_as_the_state_file_is_refused_without_blocking(tmp_path: Path, fifo: Path) -> None:
    result = run_cli("emulate", "kf", "--state", str(fifo), cwd=tmp_path)
    assert "is not a regular file" in assert_clean_failure(result, 2)


# ================================================================================ the servers in process


def test_every_server_refuses_the_wildcard_unless_allowed() -> None:
    emulator = build_emulator("kf")
    try:
        with pytest.raises(ValueError, match="loopback"):
            emulator.serve("tcp://0.0.0.0:0")
        with pytest.raises(ValueError, match="loopback"):
            ControlServer(emulator.handler, "tcp://0.0.0.0:0")
        with pytest.raises(ValueError, match="loopback"):
            OfdServer("0.0.0.0", 0)
        with pytest.raises(ValueError, match="loopback"):
            cloud("dreamkas").serve_hub("0.0.0.0", 0)
    finally:
        emulator.close()


def test_every_server_listens_on_the_wildcard_when_allowed() -> None:
    emulator = build_emulator("kf")
    try:
        wire = emulator.serve("tcp://0.0.0.0:0", allow_lan=True)
        control = emulator.serve_control("tcp://0.0.0.0:0", allow_lan=True)
        assert wire.startswith("socket://0.0.0.0:") and control.startswith("tcp://0.0.0.0:")
        assert enq(int(wire.rsplit(":", 1)[1])) == b"\x06"
        client = Control(int(control.rsplit(":", 1)[1]))
        try:
            assert client.state()["model"] == "kf"
        finally:
            client.close()
        with OfdServer("0.0.0.0", 0, allow_lan=True) as ofd:
            socket.create_connection(("127.0.0.1", ofd.port), timeout=IO_TIMEOUT).close()
        hub = cloud("dreamkas").serve_hub("0.0.0.0", 0, allow_lan=True)
        try:
            assert hub.url.startswith("http://0.0.0.0:")
            socket.create_connection(("127.0.0.1", hub.port), timeout=IO_TIMEOUT).close()
        finally:
            hub.close()
    finally:
        emulator.close()
