"""The seeded defects of the fiscal core and of fisGo, one by one: the correct emulator behaves
as domain-rules.md says, and the defect changes exactly that behaviour.  Also the lab's ``zone`` op."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from devices.dreamkas.fisgo import FisGo
from devices.emulator.build import build_emulator
from devices.emulator.control import ControlHandler
from devices.emulator.core import FiscalCore
from harness.connect import open_device
from harness.device import DocumentKind, FnWarning, PaperState, PaymentKind, ReceiptKind, TaxSystem
from harness.errors import LabUnavailable, NoPaper
from harness.lab import EmulatorLab, UnavailableLab
from harness.spec import DeviceSpec

from .test_deferred_rereg import SUGAR, assert_reregistered_before_open, make_rig

START = datetime(2021, 2, 10, 10, 0, 0)


def make(model: str = "kf", *defects: str, **settings: str) -> FiscalCore:
    if defects:
        settings["defects"] = ",".join(defects)
    core = build_emulator(model, {"clock": START.isoformat(), **settings}).core
    core.start_work(core.now())
    return core


def receipt(core: FiscalCore, kind: ReceiptKind = ReceiptKind.SALE, amount: str = "100.00"):
    core.open_receipt(kind, None, "Кассир")
    core.add_item("Сахар", Decimal(1), Decimal(amount))
    core.pay(PaymentKind.CASH, Decimal(amount))
    return core.close_receipt()


def kinds(core: FiscalCore) -> list[DocumentKind]:
    return [DocumentKind(d.kind) for d in core.fn.archive]


# ---------------------------------------------------------------------------------- fiscal core


@pytest.mark.parametrize("defect", [False, True])
def test_return_adds_to_shift_total(defect: bool) -> None:
    core = make("kf", *(["return_adds_to_shift_total"] if defect else []))
    core.open_shift()
    receipt(core, ReceiptKind.SALE, "100.00")
    receipt(core, ReceiptKind.SALE_RETURN, "30.00")
    totals = core.shift_totals().receipts
    sales, returns = totals[ReceiptKind.SALE], totals[ReceiptKind.SALE_RETURN]
    figures = core.report_figures()
    if defect:
        assert (sales.count, sales.total, returns.count, returns.total) == (2, Decimal("130.00"), 0, Decimal(0))
        assert (figures["sales"], figures["returns"]) == ("2", "0")
    else:
        assert (sales.count, sales.total, returns.count, returns.total) == (1, Decimal("100.00"), 1, Decimal("30.00"))
        assert (figures["sales"], figures["returns_sum"]) == ("1", "30.00")
    assert core.cash == Decimal("70.00")  # the drawer is right either way
    whole = core.totals().receipts  # the ФН's grand totals are not the shift's
    assert whole[ReceiptKind.SALE_RETURN].count == 1


@pytest.mark.parametrize("defect", [False, True])
def test_shift_counters_not_reset(defect: bool) -> None:
    core = make("kf", *(["shift_counters_not_reset"] if defect else []))
    core.open_shift()
    receipt(core, ReceiptKind.SALE, "100.00")
    receipt(core, ReceiptKind.SALE_RETURN, "10.00")
    core.close_shift()
    core.open_shift()
    receipt(core, ReceiptKind.SALE, "50.00")
    totals = core.shift_totals().receipts
    sales, returns = totals[ReceiptKind.SALE], totals[ReceiptKind.SALE_RETURN]
    if defect:
        assert (sales.count, sales.total, returns.count) == (2, Decimal("150.00"), 1)
        assert core.shift.receipts == 3  # the receipt number in the shift goes on too
    else:
        assert (sales.count, sales.total, returns.count) == (1, Decimal("50.00"), 0)
        assert core.shift.receipts == 1


@pytest.mark.parametrize("defect", [False, True])
def test_no_fn_30_day_warning(defect: bool) -> None:
    core = make("kf", *(["no_fn_30_day_warning"] if defect else []))
    assert not core.fn_warnings() & FnWarning.RESOURCE_30_DAYS
    term = core.fn_valid_until() - core.fn.activated_at.date()
    core.lab_fn(activated=core.now() - term + timedelta(days=20))  # 20 days of key left
    assert 15 <= (core.fn_valid_until() - core.now().date()).days <= 25
    warnings = core.fn_warnings()
    assert bool(warnings & FnWarning.RESOURCE_30_DAYS) is not defect
    assert not warnings & FnWarning.URGENT_REPLACEMENT


@pytest.mark.parametrize("defect", [False, True])
def test_x_report_makes_document(defect: bool) -> None:
    core = make("kf", *(["x_report_makes_document"] if defect else []))
    core.set_ofd(False)
    core.open_shift()
    last = core.last_fd().number
    queued = len(core.unsent())
    tape = len(core.tape)
    core.x_report()
    assert len(core.tape) > tape  # printed either way
    if defect:
        assert core.last_fd().number == last + 1
        assert core.last_fd().kind == DocumentKind.STATE_REPORT
        assert len(core.unsent()) == queued + 1
    else:
        assert core.last_fd().number == last
        assert len(core.unsent()) == queued
    core.close_shift()  # nothing pends: the register goes on


@pytest.mark.parametrize("defect", [False, True])
def test_queue_counts_receipts_only(defect: bool) -> None:
    core = make("kf", *(["queue_counts_receipts_only"] if defect else []))
    core.set_ofd(False)
    opened = core.open_shift()
    sold = receipt(core)
    core.close_shift()
    reported = core.unsent()
    assert len(core.undelivered()) == 3  # the ФН holds all of them
    if defect:
        assert [d.number for d in reported] == [sold.number]
    else:
        assert [d.number for d in reported] == [opened.number, sold.number, sold.number + 1]
    core.set_ofd(True)
    assert core.undelivered() == [] and core.unsent() == []  # what is sent is every document


@pytest.mark.parametrize("defect", [False, True])
def test_queue_counts_receipts_only_on_the_wire(defect: bool) -> None:
    params = {"clock": START.isoformat(), "ofd": "offline"}
    if defect:
        params["defects"] = "queue_counts_receipts_only"
    handle = open_device(DeviceSpec("emulator", "kf", "emulator:kf", params=params), timeout_scale=0.5)
    try:
        opened = handle.kkt.open_shift()
        handle.kkt.sell([SUGAR])
        queue = handle.kkt.ofd_queue()
        assert queue.count == (1 if defect else 2)
        assert queue.first_number == (opened.number + 1 if defect else opened.number)
    finally:
        handle.close()


@pytest.mark.parametrize("defect", [False, True])
def test_shift_number_skips(defect: bool) -> None:
    core = make("kf", *(["shift_number_skips"] if defect else []))
    first = core.shift.number
    core.open_shift()
    assert core.shift.number == first + (2 if defect else 1)
    core.close_shift()
    second = core.shift.number
    core.open_shift()
    assert core.shift.number == second + (2 if defect else 1)
    assert core.last_fd().shift_number == core.shift.number


# ---------------------------------------------------------------------------------- fisGo


@pytest.mark.parametrize(
    ("model", "firmware", "correct"),
    [("kf", "2.100.0", True), ("kf", "2.3.0", False), ("start", "9.0.0", False), ("start", "10.100.0", True)],
)
def test_compare_firmware_as_text(model: str, firmware: str, correct: bool) -> None:
    core = make(model)
    fisgo = FisGo(core, "http://127.0.0.1:9")  # never contacted here
    core.set_firmware(firmware)
    assert fisgo.supports_tasks() is correct
    core.set_defects({"compare_firmware_as_text"})
    assert fisgo.supports_tasks() is not correct  # "2.100.0" < "2.26.0", "9.0.0" > "10.50.1" as text


@pytest.mark.parametrize(
    ("defect", "scheduled", "applied"),
    [
        (False, date(2021, 2, 3), True),
        (True, date(2021, 2, 3), False),  # 03.02 read as 02.03: not due on 10.02
        (False, date(2021, 2, 13), False),
        (True, date(2021, 2, 13), False),  # day > 12: read right, not due
    ],
)
def test_swap_task_day_month(defect: bool, scheduled: date, applied: bool) -> None:
    settings = {"defects": "swap_task_day_month"} if defect else {}
    for rig in make_rig("kf", "2021-02-10T09:00:00", **settings):
        rig.schedule(TaxSystem.OSN, scheduled)
        opened = rig.kkt.open_shift()
        assert (dict(rig.documents())[opened.number - 1] is DocumentKind.REREGISTRATION) is applied


def test_swap_task_day_month_reads_a_late_day_right() -> None:
    for rig in make_rig("kf", "2021-02-14T09:00:00", defects="swap_task_day_month"):
        rig.schedule(TaxSystem.OSN, date(2021, 2, 13))
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)


def test_swap_task_day_month_applies_a_swapped_date_early() -> None:
    for rig in make_rig("kf", "2021-02-03T09:00:00", defects="swap_task_day_month"):
        rig.schedule(TaxSystem.OSN, date(2021, 3, 2))  # due 02.03, read as 03.02: applied a month early
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)


@pytest.mark.parametrize("defect", [False, True])
def test_failed_task_not_retried(defect: bool) -> None:
    settings = {"defects": "failed_task_not_retried"} if defect else {}
    for rig in make_rig("dkf", "2021-01-01T09:00:00", **settings):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        done = rig.core.fn.registrations_done
        rig.handle.lab.paper(PaperState.OUT)
        with pytest.raises(NoPaper):
            rig.kkt.open_shift()  # the re-registration fails before the ФН commit
        assert [t.state for t in rig.fisgo.tasks.values()] == ["failed"]
        rig.handle.lab.paper(PaperState.OK)
        opened = rig.kkt.open_shift()
        if defect:
            assert dict(rig.documents())[opened.number - 1] is not DocumentKind.REREGISTRATION
            assert rig.kkt.fn().tax_systems == TaxSystem.USN_INCOME
            assert rig.core.fn.registrations_done == done
            rig.kkt.close_shift()
            opened = rig.kkt.open_shift()  # nor at any later open
            assert rig.kkt.fn().tax_systems == TaxSystem.USN_INCOME
            assert not rig.status()["reregistered"]
        else:
            assert_reregistered_before_open(rig, opened.number, TaxSystem.OSN)


@pytest.mark.parametrize("defect", [False, True])
def test_failure_not_reported(defect: bool) -> None:
    settings = {"defects": "failure_not_reported"} if defect else {}
    for rig in make_rig("dkf", "2021-01-01T09:00:00", **settings):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        rig.handle.lab.paper(PaperState.OUT)
        with pytest.raises(NoPaper):
            rig.kkt.open_shift()
        rig.fisgo.poll()
        status = rig.status()
        assert status["task_received"] and not status["reregistered"]
        assert bool(status["last_error"]) is not defect, status
        rig.handle.lab.paper(PaperState.OK)
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)  # retried either way


@pytest.mark.parametrize("defect", [False, True])
def test_implicit_open_skips_task(defect: bool) -> None:
    settings = {"auto_open_shift": "1", **({"defects": "implicit_open_skips_task"} if defect else {})}
    for rig in make_rig("kf", "2021-01-01T09:00:00", **settings):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        assert not rig.core.shift.is_open
        rig.kkt.sell([SUGAR], tax_system=TaxSystem.USN_INCOME if defect else TaxSystem.OSN)
        assert rig.core.shift.is_open  # the receipt opened the shift
        assert (DocumentKind.REREGISTRATION in kinds(rig.core)) is not defect
        assert rig.kkt.fn().tax_systems == (TaxSystem.USN_INCOME if defect else TaxSystem.OSN)


def test_explicit_open_runs_the_task_with_the_implicit_defect_on() -> None:
    for rig in make_rig("kf", "2021-01-01T09:00:00", auto_open_shift="1", defects="implicit_open_skips_task"):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)


# ---------------------------------------------------------------------------------- the zone op


def test_zone_op_sets_and_reads_the_device_time_zone() -> None:
    core = make("kf")
    control = ControlHandler(core)
    assert control.handle({"op": "zone"}) == {"ok": True, "utc_offset_hours": 3}
    assert control.handle({"op": "zone", "utc_offset_hours": 12}) == {"ok": True, "utc_offset_hours": 12}
    assert core.profile.utc_offset_hours == 12
    assert control.handle({"op": "zone", "utc_offset_hours": 2})["utc_offset_hours"] == 2
    fisgo = FisGo(core, "http://127.0.0.1:9")
    assert fisgo._local_time_iso().endswith("+02:00")  # read at use time
    assert "zone" in control.handle({"op": "ops"})["ops"]


@pytest.mark.parametrize("value", [1, 13, 0, -3, "7", 7.0, True, None, [7]])
def test_zone_op_bad_values_give_a_one_line_error(value: object) -> None:
    core = make("kf")
    reply = ControlHandler(core).handle({"op": "zone", "utc_offset_hours": value})
    assert reply["ok"] is False
    assert "\n" not in reply["error"] and "2..12" in reply["error"], reply
    assert core.profile.utc_offset_hours == 3


def test_zone_op_refuses_unknown_arguments() -> None:
    reply = ControlHandler(make("kf")).handle({"op": "zone", "offset": 7})
    assert reply["ok"] is False and "utc_offset_hours" in reply["error"]


def test_zone_moves_the_local_time_fisgo_reports() -> None:
    for rig in make_rig("kf", "2021-01-01T09:00:00"):
        rig.handle.lab.zone(7)
        rig.fisgo.poll()
        assert rig.status()["local_time"].endswith("+07:00")
        assert rig.core.profile.utc_offset_hours == 7


def test_lab_zone() -> None:
    sent: list[dict] = []

    def control(request: dict) -> dict:
        sent.append(request)
        return {"ok": True, "utc_offset_hours": 5}

    lab = EmulatorLab(control)
    lab.zone(5)
    assert sent == [{"op": "zone", "utc_offset_hours": 5}]
    with pytest.raises(LabUnavailable, match="часовой пояс"):
        UnavailableLab("реальная ККТ").zone(5)
