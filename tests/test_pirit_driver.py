"""Pirit specifics of the driver against the emulator (codes, status bits, start of work), and
malformed input to the emulator.  What every family does is in tests/contract."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.emulator.build import build_emulator
from devices.pirit import protocol as p
from devices.pirit.driver import PiritDriver
from devices.pirit.emulator import PiritFrontEnd
from harness import open_kkt
from harness.device import Item, PaperState, ShiftState, TaxSystem
from harness.errors import (
    LinkTimeout,
    NoPaper,
    ShiftClosed,
    ShiftExpired,
    TaxSystemNotRegistered,
    UsageError,
)

from .driver_rigs import driver_rig

START = datetime(2020, 12, 30, 10, 0, 0)
SUGAR = Item("Сахар", Decimal("100.00"))


rig = driver_rig("kf", PiritDriver, start=START, timeout_scale=0.5)


def test_pirit_codes_of_the_refusals(rig) -> None:
    """The interface-level kinds are the contract (tests/contract); these are the Pirit answers."""
    kkt, core = rig
    with pytest.raises(ShiftClosed) as closed:
        kkt.sell([SUGAR])
    assert (closed.value.code, closed.value.extended) == (0x01, 20)
    kkt.open_shift()
    with pytest.raises(TaxSystemNotRegistered) as tax:
        kkt.sell([SUGAR], tax_system=TaxSystem.OSN)
    assert (tax.value.code, tax.value.extended) == (0x59, None)  # the ФН refuses (default)
    core.set_paper(PaperState.OUT)
    with pytest.raises(NoPaper) as paper:
        kkt.sell([SUGAR])
    assert paper.value.code == 0x08


def test_tax_mismatch_code_setting_answers_as_a_parameter_error() -> None:
    with open_kkt("emulator:kf?tax_mismatch_code=param", timeout_scale=0.5) as handle:
        handle.kkt.open_shift()
        with pytest.raises(TaxSystemNotRegistered) as tax:
            handle.kkt.sell([SUGAR], tax_system=TaxSystem.OSN)
        assert (tax.value.code, tax.value.extended) == (0x03, 43)


@pytest.mark.parametrize("value", ["0x59", "FN", ""])
def test_tax_mismatch_code_takes_only_its_values(value: str) -> None:
    with pytest.raises(UsageError, match="tax_mismatch_code takes one of fn, param"):
        with open_kkt(f"emulator:kf?tax_mismatch_code={value}"):
            pass


def test_pirit_code_of_an_expired_shift(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    core.lab_clock_advance(timedelta(hours=24, minutes=1).total_seconds())
    assert kkt.status().shift is ShiftState.EXPIRED
    with pytest.raises(ShiftExpired) as expired:
        kkt.sell([SUGAR])
    assert expired.value.code == 0x0A


def test_pending_printout_is_document_state_8(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(NoPaper):
        kkt.sell([SUGAR])
    assert kkt.status().raw["document"] >> 4 == 8  # §2.5.1: document state 8, printout pending
    core.set_paper(PaperState.OK)
    assert kkt.continue_print() is not None and kkt.status().raw["document"] == 0


def test_power_off_is_a_link_timeout_and_power_on_needs_start_of_work(rig) -> None:
    kkt, core = rig
    core.set_power(False)
    with pytest.raises(LinkTimeout):
        kkt.status()
    core.set_power(True)
    assert not kkt.status().initialised
    kkt.connect()
    assert kkt.status().initialised


# ------------------------------------------------------------------ malformed input to the emulator


def _status_request(packet_id: int = 0x21) -> bytes:
    return p.encode_request(0x00, packet_id=packet_id)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_kill_the_emulator(noise: bytes) -> None:
    core = build_emulator("kf").core
    front = PiritFrontEnd(core)
    front.feed(noise)
    front.reset()  # what the inter-byte timeout does to an unfinished frame
    answer = p.decode_response(front.feed(_status_request()).lstrip(bytes([p.ACK])))
    assert answer.packet_id == 0x21 and answer.error == 0


@settings(max_examples=100)
@given(st.integers(min_value=1, max_value=10))
def test_truncated_frame_then_resync_on_stx(cut: int) -> None:
    front = PiritFrontEnd(build_emulator("kf").core)
    frame = _status_request(0x22)
    assert front.feed(frame[: len(frame) - cut]) == b""
    answer = p.decode_response(front.feed(_status_request(0x23)))
    assert answer.packet_id == 0x23 and answer.error == 0


def test_bad_crc_wrong_password_unknown_command_bad_parameter() -> None:
    front = PiritFrontEnd(build_emulator("kf").core)
    good = _status_request(0x24)
    bad_crc = good[:-2] + (b"00" if good[-2:] != b"00" else b"11")
    assert p.decode_response(front.feed(bad_crc)).error == 0x07
    assert p.decode_response(front.feed(p.encode_request(0x00, packet_id=0x25, password=b"XXXX"))).error == 0x06
    assert p.decode_response(front.feed(p.encode_request(0xFE, packet_id=0x26))).error == 0x02
    front.feed(p.encode_request(0x10, ["011220", "090000"], packet_id=0x27))
    bad = p.decode_response(front.feed(p.encode_request(0x02, ["abc"], packet_id=0x28)))
    assert bad.error == 0x03
    ext = p.decode_response(front.feed(p.encode_request(0x06, [1], packet_id=0x29)))
    assert ext.fields[0] == "1"
    assert front.feed(bytes([p.ENQ])) == bytes([p.ACK])
    assert front.feed(bytes([p.LF])) == b""
    lower = good[:-2] + good[-2:].lower()
    assert p.decode_response(front.feed(lower)).error == 0
