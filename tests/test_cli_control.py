"""The control channel of ``kkt-hil emulate --control``, driven with a line-oriented JSON client
written from DESIGN.md: the state snapshot, every op (paper, cover, OFD, clock, power, firmware,
defects, journal, tape), bad requests refused with ``ok: false`` on a connection that stays
usable, and several requests or clients at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from .cli_helpers import KNOWN_DEFECTS, START_CLOCK, Control, Proc, enq, start_emulator


@pytest.fixture
def emulator(spawn: Callable[..., Proc]) -> Iterator[tuple[Proc, int, Control]]:
    proc, port, control_port = start_emulator(spawn)
    assert control_port is not None
    control = Control(control_port)
    try:
        yield proc, port, control
    finally:
        control.close()


# ================================================================================ control channel


def test_control_state_is_a_full_snapshot(emulator) -> None:
    _, _, control = emulator
    state = control.state()
    assert state["model"] == "kf"
    assert state["serial"].startswith("0497")
    assert state["clock"]["rtc"] == START_CLOCK
    assert state["clock"]["flowing"] is False
    assert state["printer"]["paper"] == "ok" and state["printer"]["cover_open"] is False
    assert state["ofd_online"] is True
    assert state["powered"] is True
    assert state["shift"]["is_open"] is False
    assert state["fn"]["serial"] and state["fn"]["phase"] == 3
    # a frozen clock does not move between two reads
    assert control.state()["clock"]["rtc"] == START_CLOCK


@pytest.mark.parametrize("paper", ["near_end", "out", "ok"])
def test_control_paper(emulator, paper: str) -> None:
    _, _, control = emulator
    if paper == "ok":
        control.ok({"op": "paper", "state": "out"})
        assert control.state()["printer"]["paper"] == "out"
    reply = control.ok({"op": "paper", "state": paper})
    assert reply["paper"] == paper
    assert control.state()["printer"]["paper"] == paper


def test_control_cover(emulator) -> None:
    _, _, control = emulator
    assert control.ok({"op": "cover", "open": True})["cover_open"] is True
    assert control.state()["printer"]["cover_open"] is True
    control.ok({"op": "cover", "open": False})
    assert control.state()["printer"]["cover_open"] is False


def test_control_ofd(emulator) -> None:
    _, _, control = emulator
    reply = control.ok({"op": "ofd", "online": True})
    assert reply["online"] is True and reply["unsent"] == 0
    assert control.state()["ofd_online"] is True
    control.ok({"op": "ofd", "online": False})
    assert control.state()["ofd_online"] is False


def test_control_clock_set_and_advance(emulator) -> None:
    _, _, control = emulator
    fn_before = control.state()["clock"]["fn_seconds"]
    reply = control.ok({"op": "clock", "set": "2020-12-31T23:50:00"})
    assert reply["now"] == "2020-12-31T23:50:00"
    state = control.state()
    assert state["clock"]["rtc"] == "2020-12-31T23:50:00"
    # "also moves the ФН timer": by the same 37 h 50 min
    moved = (datetime(2020, 12, 31, 23, 50) - datetime(2020, 12, 30, 10, 0)).total_seconds()
    assert state["clock"]["fn_seconds"] == pytest.approx(fn_before + moved, abs=1)

    reply = control.ok({"op": "clock", "advance": 3600})
    assert reply["now"] == "2021-01-01T00:50:00"
    state = control.state()
    assert state["clock"]["rtc"] == "2021-01-01T00:50:00"
    assert state["clock"]["fn_seconds"] == pytest.approx(fn_before + moved + 3600, abs=1)

    # a bare {"op": "clock"} reads the clock without moving it
    assert control.ok({"op": "clock"})["now"] == "2021-01-01T00:50:00"


def test_control_power(emulator) -> None:
    _, port, control = emulator
    assert control.ok({"op": "power", "action": "off"})["powered"] is False
    assert control.state()["powered"] is False
    assert enq(port) == b""  # a powered-off register answers nothing
    assert control.ok({"op": "power", "action": "on"})["powered"] is True
    state = control.state()
    assert state["powered"] is True and state["initialised"] is False
    assert enq(port) == b"\x06"

    events_before = [e["event"] for e in control.ok({"op": "journal"})["journal"]]
    assert control.ok({"op": "power", "action": "cycle"})["powered"] is True
    events = [e["event"] for e in control.ok({"op": "journal"})["journal"]]
    assert events[len(events_before) :] == ["power off", "power on"]
    assert control.state()["powered"] is True


def test_control_firmware(emulator) -> None:
    _, _, control = emulator
    assert control.state()["firmware"] == "2.26.0"
    assert control.ok({"op": "firmware", "version": "2.25.0"})["firmware"] == "2.25.0"
    assert control.state()["firmware"] == "2.25.0"


def test_control_defects(emulator) -> None:
    _, _, control = emulator
    reply = control.ok({"op": "defects", "enable": ["ignore_24h_rule"]})
    assert reply["defects"] == ["ignore_24h_rule"]
    assert sorted(reply["known"]) == list(KNOWN_DEFECTS)
    assert "ignore_24h_rule" in KNOWN_DEFECTS
    assert control.state()["defects"] == ["ignore_24h_rule"]
    control.ok({"op": "defects", "disable": ["ignore_24h_rule"]})
    assert control.state()["defects"] == []


def test_control_journal_and_tape(emulator) -> None:
    _, _, control = emulator
    journal = control.ok({"op": "journal"})["journal"]
    assert isinstance(journal, list) and journal
    assert all({"at", "event", "detail"} <= set(entry) for entry in journal)
    control.ok({"op": "paper", "state": "near_end"})
    last = control.ok({"op": "journal"})["journal"][-1]
    assert last["event"] == "paper" and last["detail"] == "near_end"
    assert last["at"] == START_CLOCK  # journal time is device (virtual) time
    tape = control.ok({"op": "tape"})["tape"]
    assert tape == []  # nothing printed yet (the wire sale flow is in test_pirit_blackbox.py)


def test_control_lists_its_ops(emulator) -> None:
    _, _, control = emulator
    ops = set(control.ok({"op": "ops"})["ops"])
    assert {"state", "paper", "cover", "ofd", "clock", "power", "firmware", "defects", "journal", "tape"} <= ops


BAD_REQUESTS: list[tuple[str, bytes]] = [
    ("unknown op", b'{"op": "explode"}\n'),
    ("no op", b'{"paper": "out"}\n'),
    ("paper wet", b'{"op": "paper", "state": "wet"}\n'),
    ("paper missing state", b'{"op": "paper"}\n'),
    ("cover not a bool", b'{"op": "cover", "open": "yes"}\n'),
    ("ofd not a bool", b'{"op": "ofd", "online": 1}\n'),
    ("clock set tomorrow", b'{"op": "clock", "set": "tomorrow"}\n'),
    ("clock set with zone", b'{"op": "clock", "set": "2020-12-31T23:50:00+03:00"}\n'),
    ("clock advance -5", b'{"op": "clock", "advance": -5}\n'),
    ("clock advance text", b'{"op": "clock", "advance": "3600"}\n'),
    ("clock advance bool", b'{"op": "clock", "advance": true}\n'),
    ("clock bad key", b'{"op": "clock", "jump": 5}\n'),
    ("power reboot", b'{"op": "power", "action": "reboot"}\n'),
    ("firmware not a string", b'{"op": "firmware", "version": 2.25}\n'),
    ("firmware not a version", b'{"op": "firmware", "version": "two"}\n'),
    ("defects unknown", b'{"op": "defects", "enable": ["nosuch"]}\n'),
    ("defects not a list", b'{"op": "defects", "enable": "ignore_24h_rule"}\n'),
    ("bad JSON", b'{"op": "state"\n'),
    ("not JSON at all", b"paper out\n"),
    ("JSON array", b'["state"]\n'),
    ("JSON string", b'"state"\n'),
    ("not UTF-8", b'{"op": "\xff\xfe"}\n'),
]


@pytest.mark.parametrize("request_line", [line for _, line in BAD_REQUESTS], ids=[name for name, _ in BAD_REQUESTS])
def test_control_bad_request_gets_ok_false_and_the_connection_stays_usable(emulator, request_line: bytes) -> None:
    _, _, control = emulator
    before = control.state()
    reply = control.send_raw(request_line)
    assert reply["ok"] is False
    assert isinstance(reply["error"], str) and reply["error"].strip()
    after = control.state()  # same connection still answers
    # a refused request changes nothing
    for key in ("printer", "clock", "powered", "firmware", "defects", "ofd_online"):
        assert after[key] == before[key], key


def test_control_error_messages_say_what_is_wrong(emulator) -> None:
    _, _, control = emulator
    assert "explode" in control({"op": "explode"})["error"]
    assert "wet" in control({"op": "paper", "state": "wet"})["error"]
    assert "tomorrow" in control({"op": "clock", "set": "tomorrow"})["error"]
    assert "nosuch" in control({"op": "defects", "enable": ["nosuch"]})["error"]
    assert "JSON" in control.send_raw(b"{oops\n")["error"]


def test_control_many_requests_on_one_connection_and_blank_lines(emulator) -> None:
    _, _, control = emulator
    # two requests in one segment, a blank line in between (blank lines get no reply)
    control.sock.sendall(b'{"op": "paper", "state": "out"}\n\n{"op": "state"}\n')
    first = control.read_reply()
    second = control.read_reply()
    assert first == {"ok": True, "paper": "out"}
    assert second["ok"] is True and second["state"]["printer"]["paper"] == "out"


def test_control_two_clients_see_the_same_device(emulator) -> None:
    _, _, control = emulator
    other = Control(control.sock.getpeername()[1])
    try:
        other.ok({"op": "cover", "open": True})
        assert control.state()["printer"]["cover_open"] is True
    finally:
        other.close()
