"""The fiscal core's rules (domain-rules.md), checked on the core directly, no wire."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.core import CoreError, FiscalCore, PoweredOff
from devices.emulator.profiles import FN_KINDS, profile
from harness.device import DocumentKind, FnWarning, PaperState, PaymentKind, ReceiptKind, TaxSystem
from harness.errors import ErrorKind

START = datetime(2020, 12, 30, 10, 0, 0)


def make(model: str = "kf", **settings: str) -> FiscalCore:
    core = build_emulator(model, {"clock": START.isoformat(), **settings}).core
    core.start_work(core.now())
    return core


def sale(core: FiscalCore, amount: str = "100.00", tax: TaxSystem | None = None):
    core.open_receipt(ReceiptKind.SALE, tax, "Кассир")
    core.add_item("Сахар", Decimal(1), Decimal(amount))
    core.pay(PaymentKind.CASH, Decimal(amount))
    return core.close_receipt()


def kind_of(call) -> ErrorKind:
    with pytest.raises(CoreError) as info:
        call()
    return info.value.kind


def test_fresh_register_needs_start_of_work() -> None:
    core = build_emulator("kf", {"clock": START.isoformat()}).core
    assert kind_of(lambda: core.open_shift("x")) is ErrorKind.NOT_INITIALISED
    core.start_work(START + timedelta(minutes=5))
    assert core.now() == START + timedelta(minutes=5)  # within 8 min: synced to the host
    core.open_shift("x")


def test_start_of_work_far_clock_initialises_but_keeps_device_time() -> None:
    core = build_emulator("kf", {"clock": START.isoformat()}).core
    assert kind_of(lambda: core.start_work(START + timedelta(hours=1))) is ErrorKind.CLOCK_MISMATCH
    assert core.initialised and core.now() == START


def test_start_of_work_before_last_document_blocks() -> None:
    core = build_emulator("kf", {"clock": START.isoformat()}).core
    assert kind_of(lambda: core.start_work(START - timedelta(days=365))) is ErrorKind.CLOCK_BEHIND_LAST_DOCUMENT
    assert not core.initialised


def test_document_numbers_signs_and_ofd_queue() -> None:
    core = make(ofd="offline")  # online by default; the queue is seen with the OFD link down
    opened = core.open_shift("x")
    receipt = sale(core)
    assert receipt.number == opened.number + 1
    assert receipt.kind is DocumentKind.RECEIPT and receipt.fiscal_sign.isdigit()
    assert [d.number for d in core.unsent()] == [opened.number, receipt.number]
    core.set_ofd(True)
    assert core.unsent() == []


def test_shift_crossing_midnight_is_one_shift() -> None:
    core = make(clock="2020-12-31T23:50:00")
    core.open_shift("x")
    core.lab_clock_advance(15 * 60)  # 00:05 on 01.01
    receipt = sale(core)
    closing = core.close_shift("x")
    assert receipt.shift_number == closing.shift_number == 1
    assert closing.at == datetime(2021, 1, 1, 0, 5)


@pytest.mark.parametrize(
    ("elapsed", "inclusive", "expired"),
    [
        (timedelta(hours=23, minutes=59), False, False),
        (timedelta(hours=24), False, False),
        (timedelta(hours=24), True, True),
        (timedelta(hours=24, minutes=1), False, True),
    ],
)
def test_24h_rule_on_the_fn_timer(elapsed: timedelta, inclusive: bool, expired: bool) -> None:
    core = make(shift_limit_inclusive="1" if inclusive else "0")
    core.open_shift("x")
    core.lab_clock_advance(elapsed.total_seconds())
    assert core.shift_expired() is expired
    if expired:
        assert kind_of(lambda: sale(core)) is ErrorKind.SHIFT_EXPIRED
        core.close_shift("x")  # closing an expired shift is allowed
        core.open_shift("x")
    else:
        sale(core)


def test_rtc_jump_inside_a_shift_is_caught_by_the_fn_timer() -> None:
    core = make()
    core.open_shift("x")
    core.lab_clock_set(START + timedelta(hours=30), rtc_only=True)  # RTC jumps, ФН timer does not
    assert not core.shift_expired()
    assert kind_of(lambda: sale(core)) is ErrorKind.FN_TIMER_MISMATCH


def test_ignore_24h_rule_defect() -> None:
    core = make(defects="ignore_24h_rule")
    core.open_shift("x")
    core.lab_clock_advance(25 * 3600)
    sale(core)  # the defect accepts what a correct register refuses


def test_clock_setting_rules() -> None:
    core = make()
    core.open_shift("x")
    assert kind_of(lambda: core.set_rtc(START + timedelta(hours=1))) is ErrorKind.SHIFT_OPEN
    core.close_shift("x")
    assert kind_of(lambda: core.set_rtc(START - timedelta(days=1))) is ErrorKind.CLOCK_BEHIND_LAST_DOCUMENT
    ahead = START + timedelta(days=2)
    assert kind_of(lambda: core.set_rtc(ahead)) is ErrorKind.CLOCK_CONFIRM_REQUIRED
    core.set_rtc(ahead)  # the repeat confirms
    assert core.now() == ahead


def test_ofd_30_day_block_and_its_lifting() -> None:
    core = make(ofd="offline")
    core.open_shift("x")
    sale(core)
    core.close_shift("x")
    core.lab_clock_advance(timedelta(days=29, hours=23).total_seconds())
    core.open_shift("x")
    sale(core)  # 29 d 23 h: still allowed
    core.close_shift("x")
    core.lab_clock_advance(timedelta(hours=1, minutes=1).total_seconds())
    assert core.ofd_blocked() and FnWarning.OFD_TIMEOUT in core.fn_warnings()
    assert kind_of(lambda: core.open_shift("x")) is ErrorKind.OFD_TIMEOUT
    core.set_ofd(True)
    assert not core.ofd_blocked()
    core.open_shift("x")


def test_receipt_tax_system_must_be_registered() -> None:
    core = make()
    core.open_shift("x")
    assert (
        kind_of(lambda: core.open_receipt(ReceiptKind.SALE, TaxSystem.OSN, "x")) is ErrorKind.TAX_SYSTEM_NOT_REGISTERED
    )
    doc = sale(core)  # none given: the first registered one
    assert doc.tax_system == TaxSystem.USN_INCOME


def test_reregistration_rules() -> None:
    core = make()
    done = core.fn.registrations_done
    core.open_shift("x")
    assert kind_of(lambda: core.reregister(TaxSystem.OSN)) is ErrorKind.SHIFT_OPEN
    core.close_shift("x")
    assert kind_of(lambda: core.reregister(TaxSystem.USN_INCOME)) is ErrorKind.NO_CHANGES
    doc = core.reregister(TaxSystem.PATENT)
    assert doc.kind is DocumentKind.REREGISTRATION and doc.reason == 0x80
    assert core.fn.tax_systems == TaxSystem.PATENT and core.fn.registrations_done == done + 1


def test_envd_is_rejected_from_2021() -> None:
    core = make(clock="2020-12-31T10:00:00")
    core.reregister(TaxSystem.ENVD)  # still legal on 31.12.2020
    core.lab_clock_advance(24 * 3600)
    assert kind_of(lambda: core.reregister(TaxSystem.ENVD | TaxSystem.OSN)) is ErrorKind.BAD_PARAMETER


def test_36_month_fn_moved_to_osn_gets_the_short_term() -> None:
    core = make(fn="fn36")
    long_term = core.fn_valid_until()
    core.reregister(TaxSystem.OSN)
    assert core.fn_valid_until() < long_term
    assert (core.fn_valid_until() - core.fn.activated_at.date()).days == 410


def test_registration_limit() -> None:
    core = make()
    core.fn.registrations_done = FN_KINDS["fn36"].max_registrations
    assert kind_of(lambda: core.reregister(TaxSystem.OSN)) is ErrorKind.REGISTRATION_LIMIT
    assert core.fn.tax_systems == TaxSystem.USN_INCOME


def test_unsent_queue_blocks_reregistration_where_the_profile_says() -> None:
    start = make("start", ofd="offline")
    start.open_shift("x")
    start.close_shift("x")
    assert kind_of(lambda: start.reregister(TaxSystem.OSN)) is ErrorKind.UNSENT_DOCUMENTS
    kf = make("kf", ofd="offline")
    kf.open_shift("x")
    kf.close_shift("x")
    assert kf.unsent()
    kf.reregister(TaxSystem.OSN)


def test_paper_out_mid_receipt_keeps_document_and_survives_power_cycle() -> None:
    core = make()
    core.open_shift("x")
    core.set_paper(PaperState.OK, after_lines=2)
    with pytest.raises(CoreError) as info:
        sale(core)
    assert info.value.kind is ErrorKind.NO_PAPER
    number = core.last_fd().number
    assert core.pending is not None and core.pending.document == number
    assert kind_of(core.cancel_receipt) is ErrorKind.PENDING_PRINT
    core.set_power(False)
    with pytest.raises(PoweredOff):
        core.open_shift("x")
    core.set_power(True)
    core.start_work(core.now())
    assert core.pending is not None  # the pending printout survives a power cycle
    core.set_paper(PaperState.OK)
    assert core.close_receipt().number == number
    assert core.last_fd().number == number and core.pending is None


def test_lose_pending_print_defect() -> None:
    core = make(defects="lose_pending_print_on_power_cycle")
    core.open_shift("x")
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(CoreError):
        sale(core)
    core.set_power(False)
    core.set_power(True)
    assert core.pending is None


def test_paper_out_mid_z_repeat_prints_only() -> None:
    core = make()
    core.open_shift("x")
    core.set_paper(PaperState.OK, after_lines=2)
    assert kind_of(lambda: core.close_shift("x")) is ErrorKind.NO_PAPER
    number = core.last_fd().number
    assert core.shift.close_interrupted and not core.shift.is_open
    core.set_paper(PaperState.OK)
    assert core.close_shift("x").number == number
    assert core.last_fd().number == number and not core.shift.close_interrupted


def test_paper_out_mid_reregistration_report_counts_once() -> None:
    core = make()
    done = core.fn.registrations_done
    core.set_paper(PaperState.OK, after_lines=2)
    assert kind_of(lambda: core.reregister(TaxSystem.OSN)) is ErrorKind.NO_PAPER
    assert core.fn.tax_systems == TaxSystem.OSN and core.fn.registrations_done == done + 1
    assert kind_of(lambda: core.reregister(TaxSystem.OSN)) in (ErrorKind.PENDING_PRINT, ErrorKind.NO_CHANGES)
    core.set_paper(PaperState.OK)  # the report finishes printing by itself
    assert core.pending is None
    assert kind_of(lambda: core.reregister(TaxSystem.OSN)) is ErrorKind.NO_CHANGES
    assert core.fn.registrations_done == done + 1


def test_x_report_never_touches_the_fn() -> None:
    core = make()
    core.open_shift("x")
    before = core.last_fd().number
    core.x_report("x")
    core.set_paper(PaperState.OUT)
    assert kind_of(lambda: core.x_report("x")) is ErrorKind.NO_PAPER
    assert core.last_fd().number == before


def test_near_end_only_warns() -> None:
    core = make()
    core.open_shift("x")
    core.set_paper(PaperState.NEAR_END)
    sale(core)


def test_snapshot_is_json_ready() -> None:
    import json

    core = make(ofd="offline")
    core.open_shift("x")
    snap = json.loads(json.dumps(core.snapshot()))
    assert snap["shift"]["is_open"] is True
    assert snap["fn"]["documents"][-1]["kind"] == DocumentKind.SHIFT_OPEN
    assert snap["ofd_queue"]["count"] == 1


def test_profiles_know_the_dreamkas_thresholds() -> None:
    assert profile("kf").rereg_min_firmware == "2.26.0"
    assert profile("dkf").rereg_min_firmware == "1.12.0"
    assert profile("start").rereg_min_firmware == "10.50.1"
    with pytest.raises(ValueError, match="unknown model"):
        profile("nosuch")


def test_snapshot_restores_into_a_fresh_core() -> None:
    import json

    from devices.emulator.core import restore_core

    core = make()
    core.open_shift("x")
    sale(core)
    core.set_paper(PaperState.OK, after_lines=1)
    with pytest.raises(CoreError):
        sale(core)
    snap = json.loads(json.dumps(core.snapshot()))
    fresh = build_emulator("kf").core
    restore_core(fresh, snap)
    assert fresh.snapshot() | {"initialised": None} == snap | {"initialised": None}
    fresh.start_work(fresh.now())
    fresh.set_paper(PaperState.OK)
    assert fresh.close_receipt().number == core.last_fd().number  # the pending print survived the restart
    with pytest.raises(ValueError, match="model"):
        restore_core(build_emulator("dkf").core, snap)


def test_lose_pending_print_defect_after_interrupted_z_does_not_wedge_the_register() -> None:
    core = make(defects="lose_pending_print_on_power_cycle")
    core.open_shift("x")
    core.set_paper(PaperState.OK, after_lines=2)
    assert kind_of(lambda: core.close_shift("x")) is ErrorKind.NO_PAPER
    core.set_power(False)
    core.set_power(True)
    core.start_work(core.now())
    core.set_paper(PaperState.OK)
    core.open_shift("x")  # the defect lost the printout, but the register still works


def test_control_channel_never_raises() -> None:
    handler = build_emulator("kf").handler
    for request in (
        {"op": "clock", "advance": float("inf")},
        {"op": "clock", "advance": 1e300},
        {"op": "clock", "set": "2020-12-31T23:00:00", "rtc_only": "false"},
        {"op": "defects", "enable": [1]},
        {"op": "paper", "state": "out", "after_lines": 3},
    ):
        reply = handler.handle(request)
        assert reply["ok"] is False and reply["error"], request
    assert handler.handle({"op": "clock", "set": "9999-12-31T23:00:00"})["ok"] is False  # two-digit years
    assert handler.handle({"op": "clock", "set": "2099-12-31T23:00:00"})["ok"] is True
    assert handler.handle({"op": "clock", "advance": 7200})["ok"] is False  # would pass 2099


def test_restore_rejects_garbage_cleanly() -> None:
    from devices.emulator.core import restore_core

    core = build_emulator("kf").core
    bads: list[Any] = [[], {"model": "kf"}, {**core.snapshot(), "cash": "abc"}]
    for bad in bads:
        with pytest.raises(ValueError):
            restore_core(core, bad)
