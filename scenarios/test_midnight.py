"""E. Смена через полночь и перерегистрация при первом открытии после даты
(domain-rules.md, matrix E; R3.1–R3.5, R6.3, R9.4)."""

from __future__ import annotations

from datetime import date

import allure
import pytest

from harness.device import Kkt, ShiftState
from harness.errors import ShiftExpired
from harness.plugin import expect_refusal

from .conftest import (
    SUGAR,
    at,
    check_regime,
    ensure_shift_closed,
    open_shift_expecting,
    regimes,
    reregistered_right_before,
    task_delivered,
)

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("E. Смена через полночь"),
    allure.link("matrix.html#scenario-e", name="Матрица сценариев E"),
    allure.label("rule", "R3.1"),
    allure.label("rule", "R3.3"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]


@allure.story("Смена 23:50–00:10 и задание на следующий день")
@allure.title(
    "Открыта 23:50, продажа после полуночи, закрыта 00:10 — одна смена; "
    "перерегистрация только перед следующим открытием"
)
@allure.severity(allure.severity_level.BLOCKER)
def test_shift_across_midnight_with_due_task(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T23:40:00", target=new, day=date(2021, 1, 1))
    at(lab, "2020-12-31T23:50:00")
    opened = kkt.open_shift()
    lab.clock_advance(minutes=15)  # 00:05 on 01.01: the task is due now, but the shift is open
    hub.poll_now()
    receipt = kkt.sell([SUGAR], tax_system=old)
    lab.clock_advance(minutes=5)
    registration = kkt.fn().last_registration_fd
    closed = kkt.close_shift()
    with allure.step("Проверить: одна смена, чек после полуночи на старой СНО, внутри смены перерегистрации нет"):
        assert receipt.shift_number == closed.shift_number == opened.shift_number
        assert kkt.fn().last_registration_fd == registration
        check_regime(kkt, old)
    second = kkt.open_shift()
    with allure.step("Проверить: перед следующим открытием — перерегистрация, затем смена на новой СНО"):
        assert reregistered_right_before(kkt, second, registration)
        check_regime(kkt, new)
        assert kkt.sell([SUGAR], tax_system=new).number == second.number + 1


@allure.story("Граница 24 часов")
@allure.title("23:59 после открытия — чек проходит; 24:01 — отказ «смена > 24 ч»; закрыть просроченную смену можно")
@allure.severity(allure.severity_level.CRITICAL)
def test_24_hour_boundary(kkt: Kkt, lab) -> None:
    at(lab, "2021-03-01T08:00:00")
    ensure_shift_closed(kkt)
    kkt.open_shift()
    lab.clock_advance(hours=23, minutes=59)
    with allure.step("Проверить: через 23:59 чек проходит"):
        kkt.sell([SUGAR])
    lab.clock_advance(minutes=2)
    with allure.step("Проверить: через 24:01 статус «смена > 24 ч», чек отклонён"):
        assert kkt.status().shift is ShiftState.EXPIRED
        with expect_refusal(ShiftExpired):
            kkt.sell([SUGAR])
    with allure.step("Проверить: просроченную смену можно закрыть и открыть новую"):
        kkt.close_shift()
        kkt.open_shift()
        kkt.sell([SUGAR])


@allure.story("31.12 против 01.01")
@allure.title("Задание на 01.01.2021 не срабатывает 31.12.2020 (даты сравниваются хронологически, не как текст)")
@allure.severity(allure.severity_level.BLOCKER)
def test_year_boundary_is_chronological(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T09:00:00", target=new, day=date(2021, 1, 1))
    open_shift_expecting(kkt, "Проверить: 31.12 смена открыта без перерегистрации", reregistered=False, regime=old)
    kkt.close_shift()
    at(lab, "2021-01-01T09:00:00")
    open_shift_expecting(kkt, "Проверить: 01.01 — перерегистрация перед открытием", reregistered=True, regime=new)


@allure.story("Часовой пояс ККТ против часового пояса Кабинета")
@allure.title(
    "Решает местная дата ККТ: в 01:00 по местному (МСК+7), когда в Москве ещё 31.12, задание на 01.01 срабатывает"
)
@allure.severity(allure.severity_level.CRITICAL)
def test_device_local_date_decides(kkt: Kkt, lab, hub) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    task_delivered(kkt, lab, hub, now="2020-12-31T20:00:00", target=new, day=date(2021, 1, 1))
    at(lab, "2021-01-01T01:00:00")  # device local time; for a МСК+7 register Moscow is at 18:00 on 31.12
    registration = kkt.fn().last_registration_fd
    second = kkt.open_shift()
    with allure.step("Проверить: перерегистрация по местной дате ККТ"):
        assert reregistered_right_before(kkt, second, registration)
        assert hub.status()["local_date"] == "2021-01-01"


@allure.story("Задание пришло во время открытой смены")
@allure.title("Задание, полученное в открытой смене в день даты, ждёт закрытия смены и не прерывает её")
@allure.severity(allure.severity_level.CRITICAL)
def test_task_arriving_inside_open_shift_waits(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    at(lab, "2021-01-01T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    kkt.open_shift()
    registration = kkt.fn().last_registration_fd
    hub.schedule(new, date(2021, 1, 1))
    hub.poll_now()
    hub.poll_now()  # and polls again later in the shift
    kkt.sell([SUGAR], tax_system=old)
    with allure.step("Проверить: в открытой смене перерегистрации нет"):
        assert kkt.fn().last_registration_fd == registration
        check_regime(kkt, old)
    kkt.close_shift()
    second = kkt.open_shift()
    with allure.step("Проверить: перерегистрация перед следующей сменой"):
        assert reregistered_right_before(kkt, second, registration)
