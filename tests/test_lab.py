"""harness.lab: the Lab scenarios use for faults and time.

:class:`EmulatorLab` over an emulator's control channel (in process and over loopback TCP) must
change the fiscal core exactly as asked; a refused control request is a :class:`HarnessError`
(never a skip); :class:`UnavailableLab` refuses every request with :class:`LabUnavailable`
carrying its reason (the plugin turns that into a skip with the reason).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from devices.emulator.build import DEFAULT_START, Emulator, build_emulator
from devices.emulator.control import ControlClient, ControlServer
from devices.emulator.core import CoreError, FiscalCore
from harness.device import JournalEntry, PaperState
from harness.errors import HarnessError, KktError, LabUnavailable
from harness.lab import EmulatorLab, Lab, UnavailableLab

IO_TIMEOUT = 5.0


@pytest.fixture
def emulator() -> Emulator:
    return build_emulator("kf")


@pytest.fixture
def core(emulator: Emulator) -> FiscalCore:
    return emulator.core


@pytest.fixture
def lab(emulator: Emulator) -> EmulatorLab:
    return EmulatorLab(emulator.control, description="emulator kf")


def ready(core: FiscalCore) -> None:
    """Do the "start of work" a driver does after power-up, so the core accepts documents."""
    core.start_work(core.now())
    assert core.initialised


def journal_events(core: FiscalCore) -> list[str]:
    return [e.event for e in core.journal]


# ------------------------------------------------------------------------------------------
# EmulatorLab changes the core


def test_description(lab: EmulatorLab) -> None:
    assert lab.description == "emulator kf"
    assert EmulatorLab(lambda req: {"ok": True}).description == "emulator"


@pytest.mark.parametrize("state", [PaperState.OUT, PaperState.NEAR_END, "out", "near_end"])
def test_paper_state(lab: EmulatorLab, core: FiscalCore, state: PaperState | str) -> None:
    expected = state.value if isinstance(state, PaperState) else state
    assert core.printer.paper is PaperState.OK
    lab.paper(state)
    assert core.printer.paper.value == expected
    assert core.printer.lines_left is None
    lab.paper(PaperState.OK)
    assert core.printer.paper is PaperState.OK


def test_paper_runs_out_after_lines(lab: EmulatorLab, core: FiscalCore) -> None:
    lab.paper(PaperState.OK, after_lines=3)
    assert core.printer.paper is PaperState.OK
    assert core.printer.lines_left == 3
    ready(core)
    with pytest.raises(CoreError, match="paper ran out"):
        core.open_shift("Иванов")  # the shift-open report is longer than 3 lines
    assert core.printer.paper.value == "out"
    assert core.pending is not None
    assert len(core.tape) == 3


def test_paper_after_zero_lines_is_out_now(lab: EmulatorLab, core: FiscalCore) -> None:
    lab.paper("ok", after_lines=0)
    assert core.printer.paper is PaperState.OUT


def test_paper_back_resumes_an_interrupted_shift_report(lab: EmulatorLab, core: FiscalCore) -> None:
    ready(core)
    lab.paper("ok", after_lines=2)
    with pytest.raises(CoreError, match="paper ran out"):
        core.open_shift("Иванов")
    assert core.pending is not None
    lab.paper("ok")
    assert core.pending is None
    assert core.tape[-1].endswith("✂")


def test_cover(lab: EmulatorLab, core: FiscalCore) -> None:
    lab.cover(True)
    assert core.printer.cover_open is True
    assert journal_events(core)[-1] == "cover"
    lab.cover(False)
    assert core.printer.cover_open is False


def test_ofd_link_drains_the_queue(lab: EmulatorLab, core: FiscalCore) -> None:
    ready(core)
    assert core.ofd_online is True  # a shop's register reaches its OFD
    lab.ofd(False)
    core.open_shift("Иванов")
    assert len(core.unsent()) == 1
    lab.ofd(True)
    assert core.ofd_online is True
    assert core.unsent() == []
    assert "OFD receipt" in journal_events(core)
    lab.ofd(False)
    assert core.ofd_online is False
    core.x_report("Иванов")  # no new document: the queue stays empty
    assert core.unsent() == []


def test_now_reads_the_device_clock(lab: EmulatorLab, core: FiscalCore) -> None:
    assert lab.now() == core.now() == DEFAULT_START


def test_clock_set_moves_rtc_and_fn_timer(lab: EmulatorLab, core: FiscalCore) -> None:
    fn_before = core.clock.fn_seconds()
    target = datetime(2020, 12, 31, 23, 50, 0)
    lab.clock_set(target)
    assert core.now() == target
    assert lab.now() == target
    assert core.clock.fn_seconds() == pytest.approx(fn_before + (target - DEFAULT_START).total_seconds())
    assert journal_events(core)[-1] == "lab clock set"


def test_clock_set_drops_microseconds(lab: EmulatorLab, core: FiscalCore) -> None:
    lab.clock_set(datetime(2021, 1, 2, 3, 4, 5, 678901))
    assert core.now() == datetime(2021, 1, 2, 3, 4, 5)


def test_clock_set_rtc_only_leaves_the_fn_timer(lab: EmulatorLab, core: FiscalCore) -> None:
    fn_before = core.clock.fn_seconds()
    lab.clock_set(DEFAULT_START + timedelta(hours=2), rtc_only=True)
    assert core.now() == DEFAULT_START + timedelta(hours=2)
    assert core.clock.fn_seconds() == fn_before


@pytest.mark.parametrize(
    ("kwargs", "seconds"),
    [
        ({"hours": 25}, 25 * 3600),
        ({"minutes": 90}, 90 * 60),
        ({"days": 2}, 2 * 86400),
        ({"seconds": 30}, 30),
        ({"seconds": 1, "minutes": 1, "hours": 1, "days": 1}, 1 + 60 + 3600 + 86400),
    ],
)
def test_clock_advance(lab: EmulatorLab, core: FiscalCore, kwargs: dict[str, float], seconds: int) -> None:
    fn_before = core.clock.fn_seconds()
    lab.clock_advance(**kwargs)
    assert core.now() == DEFAULT_START + timedelta(seconds=seconds)
    assert core.clock.fn_seconds() == pytest.approx(fn_before + seconds)


def test_clock_advance_expires_an_open_shift(lab: EmulatorLab, core: FiscalCore) -> None:
    ready(core)
    core.open_shift("Иванов")
    lab.clock_advance(hours=23, minutes=59)
    assert not core.shift_expired()
    lab.clock_advance(minutes=2)
    assert core.shift_expired()
    assert lab.state()["shift"]["expired"] is True


def test_power(lab: EmulatorLab, core: FiscalCore) -> None:
    ready(core)
    lab.power("off")
    assert core.powered is False
    assert journal_events(core)[-1] == "power off"
    lab.power("on")
    assert core.powered is True
    assert core.initialised is False  # "start of work" needed again after power-up
    ready(core)
    lab.power("cycle")
    assert core.powered is True and core.initialised is False
    assert journal_events(core)[-2:] == ["power off", "power on"]


def test_firmware(lab: EmulatorLab, core: FiscalCore) -> None:
    assert core.firmware == "2.26.0"
    lab.firmware("2.25.0")
    assert core.firmware == "2.25.0"
    assert lab.state()["firmware"] == "2.25.0"


def test_defects(lab: EmulatorLab, core: FiscalCore) -> None:
    assert lab.defects(enable=["ignore_24h_rule"]) == ["ignore_24h_rule"]
    assert core.defects == {"ignore_24h_rule"}
    assert lab.defects(enable=["reprint_creates_new_document"], disable=["ignore_24h_rule"]) == [
        "reprint_creates_new_document"
    ]
    assert core.defects == {"reprint_creates_new_document"}
    assert lab.defects() == ["reprint_creates_new_document"]


def test_journal(lab: EmulatorLab, core: FiscalCore) -> None:
    ready(core)
    core.open_shift("Иванов")
    lab.cover(True)
    journal = lab.journal()
    assert all(isinstance(e, JournalEntry) for e in journal)
    assert [(e.at, e.event, e.detail) for e in journal] == [(e.at, e.event, e.detail) for e in core.journal]
    assert [e.event for e in journal][:1] == ["power on"]
    assert "shift opened" in [e.event for e in journal]
    assert journal[-1].event == "cover" and journal[-1].detail == "open"
    assert isinstance(journal[-1].at, datetime)


def test_tape(lab: EmulatorLab, core: FiscalCore) -> None:
    assert lab.tape() == []
    ready(core)
    core.open_shift("Иванов")
    tape = lab.tape()
    assert tape == core.tape
    assert any("ОТКРЫТИИ СМЕНЫ 1" in line for line in tape)
    assert any("Иванов" in line for line in tape)
    tape.append("not on the device")
    assert "not on the device" not in core.tape  # a copy, not the device's own list


def test_state(lab: EmulatorLab, core: FiscalCore) -> None:
    state = lab.state()
    assert state["model"] == "kf"
    assert state["serial"] == core.serial
    assert state["firmware"] == "2.26.0"
    assert state["printer"] == {"paper": "ok", "cover_open": False, "lines_left": None}
    assert state["shift"]["is_open"] is False
    lab.paper("out")
    lab.cover(True)
    state = lab.state()
    assert state["printer"]["paper"] == "out"
    assert state["printer"]["cover_open"] is True


# ------------------------------------------------------------------------------------------
# control failures are HarnessError (our request or configuration is wrong), never a skip

FAILURES: list[tuple[str, Callable[[EmulatorLab], Any], str]] = [
    ("paper-bad-state", lambda lab: lab.paper("sideways"), "paper"),
    ("paper-out-after-lines", lambda lab: lab.paper("out", after_lines=3), "after_lines"),
    ("paper-negative-lines", lambda lab: lab.paper("ok", after_lines=-1), "after_lines"),
    ("cover-not-bool", lambda lab: lab.cover("yes"), "cover"),  # type: ignore[arg-type]  # a wrong type on purpose
    ("ofd-not-bool", lambda lab: lab.ofd(1), "ofd"),  # type: ignore[arg-type]  # a wrong type on purpose
    ("clock-backwards", lambda lab: lab.clock_advance(hours=-1), "non-negative"),
    ("power-bad-action", lambda lab: lab.power("explode"), "power"),
    ("firmware-bad-version", lambda lab: lab.firmware("two.six"), "bad firmware version"),
    ("defects-unknown", lambda lab: lab.defects(enable=["nosuch"]), "nosuch"),
]


@pytest.mark.parametrize(("call", "needle"), [(c, n) for _, c, n in FAILURES], ids=[i for i, _, _ in FAILURES])
def test_control_failure_raises_harness_error(
    lab: EmulatorLab, core: FiscalCore, call: Callable[[EmulatorLab], Any], needle: str
) -> None:
    before = core.snapshot()
    with pytest.raises(HarnessError, match="emulator control") as info:
        call(lab)
    assert needle in str(info.value)
    assert not isinstance(info.value, LabUnavailable)  # a broken request must not become a skip
    assert core.snapshot() == before  # nothing half-applied


def test_control_failure_without_message_shows_the_reply() -> None:
    lab = EmulatorLab(lambda request: {"ok": False})
    with pytest.raises(HarnessError, match=r"emulator control 'tape' failed: \{'ok': False\}"):
        lab.tape()


def test_requests_sent_to_the_control_channel() -> None:
    sent: list[dict[str, Any]] = []

    def control(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        return {"ok": True, "now": "2021-01-01T00:00:00", "defects": [], "journal": [], "tape": [], "state": {}}

    lab = EmulatorLab(control)
    lab.paper(PaperState.OK, after_lines=5)
    lab.paper("near_end")
    lab.cover(False)
    lab.ofd(True)
    lab.clock_set(datetime(2021, 1, 1, 12, 0, 0, 5))
    lab.clock_advance(seconds=1, minutes=2)
    lab.power("cycle")
    lab.firmware("1.2.3")
    assert sent == [
        {"op": "paper", "state": "ok", "after_lines": 5},
        {"op": "paper", "state": "near_end"},
        {"op": "cover", "open": False},
        {"op": "ofd", "online": True},
        {"op": "clock", "set": "2021-01-01T12:00:00", "rtc_only": False},
        {"op": "clock", "advance": 121.0},
        {"op": "power", "action": "cycle"},
        {"op": "firmware", "version": "1.2.3"},
    ]


# ------------------------------------------------------------------------------------------
# the same lab over the out-of-process control channel (loopback TCP)


@pytest.fixture
def tcp_lab(emulator: Emulator) -> Iterator[EmulatorLab]:
    server = ControlServer(emulator.handler, "tcp://127.0.0.1:0")
    client = ControlClient(server.url, timeout=IO_TIMEOUT)
    try:
        yield EmulatorLab(client.request, description=f"emulator control {server.url}")
    finally:
        client.close()
        server.close()


def test_lab_over_tcp_control(tcp_lab: EmulatorLab, core: FiscalCore) -> None:
    assert tcp_lab.description.startswith("emulator control tcp://127.0.0.1:")
    tcp_lab.paper("out")
    tcp_lab.cover(True)
    tcp_lab.clock_advance(hours=1)
    tcp_lab.firmware("2.25.0")
    assert core.printer.paper is PaperState.OUT and core.printer.cover_open is True
    assert core.now() == DEFAULT_START + timedelta(hours=1)
    assert tcp_lab.now() == core.now()
    assert core.firmware == "2.25.0"
    assert tcp_lab.state()["printer"]["paper"] == "out"
    assert [e.event for e in tcp_lab.journal()] == journal_events(core)
    with pytest.raises(HarnessError, match="power"):
        tcp_lab.power("explode")
    tcp_lab.power("cycle")  # the channel survives a refused request
    assert core.powered is True


def test_dead_control_channel_is_a_stand_error(dead_control_url: str) -> None:
    client = ControlClient(dead_control_url, timeout=IO_TIMEOUT)
    try:
        lab = EmulatorLab(client.request)
        with pytest.raises(KktError):
            lab.paper("out")
    finally:
        client.close()


# ------------------------------------------------------------------------------------------
# UnavailableLab: every request is refused with the reason

REASON = "no bench power supply or paper control on bench 7"
UNAVAILABLE_CALLS: dict[str, Callable[[Any], Any]] = {
    "paper": lambda lab: lab.paper("out"),
    "cover": lambda lab: lab.cover(True),
    "ofd": lambda lab: lab.ofd(False),
    "now": lambda lab: lab.now(),
    "clock_set": lambda lab: lab.clock_set(datetime(2021, 1, 1)),
    "clock_advance": lambda lab: lab.clock_advance(hours=24),
    "power": lambda lab: lab.power("cycle"),
    "firmware": lambda lab: lab.firmware("2.25.0"),
    "zone": lambda lab: lab.zone(7),
    "setting": lambda lab: lab.setting("auto_open_shift", "1"),
    "journal": lambda lab: lab.journal(),
    "tape": lambda lab: lab.tape(),
    "state": lambda lab: lab.state(),
    "defects": lambda lab: lab.defects(["ignore_24h_rule"]),
    "fn_setup": lambda lab: lab.fn_setup(registrations_done=30),
}


def lab_protocol_methods() -> set[str]:
    return {name for name, value in inspect.getmembers(Lab) if not name.startswith("_") and callable(value)}


def test_unavailable_calls_cover_the_lab_protocol() -> None:
    assert set(UNAVAILABLE_CALLS) == lab_protocol_methods()


@pytest.mark.parametrize("method", sorted(UNAVAILABLE_CALLS))
def test_unavailable_lab_refuses_with_the_reason(method: str) -> None:
    lab = UnavailableLab(REASON, description="real device, no instruments")
    assert lab.description == "real device, no instruments"
    assert lab.reason == REASON
    with pytest.raises(LabUnavailable) as info:
        UNAVAILABLE_CALLS[method](lab)
    message = str(info.value)
    assert message.endswith(f": {REASON}")
    assert len(message) > len(REASON) + 2  # says what could not be done, too
    assert isinstance(info.value, HarnessError)


def test_unavailable_lab_messages_say_what_was_refused() -> None:
    lab = UnavailableLab(REASON)
    assert lab.description == "no lab control"
    messages = {}
    for method, call in UNAVAILABLE_CALLS.items():
        with pytest.raises(LabUnavailable) as info:
            call(lab)
        messages[method] = str(info.value).removesuffix(f": {REASON}")
    assert "бумаг" in messages["paper"]
    assert "крышк" in messages["cover"]
    assert "ОФД" in messages["ofd"]
    assert "питани" in messages["power"]
    assert "прошивк" in messages["firmware"]
    assert "журнал" in messages["journal"]
    assert "ленту" in messages["tape"]
    assert len(set(messages.values())) == len(messages)  # each refusal names its own operation


def test_emulator_lab_implements_the_lab_protocol(lab: EmulatorLab) -> None:
    for name in lab_protocol_methods():
        assert callable(getattr(lab, name)), name


def test_unavailable_lab_refuses_defects_too() -> None:
    lab = UnavailableLab(REASON)
    with pytest.raises(LabUnavailable, match=REASON):
        lab.defects(enable=["ignore_24h_rule"])
