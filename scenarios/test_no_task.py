"""C. Задание на перерегистрацию не дошло до ККТ (domain-rules.md, matrix C; R6.1, R6.3)."""

from __future__ import annotations

from datetime import date

import allure
import pytest

from harness.device import Kkt
from harness.errors import TaxSystemNotRegistered
from harness.plugin import expect_refusal

from .conftest import (
    SUGAR,
    at,
    attach_note,
    check_regime,
    ensure_shift_closed,
    open_shift_expecting,
    regimes,
    reregistered_right_before,
)

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("C. Нет задания"),
    allure.link("matrix.html#scenario-c", name="Матрица сценариев C"),
    allure.label("rule", "R6.1"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]


@allure.story("Задание придержано в Кабинете")
@allure.title("Задание не дошло: смена в дату открывается на старой СНО, перерегистрации нет, статус «не получено»")
@allure.severity(allure.severity_level.BLOCKER)
def test_withheld_task_old_regime_stays(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    at(lab, "2020-12-31T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    check_regime(kkt, old)
    hub.withhold(True)
    hub.schedule(new, date(2021, 1, 1))
    hub.poll_now()
    at(lab, "2021-01-01T10:00:00")
    registration = kkt.fn().last_registration_fd
    opened = kkt.open_shift()
    status = hub.status()
    mismatch = (
        f"Дата 01.01.2021 наступила, ККТ {status.get('firmware')} не перерегистрирована: "
        f"task_received={status['task_received']}, reregistered={status['reregistered']}"
    )
    attach_note("Расхождение: дата прошла, ККТ не перерегистрирована", mismatch)
    with allure.step("Проверить: нет отчёта о перерегистрации, СНО старая"):
        assert not reregistered_right_before(kkt, opened, registration)
        check_regime(kkt, old)
    with allure.step("Проверить: чек на старой СНО проходит, на новой — отклонён"):
        assert kkt.sell([SUGAR], tax_system=old).number == opened.number + 1
        with expect_refusal(TaxSystemNotRegistered):
            kkt.sell([SUGAR], tax_system=new)
    with allure.step("Проверить: в Кабинете «задание не получено», «не перерегистрирована»"):
        assert status["task_received"] is False and status["reregistered"] is False


@allure.story("Ручная перерегистрация и опоздавшее задание")
@allure.title("После ручной перерегистрации опоздавшее задание ничего не меняет и не тратит перерегистрацию")
@allure.severity(allure.severity_level.CRITICAL)
def test_manual_fallback_then_late_task_is_noop(kkt: Kkt, lab, hub) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    at(lab, "2021-01-02T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    manual = kkt.reregister(new)
    registration = kkt.fn().last_registration_fd
    with allure.step("Проверить: ручная перерегистрация прошла"):
        assert registration == manual.number
        check_regime(kkt, new)
    hub.schedule(new, date(2021, 1, 1))
    hub.poll_now()
    opened = kkt.open_shift()
    with allure.step("Проверить: второго отчёта о перерегистрации нет, Кабинет считает задание выполненным"):
        assert kkt.fn().last_registration_fd == registration
        assert opened.number == manual.number + 1
        assert hub.status()["reregistered"] is True


@allure.story("Связь с Кабинетом пропала до даты")
@allure.title("ККТ вне связи в дату: смена на старой СНО; задание, пришедшее позже, применяется при следующем открытии")
@allure.severity(allure.severity_level.CRITICAL)
def test_offline_register_applies_task_at_next_open_after_reconnect(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    at(lab, "2020-12-31T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    hub.link(False)
    hub.schedule(new, date(2021, 1, 1))
    at(lab, "2021-01-01T09:00:00")
    open_shift_expecting(kkt, "Проверить: без связи смена открыта на старой СНО", reregistered=False, regime=old)
    kkt.close_shift()
    hub.link(True)
    hub.poll_now()
    open_shift_expecting(
        kkt, "Проверить: после связи перерегистрация перед открытием следующей смены", reregistered=True, regime=new
    )
    with allure.step("Проверить: Кабинет — «перерегистрирована»"):
        assert hub.status()["reregistered"] is True
