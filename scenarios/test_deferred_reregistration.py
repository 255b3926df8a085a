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
    reregistered_right_before,
    task_delivered,
)

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("Штатные пути"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]

OLD, NEW = TaxSystem.USN_INCOME, TaxSystem.OSN


def day_with_shift(kkt: Kkt, lab: Lab, opened: str, closed: str) -> None:
    at(lab, opened)
    kkt.open_shift()
    kkt.sell([SUGAR], tax_system=OLD)
    at(lab, closed)
    kkt.close_shift()


@allure.story("Пример 1: дата 31.12, закрыта 31.12 20:00, открыта 01.01 12:00")
@allure.title("Задание на 31.12: перерегистрация перед открытием 01.01 12:00")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_1(kkt: Kkt, lab, hub) -> None:
    at(lab, "2020-12-31T07:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    at(lab, "2020-12-31T08:00:00")
    kkt.open_shift()
    hub.schedule(NEW, date(2020, 12, 31))
    hub.poll_now()
    at(lab, "2020-12-31T20:00:00")
    kkt.close_shift()
    at(lab, "2021-01-01T12:00:00")
    open_shift_expecting(
        kkt, "Проверить: отчёт о перерегистрации перед отчётом об открытии", reregistered=True, regime=NEW
    )
    with allure.step("Проверить: Кабинет — «обновлена», «получила задание», «перерегистрирована»"):
        status = hub.status()
        assert status["updated"] and status["task_received"] and status["reregistered"]


@allure.story("Пример 2: дата 01.01, закрыта 31.12 20:00, открыта 01.01 12:00")
@allure.title("Задание на 01.01: перерегистрация 01.01 перед открытием, не раньше")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_2(kkt: Kkt, lab, hub) -> None:
    task_delivered(kkt, lab, hub, now="2020-12-31T07:00:00", target=NEW, day=date(2021, 1, 1))
    day_with_shift(kkt, lab, "2020-12-31T08:00:00", "2020-12-31T20:00:00")
    with allure.step("Проверить: 31.12 перерегистрации не было"):
        check_regime(kkt, OLD)
    at(lab, "2021-01-01T12:00:00")
    open_shift_expecting(kkt, "Проверить: 01.01 перерегистрация перед открытием", reregistered=True, regime=NEW)
    with allure.step("Проверить: Кабинет — «перерегистрирована»"):
        assert hub.status()["reregistered"] is True


@allure.story("Пример 3: круглосуточный магазин, закрыта 31.12 23:50, открыта 01.01 00:10")
@allure.title("Задание на 01.01: перерегистрация перед открытием в 00:10")
@allure.severity(allure.severity_level.BLOCKER)
def test_example_3_round_the_clock(kkt: Kkt, lab, hub) -> None:
    task_delivered(kkt, lab, hub, now="2020-12-31T00:05:00", target=NEW, day=date(2021, 1, 1))
    day_with_shift(kkt, lab, "2020-12-31T00:10:00", "2020-12-31T23:50:00")
    at(lab, "2021-01-01T00:10:00")
    open_shift_expecting(kkt, "Проверить: перерегистрация перед открытием в 00:10", reregistered=True, regime=NEW)


@allure.story("Порог прошивки")
@allure.title("Прошивка ниже порога не получает задание; после обновления — получает и перерегистрируется")
@allure.severity(allure.severity_level.CRITICAL)
def test_firmware_gate(kkt: Kkt, lab, hub) -> None:
    threshold = families.model(kkt.model).rereg_min_firmware
    if threshold is None:
        pytest.skip(f"{kkt.model}: no firmware threshold for deferred re-registration")
    major, minor, patch = (int(x) for x in threshold.split("."))
    old = f"{major}.{minor - 1}.{patch}"
    at(lab, "2021-01-01T08:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    lab.firmware(old)
    hub.poll_now()
    hub.schedule(NEW, date(2021, 1, 1))
    hub.poll_now()
    registration = kkt.fn().last_registration_fd
    open_shift_expecting(
        kkt, f"Проверить: с прошивкой {old} перерегистрации нет, СНО прежняя", reregistered=False, regime=OLD
    )
    with allure.step(f"Проверить: с прошивкой {old} Кабинет видит «не обновлена», задание не получено"):
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
