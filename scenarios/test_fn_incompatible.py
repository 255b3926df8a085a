"""D. ФН несовместим с новой СНО (domain-rules.md, matrix D; R2.4, R2.5, R5.6, R1.4)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import allure
import pytest

from harness.device import FnWarning, Kkt, TaxSystem
from harness.errors import BadParameter, FnExpired, RegistrationLimit
from harness.lab import Lab
from harness.oracle import Satisfies
from harness.plugin import expect_refusal

from .conftest import (
    SUGAR,
    at,
    ensure_shift_closed,
    open_shift_expecting,
    with_setting,
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


def prepare(kkt: Kkt, lab: Lab, months_on_fn: int, kind: str | None = None) -> datetime:
    """A register on УСН доход at NOW, its ФН (of ``kind``: fn15, fn36) activated ``months_on_fn``
    ago; returns the activation time."""
    ensure_shift_closed(kkt)
    at(lab, NOW.isoformat())
    lab.ofd(True)
    if kkt.fn().tax_systems != TaxSystem.USN_INCOME:  # a lab register left on another regime
        kkt.reregister(TaxSystem.USN_INCOME)
    if kind is not None:
        allure.dynamic.parameter("ФН", kind)
    activated = NOW - timedelta(days=round(months_on_fn * 30.4))
    lab.fn_setup(activated=activated, kind=kind)
    return activated


def ending_in(kkt: Kkt, lab: Lab, activated: datetime, days: int) -> None:
    """The ФН made one whose term ends ``days`` after today (negative: ended): activated earlier by
    as much, the register's clock untouched — a lab register's clock never runs to a ФН's end."""
    end = kkt.fn().valid_until
    if end is None:
        pytest.skip("Устройство не сообщает срок действия ФН")
    lab.fn_setup(activated=activated - timedelta(days=(end - NOW.date()).days - days))


@allure.story("36-месячный ФН переводится на ОСН до истечения сокращённого срока")
@allure.title("36-мес. ФН (10 мес. на УСН) → ОСН: перерегистрация проходит, срок ФН сокращается")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("ffd", ["1.05", "1.2"])
def test_36_month_fn_to_osn_within_short_term(kkt: Kkt, lab, oracle, ffd: str) -> None:
    with_setting(kkt, lab, "ffd", ffd, current=kkt.info().ffd)
    prepare(kkt, lab, months_on_fn=10, kind="fn36")
    with oracle.step(
        "Перерегистрировать на ОСН: срок ФН сокращается (R2.4)",
        **oracle.reregistered(TaxSystem.OSN, online=True),
    ) as step:
        kkt.reregister(TaxSystem.OSN)
    before, after = step.before["valid_until"], step.after["valid_until"]
    with allure.step("Проверить: срок действия ФН сократился и ещё не истёк"):
        assert before is not None and after is not None and NOW.date() <= after < before
    with allure.step("Проверить: предупреждение «ресурс ФН < 30 дней» там и только там, где срок близок"):
        assert (FnWarning.RESOURCE_30_DAYS in step.after["warnings"]) is ((after - NOW.date()).days <= 30)
    open_shift_expecting(oracle, kkt, "Работа продолжается: смена открывается", to=None, online=True)
    with oracle.step("Чек на ОСН", **oracle.sale(SUGAR.amount, online=True)):
        kkt.sell([SUGAR])


# days before the ФН's end → the warnings that must be on: 1050 (30 days) and 1051 (3 days); the
# ФН kinds differ in their term (R2.4): 15 months and 36 months
WARNING_EDGE = [(kind, days) for kind in ("fn15", "fn36") for days in (31, 30, 4, 3, 0)]


@allure.story("Предупреждения о конце срока ФН")
@allure.title("«Ресурс ФН < 30 дней» — с 30-го дня, «срочная замена» — с 3-го; в последний день ФН ещё работает")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize(("kind", "days_left"), WARNING_EDGE, ids=[f"{k}-{d}-days" for k, d in WARNING_EDGE])
def test_fn_30_day_warning(kkt: Kkt, lab, oracle, kind: str, days_left: int) -> None:
    activated = prepare(kkt, lab, months_on_fn=3, kind=kind)
    wanted = FnWarning(0)
    if days_left <= 30:
        wanted |= FnWarning.RESOURCE_30_DAYS
    if days_left <= 3:
        wanted |= FnWarning.URGENT_REPLACEMENT
    with oracle.step(
        f"Стенд: ФН, срок которого кончается через {days_left} дн. — предупреждения {wanted!r}",
        valid_until=(NOW + timedelta(days=days_left)).date(),
        warnings=Satisfies(
            lambda _b, a: a & (FnWarning.RESOURCE_30_DAYS | FnWarning.URGENT_REPLACEMENT) == wanted, f"{wanted!r}"
        ),
    ):
        ending_in(kkt, lab, activated, days_left)
    open_shift_expecting(oracle, kkt, "Смена открывается: предупреждение не блокирует", to=None, online=True)


@allure.story("Срок ФН истёк")
@allure.title("На следующий день после конца срока ФН смена не открывается, ничего не записано")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("kind", ["fn15", "fn36"])
def test_fn_expired_the_day_after(kkt: Kkt, lab, oracle, kind: str) -> None:
    activated = prepare(kkt, lab, months_on_fn=3, kind=kind)
    ending_in(kkt, lab, activated, -1)
    with oracle.step("Открыть смену: «ФН просрочен», состояние прежнее"), expect_refusal(FnExpired):
        kkt.open_shift()


@allure.story("36-месячный ФН переводится на ОСН после сокращённого срока (ручная перерегистрация)")
@allure.title("36-мес. ФН (14 мес. на УСН) → ОСН вручную: после отчёта ФН просрочен, документы отклоняются")
@allure.severity(allure.severity_level.BLOCKER)
def test_36_month_fn_to_osn_after_short_term_manual(kkt: Kkt, lab, oracle) -> None:
    prepare(kkt, lab, months_on_fn=14, kind="fn36")
    with oracle.step(
        "Перерегистрировать на ОСН: отчёт проходит, срок ФН — в прошлом",
        **oracle.reregistered(TaxSystem.OSN, online=True),
    ) as step:
        kkt.reregister(TaxSystem.OSN)
    with allure.step("Проверить: срок ФН в прошлом"):
        valid_until = step.after["valid_until"]
        assert valid_until is not None and valid_until < NOW.date()
    with oracle.step("Проверить: смена не открывается («ФН просрочен»), состояние прежнее"):
        with expect_refusal(FnExpired):
            kkt.open_shift()


@allure.story("Отложенное задание на ОСН для ФН после сокращённого срока")
@allure.title("Задание Кабинета на ОСН для 36-мес. ФН (14 мес.): ККТ отказывается, СНО прежняя, ошибка в Кабинете")
@allure.severity(allure.severity_level.BLOCKER)
def test_deferred_task_refuses_to_expire_the_fn(kkt: Kkt, lab, hub, oracle) -> None:
    prepare(kkt, lab, months_on_fn=14, kind="fn36")
    hub.schedule(TaxSystem.OSN, NOW.date())
    hub.poll_now()
    oracle.watch_hub(hub)
    open_shift_expecting(
        oracle,
        kkt,
        "Открыть смену: перерегистрации нет, смена на старой СНО, ошибка сообщена в Кабинет",
        to=None,
        online=True,
        **oracle.task_failed(),
    )
    with allure.step("Проверить: Кабинет — «не перерегистрирована»"):
        assert hub.status()["reregistered"] is False


@allure.story("ЕНВД как целевая СНО")
@allure.title("ЕНВД с 01.01.2021 не применяется: Кабинет не принимает задание, ККТ отклоняет перерегистрацию")
@allure.severity(allure.severity_level.NORMAL)
def test_envd_target_rejected(kkt: Kkt, lab, hub, oracle) -> None:
    prepare(kkt, lab, months_on_fn=3)
    oracle.watch_hub(hub)
    with oracle.step("Кабинет отклоняет задание на ЕНВД, ничего не меняется"):
        with expect_refusal(Exception, match=r"(?i)envd|енвд"):
            hub.schedule(TaxSystem.ENVD, date(2021, 7, 1))
    with oracle.step("ККТ отклоняет ручную перерегистрацию на ЕНВД, ничего не меняется"):
        with expect_refusal(BadParameter):
            kkt.reregister(TaxSystem.ENVD)


@allure.story("Перерегистрации исчерпаны")
@allure.title("Последняя перерегистрация ФН проходит; после неё — чистый отказ, прежняя СНО остаётся")
@allure.severity(allure.severity_level.CRITICAL)
def test_registrations_exhausted(kkt: Kkt, lab, oracle) -> None:
    prepare(kkt, lab, months_on_fn=3)
    fn = lab.fn_setup()
    limit = fn["registrations_done"] + fn["registrations_left"]
    lab.fn_setup(registrations_done=limit - 1)
    with oracle.step("Последняя доступная перерегистрация проходит", **oracle.reregistered(TaxSystem.OSN, online=True)):
        kkt.reregister(TaxSystem.OSN)
    with oracle.step("Следующая отклонена, ФН без изменений"), expect_refusal(RegistrationLimit):
        kkt.reregister(TaxSystem.USN_INCOME)


@allure.story("Отложенное задание в последний день сокращённого срока")
@allure.title("Задание на ОСН в последний день сокращённого срока ФН выполняется; на следующий день — отказ")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("day", ["last-day", "day-after"])
def test_deferred_task_at_the_end_of_the_short_term(kkt: Kkt, lab, hub, oracle, day: str) -> None:
    activated = prepare(kkt, lab, months_on_fn=10, kind="fn36")
    kkt.reregister(TaxSystem.OSN)  # the ФН says how long its term is on ОСН (R2.4)
    osn_end = kkt.fn().valid_until
    kkt.reregister(TaxSystem.USN_INCOME)
    if osn_end is None:
        pytest.skip("Устройство не сообщает срок действия ФН")
    # a ФН activated so that its ОСН term ends today (or ended yesterday); the clock stays at NOW
    lab.fn_setup(activated=activated - timedelta(days=(osn_end - NOW.date()).days + (0 if day == "last-day" else 1)))
    hub.schedule(TaxSystem.OSN, NOW.date())
    hub.poll_now()
    oracle.watch_hub(hub)
    if day == "last-day":
        open_shift_expecting(
            oracle, kkt, "Срок на ОСН истекает сегодня — перерегистрация", to=TaxSystem.OSN, online=True
        )
        return
    open_shift_expecting(
        oracle,
        kkt,
        "Срок на ОСН истёк вчера — перерегистрации нет, ошибка в Кабинете",
        to=None,
        online=True,
        **oracle.task_failed(),
    )
