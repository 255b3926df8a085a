"""Отложенная перерегистрация Dreamkas: примеры из материалов Dreamkas и порог прошивки
(domain-rules.md §6, R6.0–R6.3)."""

from __future__ import annotations

from datetime import date

import allure
import pytest

from harness import families
from harness.device import Kkt, TaxSystem
from harness.lab import Lab

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
    allure.feature("Штатные пути"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]


def day_with_shift(kkt: Kkt, lab: Lab, closed: str, regime: TaxSystem) -> None:
    """A working day before the task's date: a shift with a sale on ``regime``, closed at ``closed``.
    The shift opens right before it closes: inside an open shift a real register's time passes
    only for real, and what the rule looks at is the closing time, not the opening one."""
    at(lab, closed)
    kkt.open_shift()
    kkt.sell([SUGAR], tax_system=regime)
    kkt.close_shift()


@allure.story("Пример 1: дата 31.12, закрыта 31.12 20:00, открыта 01.01 12:00")
@allure.title("Задание на 31.12: перерегистрация перед открытием 01.01 12:00")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_1(kkt: Kkt, lab, hub) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    ensure_shift_closed(kkt)
    at(lab, "2020-12-31T19:58:00")
    lab.ofd(True)
    kkt.open_shift()
    hub.schedule(new, date(2020, 12, 31))  # the task arrives inside the open shift of its own date
    hub.poll_now()
    kkt.close_shift()  # about 20:00 (a real register's time inside a shift passes only for real)
    at(lab, "2021-01-01T12:00:00")
    open_shift_expecting(
        kkt, "Проверить: отчёт о перерегистрации перед отчётом об открытии", reregistered=True, regime=new
    )
    with allure.step("Проверить: Кабинет — «обновлена», «получила задание», «перерегистрирована»"):
        status = hub.status()
        assert status["updated"] and status["task_received"] and status["reregistered"]


@allure.story("Пример 2: дата 01.01, закрыта 31.12 20:00, открыта 01.01 12:00")
@allure.title("Задание на 01.01: перерегистрация 01.01 перед открытием, не раньше")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_2(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T07:00:00", target=new, day=date(2021, 1, 1))
    day_with_shift(kkt, lab, "2020-12-31T20:00:00", old)
    with allure.step("Проверить: 31.12 перерегистрации не было"):
        check_regime(kkt, old)
    at(lab, "2021-01-01T12:00:00")
    open_shift_expecting(kkt, "Проверить: 01.01 перерегистрация перед открытием", reregistered=True, regime=new)
    with allure.step("Проверить: Кабинет — «перерегистрирована»"):
        assert hub.status()["reregistered"] is True


@allure.story("Пример 3: круглосуточный магазин, закрыта 31.12 23:50, открыта 01.01 00:10")
@allure.title("Задание на 01.01: перерегистрация перед открытием в 00:10")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_3_round_the_clock(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    task_delivered(kkt, lab, hub, now="2020-12-31T00:05:00", target=new, day=date(2021, 1, 1))
    day_with_shift(kkt, lab, "2020-12-31T23:50:00", old)
    at(lab, "2021-01-01T00:10:00")
    open_shift_expecting(kkt, "Проверить: перерегистрация перед открытием в 00:10", reregistered=True, regime=new)


@allure.story("Порог прошивки")
@allure.title("Прошивка ниже порога не получает задание; после обновления — получает и перерегистрируется")
@allure.severity(allure.severity_level.CRITICAL)
def test_firmware_gate(kkt: Kkt, lab, hub) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    threshold = families.model(kkt.model).rereg_min_firmware
    if threshold is None:
        pytest.skip(f"Устройство не умеет: у {kkt.model} нет порога прошивки для отложенной перерегистрации")
    major, minor, patch = (int(x) for x in threshold.split("."))
    below = f"{major}.{minor - 1}.{patch}"
    at(lab, "2021-01-01T08:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    lab.firmware(below)
    hub.poll_now()
    hub.schedule(new, date(2021, 1, 1))
    hub.poll_now()
    registration = kkt.fn().last_registration_fd
    open_shift_expecting(
        kkt, f"Проверить: с прошивкой {below} перерегистрации нет, СНО прежняя", reregistered=False, regime=old
    )
    with allure.step(f"Проверить: с прошивкой {below} Кабинет видит «не обновлена», задание не получено"):
        status = hub.status()
        assert status["updated"] is False and status["task_received"] is False
    kkt.close_shift()
    lab.firmware(threshold)
    hub.poll_now()
    second = kkt.open_shift()
    with allure.step(
        f"Проверить: после обновления до {threshold} — «обновлена», «получила задание», «перерегистрирована»"
    ):
        assert reregistered_right_before(kkt, second, registration)
        status = hub.status()
        assert status["updated"] and status["task_received"] and status["reregistered"]
