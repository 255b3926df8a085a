"""Отказы по правилам и безвредные операции: каждое правило, на которое опираются сценарии, должно
и отказывать — без следа в ФН, счётчиках, очереди и на ленте (domain-rules.md R1.3, R3.2, R3.4,
R5.4, R5.7, R8.1); а запросы, X-отчёт и копия ничего фискального не меняют."""

from __future__ import annotations

from datetime import timedelta

import allure
import pytest

from harness.device import Capability, Kkt, PaperState
from harness.errors import (
    ClockBehindLastDocument,
    CoverOpen,
    NoChanges,
    NoPaper,
    ShiftClosed,
    ShiftExpired,
    ShiftOpen,
    TaxSystemNotRegistered,
)
from harness.oracle import Computed, Satisfies
from harness.plugin import expect_refusal

from .conftest import (
    SUGAR,
    at,
    attach_note,
    ensure_shift_closed,
    ensure_shift_open,
    open_shift_expecting,
    regimes,
    with_setting,
)

pytestmark = [allure.epic("Отказы по правилам"), allure.feature("Отказ без следа")]


@allure.story("R1.3: СНО чека должна быть в регистрации")
@allure.title("Чек на незарегистрированной СНО отклонён, ничего не записано")
@allure.label("rule", "R1.3")
@allure.severity(allure.severity_level.CRITICAL)
def test_receipt_on_unregistered_tax_system(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    old, other = regimes(kkt)
    with oracle.step(f"Чек на {other.title}: отказ, состояние прежнее"), expect_refusal(TaxSystemNotRegistered):
        kkt.sell([SUGAR], tax_system=other)
    with oracle.step(f"Чек на {old.title} проходит", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR], tax_system=old)


@allure.story("R5.4: перерегистрация только при закрытой смене")
@allure.title("Перерегистрация при открытой смене отклонена: СНО, ФН и счётчики прежние")
@allure.label("rule", "R5.4")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.destructive
def test_reregistration_inside_open_shift(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    target = regimes(kkt)[1]
    with oracle.step(f"Перерегистрация на {target.title} в открытой смене: отказ"), expect_refusal(ShiftOpen):
        kkt.reregister(target)
    with oracle.step("Смена продолжается: чек проходит", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])


@allure.story("R5.7: перерегистрация без изменений")
@allure.title("Перерегистрация на ту же СНО: «нет изменений», нового отчёта нет, лимит не тратится")
@allure.label("rule", "R5.7")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.destructive
def test_reregistration_without_changes(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_closed(kkt)
    current = kkt.fn().tax_systems
    with oracle.step(f"Перерегистрация на ту же СНО ({current.title}): отказ"), expect_refusal(NoChanges):
        kkt.reregister(current)


@allure.story("Смена: открыть открытую, закрыть закрытую")
@allure.title("Повторное открытие и повторное закрытие смены отклонены без следа")
@allure.label("rule", "R3.1")
@allure.severity(allure.severity_level.NORMAL)
def test_shift_open_twice_and_close_twice(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_closed(kkt)
    open_shift_expecting(oracle, kkt, "Открыть смену", to=None)
    with oracle.step("Открыть ещё раз: отказ, состояние прежнее"), expect_refusal(ShiftOpen):
        kkt.open_shift()
    with oracle.step("Закрыть смену", **oracle.shift_closed()):
        kkt.close_shift()
    with oracle.step("Закрыть ещё раз: отказ, состояние прежнее"), expect_refusal(ShiftClosed):
        kkt.close_shift()


@allure.story("R3.2: просроченная смена")
@allure.title("В смене старше 24 ч чек и X-отчёт не меняют ничего фискального; закрыть можно")
@allure.label("rule", "R3.2")
@allure.severity(allure.severity_level.CRITICAL)
def test_expired_shift_refuses_receipts(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    lab.clock_advance(hours=24, minutes=1)
    with oracle.step("Чек в просроченной смене: отказ"), expect_refusal(ShiftExpired):
        kkt.sell([SUGAR])
    with oracle.step("Открыть смену поверх просроченной: отказ"), expect_refusal(ShiftOpen, ShiftExpired):
        kkt.open_shift()
    with oracle.step("Закрыть просроченную смену", **oracle.shift_closed()):
        kkt.close_shift()


@allure.story("R3.4: часы")
@allure.title("Часы не ставятся при открытой смене и раньше последнего документа")
@allure.label("rule", "R3.4")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.requires(Capability.SET_CLOCK)
@pytest.mark.destructive  # the clock of a real ФН moves forward for good
def test_clock_rules(kkt: Kkt, lab, oracle) -> None:
    at(lab, "2021-04-10T10:00:00")
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    with oracle.step("Установить часы при открытой смене: отказ"), expect_refusal(ShiftOpen):
        kkt.set_clock(kkt.clock() + timedelta(hours=1))
    with oracle.step("Закрыть смену", **oracle.shift_closed()):
        kkt.close_shift()
    last = oracle.steps[-1].after["_clock"]  # the Z report's time
    for behind in (timedelta(days=1), timedelta(minutes=2)):  # the same date too: time, not date, decides
        with oracle.step(f"Установить часы на {behind} раньше последнего документа: отказ"):
            with expect_refusal(ClockBehindLastDocument):
                kkt.set_clock(last - behind)
    with oracle.step("Установить часы на час вперёд: принято, ничего фискального"):
        kkt.set_clock(last + timedelta(hours=1))
    with allure.step("Проверить: часы ККТ идут с нового времени"):
        assert kkt.clock() >= last + timedelta(hours=1)


@allure.story("R8.1: крышка открыта")
@allure.title("При открытой крышке чек отклонён без следа; после закрытия проходит")
@allure.label("rule", "R8.1")
@allure.severity(allure.severity_level.NORMAL)
def test_cover_open_refuses(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    with oracle.step("Стенд: крышка открыта", cover_open=True):
        lab.cover(True)
    with oracle.step("Чек при открытой крышке: отказ"), expect_refusal(CoverOpen):
        kkt.sell([SUGAR])
    with oracle.step("Стенд: крышка закрыта", cover_open=False):
        lab.cover(False)
    with oracle.step("Чек проходит", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])


@allure.story("R8.1: нет бумаги — отчёты")
@allure.title("Без бумаги ни Z-отчёт, ни открытие смены не записываются в ФН")
@allure.label("rule", "R8.1")
@allure.severity(allure.severity_level.CRITICAL)
def test_no_paper_refuses_reports(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    lab.paper(PaperState.OUT)
    with oracle.step("Z-отчёт без бумаги: отказ, смена открыта"), expect_refusal(NoPaper):
        kkt.close_shift()
    lab.paper(PaperState.OK)
    with oracle.step("Закрыть смену", **oracle.shift_closed()):
        kkt.close_shift()
    lab.paper(PaperState.OUT)
    with oracle.step("Открыть смену без бумаги: отказ, смена закрыта"), expect_refusal(NoPaper):
        kkt.open_shift()
    with oracle.step("Стенд: бумага заправлена", paper=PaperState.OK):
        lab.paper(PaperState.OK)  # a register that outlives the test is left with paper


# ------------------------------------------------------------------------------ harmless operations


@allure.feature("Безвредные операции")
@allure.story("Запросы, X-отчёт, копия, допечатка без повода")
@allure.title("Запросы состояния, X-отчёт, копия последнего документа и пустая допечатка ничего не меняют")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("ffd", ["1.05", "1.2"])
@pytest.mark.parametrize("shift", ["open", "closed"])
def test_harmless_operations(kkt: Kkt, lab, oracle, shift: str, ffd: str) -> None:
    with_setting(kkt, lab, "ffd", ffd, current=kkt.info().ffd)
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    if shift == "closed":
        kkt.close_shift()
    shown = oracle.snapshot()
    for name in ("info", "status", "fn", "ofd_queue", "clock", "counters"):
        if name == "counters" and "sales" not in shown:
            continue  # the device does not give its counters (the step tables say why)
        oracle.harmless(getattr(kkt, name), f"Запрос {name}: ничего не меняется")
    if shift == "open":
        oracle.harmless(kkt.x_report, "X-отчёт: только печать, ФН и счётчики прежние", printout=1)
    else:
        printed = Satisfies(lambda _b, a: a in (0, 1), "X-отчёт напечатан, или модель отказала")
        with oracle.step("X-отчёт при закрытой смене: печать или отказ, ничего фискального", other_printouts=printed):
            try:
                kkt.x_report()
            except ShiftClosed:
                attach_note("Поведение модели", f"{kkt.model}: X-отчёт только в открытой смене")
    with oracle.step(
        "Копия последнего документа: только копия на ленте",
        copies=Computed(lambda b: (b["fd"],), "копия последнего ФД"),
    ):
        kkt.reprint_last()
    with oracle.step("Допечатка, когда допечатывать нечего: ничего не меняется"):
        assert kkt.continue_print() is None


@allure.feature("Безвредные операции")
@allure.story("Переподключение")
@allure.title("Переподключение к ККТ («начало работы») не меняет ничего фискального")
@allure.severity(allure.severity_level.NORMAL)
def test_reconnect_is_harmless(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    with oracle.step("Подключиться заново («начало работы»)"):
        kkt.connect()


@allure.feature("Безвредные операции")
@allure.story("Время идёт")
@allure.title("Час без операций при закрытой смене не меняет ничего фискального")
@allure.severity(allure.severity_level.NORMAL)
def test_idle_hour_is_harmless(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_closed(kkt)
    with oracle.step("Стенд: прошёл час"):
        lab.clock_advance(hours=1)
