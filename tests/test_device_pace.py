"""pace=device: each answer waits the typical time of the commands it answers (a share of the
vendor's timeout), measured here on a stand-in for the wait -- no test sleeps."""

from __future__ import annotations

import threading

import pytest

from devices.atol import protocol as atol
from devices.emulator.build import build_emulator
from devices.emulator.latency import TYPICAL_SHARE, DevicePaced
from devices.pirit import protocol as pirit
from harness import families


class Waits(threading.Event):
    """Records what a paced front-end would wait, instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.waited: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waited.append(timeout)
        return False


def _paced(model: str) -> tuple[DevicePaced, Waits]:
    emulator = build_emulator(model, {"pace": "device"})
    waits = Waits()
    frontend = families.family(emulator.profile.family).make_frontend(emulator.core)
    return DevicePaced(frontend, waits), waits


def test_a_pirit_answer_waits_its_commands_typical_time() -> None:
    front, waits = _paced("kf")
    assert front.feed(pirit.encode_request(0x00, packet_id=0x21))  # status: 1.5 s timeout (§2.3)
    two = pirit.encode_request(0x00, packet_id=0x22) + pirit.encode_request(0x04, packet_id=0x23)
    assert front.feed(two)  # one chunk, two commands: both times, before the answers leave
    assert waits.waited == pytest.approx([TYPICAL_SHARE * 1.5, TYPICAL_SHARE * (1.5 + 10.0)])


def test_an_atol_answer_waits_its_commands_typical_time() -> None:
    front, waits = _paced("atol")
    task = atol.encode_command(atol.Cmd.STATUS)
    assert front.feed(atol.encode_frame(1, atol.encode_add(1, task, atol.AddFlags.NEED_RESULT)))
    assert waits.waited == pytest.approx([TYPICAL_SHARE * atol.answer_timeout(atol.Cmd.STATUS)])
    assert front.feed(atol.encode_frame(2, atol.encode_ack(1)))  # no command ran: no wait
    assert len(waits.waited) == 1


def test_no_answer_no_wait() -> None:
    front, waits = _paced("kf")
    assert front.feed(b"garbage") == b""
    assert waits.waited == []
    assert not front.pending()


def test_pace_is_off_line_or_device() -> None:
    assert build_emulator("kf", {"pace": "device"}).pace == "device"
    with pytest.raises(ValueError, match="off, line or device"):
        build_emulator("kf", {"pace": "fast"})
