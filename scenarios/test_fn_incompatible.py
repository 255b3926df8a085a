"""D. ФН несовместим с новой СНО (domain-rules.md, matrix D; R2.4, R2.5, R5.6, R1.4)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import allure
import pytest

from harness.device import FnWarning, Kkt, TaxSystem
from harness.errors import BadParameter, FnExpired, RegistrationLimit
from harness.lab import Lab
from harness.plugin import expect_refusal

from .conftest import (
    SUGAR,
    at,
    check_regime,
    ensure_shift_closed,
    open_shift_expecting,
)

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("D. ФН несовместим с новой СНО"),
    allure.link("matrix.html#scenario-d", name="Матрица сценариев D"),
    allure.label("rule", "R2.4"),
    allure.label("rule", "R2.5"),
    pytest.mark.destructive,
]

NOW = datetime(2021, 6, 1, 9, 0)


def prepare(kkt: Kkt, lab: Lab, months_on_fn: int) -> None:
    ensure_shift_closed(kkt)
    at(lab, NOW.isoformat())
    lab.ofd(True)
    if kkt.fn().tax_systems != TaxSystem.USN_INCOME:  # a lab register left on another regime
        kkt.reregister(TaxSystem.USN_INCOME)
    lab.fn_setup(activated=NOW - timedelta(days=round(months_on_fn * 30.4)))


@allure.story("36-месячный ФН переводится на ОСН до истечения сокращённого срока")
@allure.title("36-мес. ФН (10 мес. на УСН) → ОСН: перерегистрация проходит, срок ФН сокращается")
@allure.severity(allure.severity_level.CRITICAL)
def test_36_month_fn_to_osn_within_short_term(kkt: Kkt, lab) -> None:
    prepare(kkt, lab, months_on_fn=10)
    before = kkt.fn()
    kkt.reregister(TaxSystem.OSN)
    after = kkt.fn()
    with allure.step("Проверить: СНО ОСН, срок действия ФН сократился, работа продолжается"):
        assert after.tax_systems == TaxSystem.OSN
        assert after.valid_until is not None and before.valid_until is not None
        assert after.valid_until < before.valid_until
        kkt.open_shift()
        kkt.sell([SUGAR])
    with allure.step("Проверить: предупреждение «ресурс ФН < 30 дней» там, где срок близок"):
        days_left = (after.valid_until - NOW.date()).days
        assert (FnWarning.RESOURCE_30_DAYS in after.warnings) is (days_left <= 30)


@allure.story("36-месячный ФН переводится на ОСН после сокращённого срока (ручная перерегистрация)")
@allure.title("36-мес. ФН (14 мес. на УСН) → ОСН вручную: после отчёта ФН просрочен, документы отклоняются")
@allure.severity(allure.severity_level.BLOCKER)
def test_36_month_fn_to_osn_after_short_term_manual(kkt: Kkt, lab) -> None:
    prepare(kkt, lab, months_on_fn=14)
    kkt.reregister(TaxSystem.OSN)
    with allure.step("Проверить: срок ФН в прошлом, смена не открывается («ФН просрочен»)"):
        valid_until = kkt.fn().valid_until
        assert valid_until is not None and valid_until < NOW.date()
        with expect_refusal(FnExpired):
            kkt.open_shift()


@allure.story("Отложенное задание на ОСН для ФН после сокращённого срока")
@allure.title("Задание Кабинета на ОСН для 36-мес. ФН (14 мес.): ККТ отказывается, СНО прежняя, ошибка в Кабинете")
@allure.severity(allure.severity_level.BLOCKER)
def test_deferred_task_refuses_to_expire_the_fn(kkt: Kkt, lab, hub) -> None:
    prepare(kkt, lab, months_on_fn=14)
    old = kkt.fn().tax_systems
    hub.schedule(TaxSystem.OSN, NOW.date())
    hub.poll_now()
    open_shift_expecting(kkt, "Проверить: перерегистрации не было, смена на старой СНО", reregistered=False, regime=old)
    with allure.step("Проверить: ошибка сообщена в Кабинет"):
        status = hub.status()
        assert status["reregistered"] is False and status["last_error"]


@allure.story("ЕНВД как целевая СНО")
@allure.title("ЕНВД с 01.01.2021 не применяется: Кабинет не принимает задание, ККТ отклоняет перерегистрацию")
@allure.severity(allure.severity_level.NORMAL)
def test_envd_target_rejected(kkt: Kkt, lab, hub) -> None:
    prepare(kkt, lab, months_on_fn=3)
    old = kkt.fn().tax_systems
    with allure.step("Проверить: Кабинет отклоняет задание на ЕНВД"), expect_refusal(Exception, match=r"(?i)envd|енвд"):
        hub.schedule(TaxSystem.ENVD, date(2021, 7, 1))
    with allure.step("Проверить: ККТ отклоняет ручную перерегистрацию на ЕНВД"), expect_refusal(BadParameter):
        kkt.reregister(TaxSystem.ENVD)
    check_regime(kkt, old)


@allure.story("Перерегистрации исчерпаны")
@allure.title("Лимит перерегистраций ФН исчерпан: чистый отказ, прежняя СНО остаётся")
@allure.severity(allure.severity_level.CRITICAL)
def test_registrations_exhausted(kkt: Kkt, lab) -> None:
    prepare(kkt, lab, months_on_fn=3)
    limit = lab.fn_setup()["registrations_done"] + lab.fn_setup()["registrations_left"]
    lab.fn_setup(registrations_done=limit)
    old = kkt.fn()
    with allure.step("Проверить: перерегистрация отклонена, ФН без изменений"), expect_refusal(RegistrationLimit):
        kkt.reregister(TaxSystem.OSN)
    after = kkt.fn()
    assert after.tax_systems == old.tax_systems and after.last_fd_number == old.last_fd_number
