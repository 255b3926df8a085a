"""The emulator's control channel under hostile lines: each gets one clear one-line JSON error
(``{"ok": false, "error": ...}``) and the connection stays open for the next line — over
loopback TCP and through ``handle_line`` directly."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.emulator import control
from devices.emulator.build import build_emulator
from devices.emulator.control import ControlHandler, ControlServer
from harness import bounded_json

TIMEOUT = 5.0
OPS = b'{"op": "ops"}\n'


@pytest.fixture
def handler() -> ControlHandler:
    return build_emulator("kf").handler


@pytest.fixture(scope="module")
def server() -> Iterator[ControlServer]:
    running = ControlServer(build_emulator("kf").handler, "tcp://127.0.0.1:0")
    yield running
    running.close()


@pytest.fixture
def channel(server: ControlServer) -> Iterator[socket.socket]:
    host, port = server.url.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        yield sock


class Lines:
    """Reply lines off a socket; every recv waits at most the socket timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def next(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the control channel closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply


def _is_error(reply: dict, fragment: str) -> None:
    assert reply["ok"] is False, reply
    error = reply["error"]
    assert isinstance(error, str) and "\n" not in error and len(error) <= bounded_json.MAX_MESSAGE_CHARS
    assert fragment in error, error


HOSTILE = [
    (b"1" * 5000, "a number of 5000 characters"),
    (b'{"op": "clock", "advance": ' + b"9" * 5000 + b"}", "a number of 5000 characters"),
    (b'{"op": "clock", "advance": 1e999}', "out of range"),
    (b'{"op": "clock", "advance": NaN}', "NaN is not JSON"),
    (b"[" * 100000, "nested deeper than"),
    (b'{"a":' * 50 + b"1" + b"}" * 50, "nested deeper than"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"op": "paper", "state": "\xc3"}', "not UTF-8"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"state"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"{not json", "bad JSON"),
    (b'{"op": "paper", "state": ' + b"[" * 20 + b"]" * 20 + b"}", "paper takes"),
    (b'{"op": "nope' + b"x" * 10000 + b'"}', "unknown op"),
]


@pytest.mark.parametrize(("line", "fragment"), HOSTILE)
def test_each_hostile_line_gets_one_error_line_and_the_connection_stays_open(
    channel: socket.socket, line: bytes, fragment: str
) -> None:
    lines = Lines(channel)
    channel.sendall(line + b"\n" + OPS)
    _is_error(lines.next(), fragment)
    assert lines.next()["ok"] is True  # the next line is served on the same connection


def test_a_huge_line_gets_one_error_and_the_next_line_is_served(channel: socket.socket) -> None:
    lines = Lines(channel)
    channel.sendall(b'{"op": "' + b"x" * (2 * control.MAX_LINE_BYTES) + b'"}\n' + OPS)
    _is_error(lines.next(), f"line longer than {control.MAX_LINE_BYTES} bytes")
    assert lines.next()["ok"] is True  # exactly one reply for the long line: the stream stays in step
    channel.sendall(b'{"op": "cover", "open": false}\n')
    assert lines.next() == {"ok": True, "cover_open": False}


def test_a_lone_surrogate_in_a_request_still_gets_a_utf8_reply(channel: socket.socket) -> None:
    lines = Lines(channel)
    channel.sendall(b'{"op": "paper", "state": "\\ud800"}\n' + OPS)
    _is_error(lines.next(), "paper takes")
    assert lines.next()["ok"] is True


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_any_line_gets_exactly_one_json_reply_line(handler: ControlHandler, line: bytes) -> None:
    out = handler.handle_line(line)
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    reply = json.loads(out)
    assert isinstance(reply["ok"], bool)
    if not reply["ok"]:
        assert "\n" not in reply["error"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(10**18), 10**18)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=30,
    )
)
def test_any_json_value_as_a_request_gets_a_reply(handler: ControlHandler, value: object) -> None:
    reply = json.loads(handler.handle_line(json.dumps(value).encode()))
    assert isinstance(reply["ok"], bool)
    if not isinstance(value, dict):
        assert reply["ok"] is False
        assert reply["error"] == "request must be a JSON object" or "nested deeper" in reply["error"]


def test_bounded_loads_limits() -> None:
    assert bounded_json.loads(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    nested = "[" * bounded_json.MAX_DEPTH + "]" * bounded_json.MAX_DEPTH
    assert bounded_json.loads(nested) is not None  # exactly at the limit
    with pytest.raises(bounded_json.BadJson, match="nested deeper"):
        bounded_json.loads("[" + nested + "]")
    with pytest.raises(bounded_json.BadJson, match="Infinity is not JSON"):
        bounded_json.loads("-Infinity")
    assert bounded_json.loads("9" * bounded_json.MAX_NUMBER_CHARS) == int("9" * bounded_json.MAX_NUMBER_CHARS)
    assert bounded_json.one_line("a\nb") == "a…" and len(bounded_json.one_line("x" * 1000)) == 300


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ({"op": "clock", "set": "9999-12-31T23:59:00"}, "clock set takes a time in 2000..2099"),
        ({"op": "clock", "set": "0001-01-01T00:00:00"}, "clock set takes a time in 2000..2099"),
        ({"op": "clock", "advance": 90 * 365 * 86400}, "clock advance would pass 2099"),
    ],
)
def test_a_clock_the_wire_cannot_carry_is_refused(handler: ControlHandler, request_: dict, fragment: str) -> None:
    """Both protocols date documents with two-digit years: a clock outside 2000..2099 would leave
    the register unusable (АТОЛ answered every 3Fh with error 19)."""

    def now() -> datetime:
        return datetime.fromisoformat(json.loads(handler.handle_line(b'{"op": "clock"}'))["now"])

    before = now()
    reply = json.loads(handler.handle_line(json.dumps(request_).encode()))
    assert reply["ok"] is False and fragment in reply["error"]
    assert abs((now() - before).total_seconds()) < 60  # the clock did not move
