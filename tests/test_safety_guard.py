"""The wire-level safety guard: no path sends a destructive request to a register not proven
sacrificial.  The register here is an emulator reached only by its URL — exactly what the stand
sees of a real one — and its own state proves nothing arrived."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from devices.atol import protocol as ap
from devices.emulator.build import Emulator, build_emulator
from devices.pirit import protocol as pp
from harness import open_kkt
from harness.connect import DeviceHandle
from harness.device import TaxSystem
from harness.errors import DeviceError, SafetyRefusal
from harness.safety import Destructive, Unproven
from harness.transport import open_transport

START = datetime(2021, 3, 1, 10, 0, 0)


def _served(model: str) -> Iterator[tuple[Emulator, DeviceHandle]]:
    emulator = build_emulator(model, {"clock": START.isoformat()})
    url = emulator.serve("tcp://127.0.0.1:0")
    try:
        with open_kkt(f"url:{url}#model={model}", timeout_scale=0.3) as handle:
            yield emulator, handle
    finally:
        emulator.close()


@pytest.fixture
def kf() -> Iterator[tuple[Emulator, DeviceHandle]]:
    yield from _served("kf")


@pytest.fixture
def atol() -> Iterator[tuple[Emulator, DeviceHandle]]:
    yield from _served("atol")


def _fingerprint(emulator: Emulator) -> tuple[Any, ...]:
    core = emulator.core
    return (core.fn.registrations_done, core.fn.tax_systems, core.last_fd().number, core.now(), core.clock.fn_seconds())


def _pirit_frame(command: int, fields: list[Any]) -> bytes:
    return pp.encode_request(command, fields, packet_id=0x30)


def _atol_frame(code: int, params: bytes) -> bytes:
    return ap.encode_frame(0x30, ap.encode_add(0x30, ap.encode_command(code, params)))


def _raw(handle: DeviceHandle) -> Any:
    """The driver with its vendor methods (call, internals), not just the device interface."""
    return handle.kkt


FORWARD = START + timedelta(days=400)
PIRIT_PATHS: dict[str, Callable[[DeviceHandle], object]] = {
    "typed reregister": lambda h: h.kkt.reregister(TaxSystem.OSN),
    "typed set_clock forward": lambda h: h.kkt.set_clock(FORWARD),
    "raw call 0x60": lambda h: _raw(h).call(0x60, [0, "", "", 1, 0, "x", "010321", "100000"]),
    "raw call 0x63 reset": lambda h: _raw(h).call(0x63, ["010321", "100000"]),
    "raw call 0x71 fn close": lambda h: _raw(h).call(0x71, ["x"]),
    "driver internals": lambda h: _raw(h)._exchange(0x14, ["010322", "100000"], None),
    "link exchange": lambda h: h.link.write(_pirit_frame(0x60, [0])),
    "transport write": lambda h: h.link.transport.write(_pirit_frame(0x71, ["x"])),
}
ATOL_PATHS: dict[str, Callable[[DeviceHandle], object]] = {
    "typed reregister": lambda h: h.kkt.reregister(TaxSystem.OSN),
    "typed set_clock forward": lambda h: h.kkt.set_clock(FORWARD),
    "raw call A6h": lambda h: _raw(h).call(ap.Cmd.REGISTRATION, b"\x02\x01"),
    "raw call 6Bh reset": lambda h: _raw(h).call(ap.Cmd.TECH_RESET),
    "raw call EDh clock": lambda h: _raw(h).call(ap.Cmd.SET_DATETIME, ap.encode_datetime_params(FORWARD)),
    "transport write": lambda h: h.link.transport.write(_atol_frame(ap.Cmd.CLOSE_ARCHIVE, b"")),
    "v2 frame": lambda h: h.link.transport.write(ap.encode_v2_frame(ap.encode_command(ap.Cmd.TECH_RESET))),
}


@pytest.mark.parametrize("path", PIRIT_PATHS)
def test_no_path_reaches_an_unproven_pirit_register(kf: tuple[Emulator, DeviceHandle], path: str) -> None:
    emulator, handle = kf
    before = _fingerprint(emulator)
    with pytest.raises(SafetyRefusal, match=r"refused on socket://.*url: spec cannot prove .*nothing was sent"):
        PIRIT_PATHS[path](handle)
    assert _fingerprint(emulator) == before
    assert "refused before sending" in handle.trace.render()
    assert handle.kkt.status().initialised  # the link is still good


@pytest.mark.parametrize("path", ATOL_PATHS)
def test_no_path_reaches_an_unproven_atol_register(atol: tuple[Emulator, DeviceHandle], path: str) -> None:
    emulator, handle = atol
    before = _fingerprint(emulator)
    with pytest.raises(SafetyRefusal):
        ATOL_PATHS[path](handle)
    assert _fingerprint(emulator) == before
    assert handle.kkt.status().shift.value == "closed"


def test_a_frame_split_across_writes_is_refused_when_it_completes(kf: tuple[Emulator, DeviceHandle]) -> None:
    emulator, handle = kf
    frame = _pirit_frame(0x60, [0, "", "", 1, 0, "x", "010321", "100000"])
    handle.link.transport.write(frame[:9])  # incomplete: harmless, the register drops it
    with pytest.raises(SafetyRefusal):
        handle.link.transport.write(frame[9:])
    assert emulator.core.fn.registrations_done == 1


def test_every_clock_set_is_refused_on_an_unproven_register(kf: tuple[Emulator, DeviceHandle]) -> None:
    """Backward or a few seconds: the guard cannot know the device's own time, so it refuses them all."""
    emulator, handle = kf
    for value in (START - timedelta(days=1), START + timedelta(seconds=5), datetime.now()):
        with pytest.raises(SafetyRefusal, match=r"clock set \(0x14\)"):
            handle.kkt.set_clock(value)
    assert emulator.core.now() == START


def test_a_transport_opened_without_a_spec_is_guarded_for_every_family() -> None:
    emulator = build_emulator("atol")
    url = emulator.serve("tcp://127.0.0.1:0")
    transport = open_transport(url, timeout=2.0)
    try:
        with pytest.raises(SafetyRefusal, match="opened without a device spec"):
            transport.write(_atol_frame(ap.Cmd.REGISTRATION, b"\x02\x01"))
        with pytest.raises(SafetyRefusal):
            transport.write(_pirit_frame(0x60, [0]))
    finally:
        transport.close()
        emulator.close()


def test_an_emulator_spec_is_not_guarded() -> None:
    with open_kkt("emulator:kf") as handle:
        assert handle.link.transport.guard is None
        assert handle.kkt.reregister(TaxSystem.OSN).number == 2


def test_reads_and_everyday_operations_pass_the_guard(kf: tuple[Emulator, DeviceHandle]) -> None:
    emulator, handle = kf
    kkt = handle.kkt
    kkt.info(), kkt.fn(), kkt.ofd_queue()
    kkt.open_shift()
    kkt.x_report()
    kkt.close_shift()
    with pytest.raises(DeviceError):  # the register itself refuses; the guard has nothing to say
        kkt.cancel_document()
    assert emulator.core.last_fd().number == 3


def test_an_unproven_policy_refuses_every_finding() -> None:
    policy = Unproven("not proven")
    assert policy.refusal(Destructive("clock set", clock=START)) == "not proven"
    assert policy.refusal(Destructive("re-registration")) == "not proven"


class _Counting:
    """A policy that lets everything through and counts what it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def refusal(self, request: Destructive) -> str | None:
        self.asked.append(request.operation)
        return None


@pytest.mark.parametrize("family", ["pirit", "atol"])
def test_a_frame_is_judged_once_even_when_the_tail_keeps_it(family: str) -> None:
    """A stray frame start (АТОЛ: any 0x02 may open a v2 frame) makes the guard keep the bytes
    after it, complete frames included: those were judged when written and must not be judged —
    nor counted against the registrations floor — again on every later write."""
    from harness import families
    from harness.safety import Guard
    from harness.trace import Trace

    scan = families.family(family).scan
    if family == "atol":
        stray, frame = b"\x02\x41", _atol_frame(ap.Cmd.REGISTRATION, b"\x02\x01")
        harmless = ap.encode_frame(0x31, ap.encode_add(0x31, ap.encode_command(ap.Cmd.STATUS, b"")))
    else:
        stray, frame = b"\x02PIRI", _pirit_frame(0x60, [0])
        harmless = _pirit_frame(0x00, [])
    policy = _Counting()
    guard = Guard(scan, policy, where="test")
    trace = Trace(lambda _raw: "")
    guard.check(stray, trace)
    guard.check(frame, trace)
    for _ in range(5):
        guard.check(harmless, trace)
    assert len(policy.asked) == 1, policy.asked
    guard.check(frame, trace)  # the same request sent again is a new request
    assert len(policy.asked) == 2, policy.asked


@pytest.mark.parametrize("command", [0x60, 0x63, 0x71, 0xA0, 0xA4, 0x14])
def test_every_pirit_destructive_command_is_a_finding(command: int) -> None:
    from devices.pirit.safety import scan

    found, _ = scan(_pirit_frame(command, ["x"]))
    assert len(found) == 1 and f"(0x{command:02X})" in found[0].operation
    assert scan(_pirit_frame(0x00, []))[0] == []  # a status request is not


def test_an_atol_v2_frame_followed_by_much_other_traffic_in_one_write_is_still_found() -> None:
    """The v2 scan tries every STX of the write, not only those near its end."""
    from devices.atol.safety import scan

    v2_reset = ap.encode_v2_frame(ap.encode_command(ap.Cmd.TECH_RESET))
    status = ap.encode_frame(0x31, ap.encode_add(0x31, ap.encode_command(ap.Cmd.STATUS, b"")))
    found, _ = scan(v2_reset + status * (2048 // len(status) + 1))
    assert [f.operation for f in found] == ["technological reset (6Bh)"]


def test_at_the_floor_a_second_identical_registration_is_judged_after_much_traffic() -> None:
    """A registration that passes, much other traffic, then the same registration again: the
    second is judged (and refused at the floor), however far the first lies behind."""
    from harness import families
    from harness.safety import Guard, Sacrificial
    from harness.trace import Trace

    policy = Sacrificial("lab:x", True, True, rereg_floor=2, test_destructive=True, identity=None, registrations_left=3)
    guard = Guard(families.family("atol").scan, policy, where="test")
    trace = Trace(lambda _raw: "")
    a6 = _atol_frame(ap.Cmd.REGISTRATION, b"\x02\x01")
    status = ap.encode_frame(0x31, ap.encode_add(0x31, ap.encode_command(ap.Cmd.STATUS, b"")))
    guard.check(b"\x02" + a6, trace)  # a stray STX before it: the tail keeps the frame
    for _ in range(60):
        guard.check(status, trace)
    with pytest.raises(SafetyRefusal, match="2 registrations left on the ФН, the floor is 2"):
        guard.check(a6, trace)
