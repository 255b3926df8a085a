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
    task_delivered,
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
def test_withheld_task_old_regime_stays(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)  # the register's regime now, and another one
    at(lab, "2020-12-31T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    check_regime(kkt, old)
    hub.withhold(True)
    hub.schedule(new, date(2021, 1, 1))
    hub.poll_now()
    at(lab, "2021-01-01T10:00:00")
    oracle.watch_hub(hub)
    open_shift_expecting(oracle, kkt, "Открыть смену 01.01: СНО старая, перерегистрации нет", to=None, online=True)
    status = hub.status()
    mismatch = (
        f"Дата 01.01.2021 наступила, ККТ {status.get('firmware')} не перерегистрирована: "
        f"task_received={status['task_received']}, reregistered={status['reregistered']}"
    )
    attach_note("Расхождение: дата прошла, ККТ не перерегистрирована", mismatch)
    with oracle.step("Чек на старой СНО проходит", **oracle.sale(SUGAR.amount, online=True)):
        kkt.sell([SUGAR], tax_system=old)
    with oracle.step("Чек на новой СНО отклонён, состояние прежнее"), expect_refusal(TaxSystemNotRegistered):
        kkt.sell([SUGAR], tax_system=new)
    with allure.step("Проверить: в Кабинете «задание не получено», «не перерегистрирована»"):
        assert status["task_received"] is False and status["reregistered"] is False


@allure.story("Ручная перерегистрация и опоздавшее задание")
@allure.title("После ручной перерегистрации опоздавшее задание ничего не меняет и не тратит перерегистрацию")
@allure.severity(allure.severity_level.CRITICAL)
def test_manual_fallback_then_late_task_is_noop(kkt: Kkt, lab, hub, oracle) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    at(lab, "2021-01-02T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    with oracle.step(f"Перерегистрировать вручную на {new.title}", **oracle.reregistered(new, online=True)):
        kkt.reregister(new)
    hub.schedule(new, date(2021, 1, 1))
    oracle.watch_hub(hub)
    with oracle.step("ККТ получает опоздавшее задание", hub_task_received=True):
        hub.poll_now()
    open_shift_expecting(
        oracle,
        kkt,
        "Открыть смену: второго отчёта о перерегистрации нет, Кабинет считает задание выполненным",
        to=None,
        online=True,
        **oracle.task_already_done(new),
    )


@allure.story("Связь с Кабинетом пропала до даты")
@allure.title("ККТ вне связи в дату: смена на старой СНО; задание, пришедшее позже, применяется при следующем открытии")
@allure.severity(allure.severity_level.CRITICAL)
def test_offline_register_applies_task_at_next_open_after_reconnect(kkt: Kkt, lab, hub, oracle) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    at(lab, "2020-12-31T09:00:00")
    lab.ofd(True)
    ensure_shift_closed(kkt)
    hub.link(False)
    hub.schedule(new, date(2021, 1, 1))
    at(lab, "2021-01-01T09:00:00")
    oracle.watch_hub(hub)
    open_shift_expecting(oracle, kkt, "Без связи: смена открыта на старой СНО", to=None, online=True)
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    hub.link(True)
    with oracle.step("Связь восстановлена: ККТ получает задание", hub_task_received=True):
        hub.poll_now()
    open_shift_expecting(oracle, kkt, "Перерегистрация перед открытием следующей смены", to=new, online=True)


@allure.story("Выполненное задание не повторяется")
@allure.title("После отложенной перерегистрации ручной возврат на старую СНО не отменяется следующим открытием")
@allure.severity(allure.severity_level.CRITICAL)
def test_done_task_is_not_applied_again(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)
    task_delivered(kkt, lab, hub, now="2021-01-01T08:00:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    open_shift_expecting(oracle, kkt, "Открыть смену: отложенная перерегистрация", to=new, online=True)
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    with oracle.step(f"Вернуть {old.title} вручную", **oracle.reregistered(old, online=True)):
        kkt.reregister(old)
    hub.link(False)  # the register cannot ask the Кабинет: it decides by what it holds itself
    open_shift_expecting(oracle, kkt, "Без связи с Кабинетом: выполненное задание не применяется снова", to=None)
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    hub.link(True)
    with oracle.step("ККТ опрашивает Кабинет: задание выполнено, ничего не приходит"):
        hub.poll_now()
    open_shift_expecting(oracle, kkt, "Открыть смену: выполненное задание не применяется снова", to=None, online=True)
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    hub.schedule(new, date(2021, 1, 2))  # a second task, after the first one is done
    with oracle.step("ККТ получает второе задание", hub_task_received=True, hub_reregistered=False):
        hub.poll_now()
    at(lab, "2021-01-02T08:00:00")
    open_shift_expecting(oracle, kkt, "02.01: второе задание выполняется", to=new, online=True)
