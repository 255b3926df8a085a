"""Отложенная перерегистрация: отказ до записи в ФН, повтор при следующем открытии и итоговый
статус в Кабинете (domain-rules.md R6.3 rules 3–6, R4.6, R8.1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import allure
import pytest

from harness import families
from harness.device import Kkt, PaperState
from harness.errors import CoverOpen, NoPaper
from harness.lab import Lab
from harness.plugin import expect_refusal

from .conftest import SUGAR, at, open_shift_expecting, regimes, task_delivered


@dataclass(frozen=True)
class PrinterFault:
    title: str
    fixed_title: str
    make: Callable[[Lab, bool], None]  # (lab, on)
    on: dict[str, Any]  # what the fault changes in the state
    off: dict[str, Any]
    refusal: type[Exception]


PRINTER_FAULTS = {
    "no-paper": PrinterFault(
        "Стенд: бумага кончилась",
        "Стенд: бумага заправлена",
        lambda lab, on: lab.paper(PaperState.OUT if on else PaperState.OK),
        {"paper": PaperState.OUT},
        {"paper": PaperState.OK},
        NoPaper,
    ),
    "cover-open": PrinterFault(
        "Стенд: крышка открыта",
        "Стенд: крышка закрыта",
        lambda lab, on: lab.cover(on),
        {"cover_open": True},
        {"cover_open": False},
        CoverOpen,
    ),
}

pytestmark = [
    allure.epic("Отложенная перерегистрация"),
    allure.feature("Отказ и повтор"),
    allure.label("rule", "R6.3"),
    pytest.mark.destructive,
]


@allure.story("Принтер не готов в момент открытия")
@allure.title("Нет бумаги или открыта крышка: смена не открыта, ошибка в Кабинете; после устранения — повтор и успех")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.parametrize("cause", ["no-paper", "cover-open"])
def test_printer_fault_then_retry(kkt: Kkt, lab, hub, oracle, cause: str) -> None:
    new = regimes(kkt)[1]
    task_delivered(kkt, lab, hub, now="2021-01-01T08:00:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    fault = PRINTER_FAULTS[cause]
    with oracle.step(fault.title, **fault.on):
        fault.make(lab, True)
    with oracle.step(
        "Открыть смену: перерегистрация не удалась до записи в ФН — ничего не записано, ошибка в Кабинете",
        **oracle.task_failed(),
    ):
        with expect_refusal(fault.refusal):
            kkt.open_shift()
    with oracle.step(fault.fixed_title, **fault.off):
        fault.make(lab, False)
    open_shift_expecting(
        oracle,
        kkt,
        "Открыть смену снова: повтор — перерегистрация, затем смена; Кабинет: «перерегистрирована»",
        to=new,
        online=True,
    )
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
        kkt.close_shift()
    open_shift_expecting(oracle, kkt, "Следующее открытие: задание выполнено, второй перерегистрации нет", to=None)


@allure.story("Неотправленные документы в дату задания")
@allure.title(
    "Очередь ОФД не пуста в дату: модель, которая отказывает (R4.6), открывает смену на старой СНО и повторяет"
)
@allure.severity(allure.severity_level.BLOCKER)
def test_unsent_queue_then_retry(kkt: Kkt, lab, hub, oracle) -> None:
    old, new = regimes(kkt)
    refuses = families.model(kkt.model).rereg_requires_empty_queue
    task_delivered(kkt, lab, hub, now="2020-12-31T09:00:00", target=new, day=date(2021, 1, 1))
    oracle.watch_hub(hub)
    lab.ofd(False)
    open_shift_expecting(oracle, kkt, "31.12: смена без ОФД", to=None, online=False)
    with oracle.step("Чек без связи с ОФД", **oracle.sale(SUGAR.amount, online=False)):
        kkt.sell([SUGAR], tax_system=old)
    with oracle.step("Закрыть смену: в очереди неотправленные", **oracle.shift_closed(online=False)):
        kkt.close_shift()
    at(lab, "2021-01-01T09:00:00")
    if not refuses:
        open_shift_expecting(
            oracle, kkt, "01.01: модель перерегистрируется и при неотправленных (R4.6)", to=new, online=False
        )
        return
    open_shift_expecting(
        oracle,
        kkt,
        "01.01: перерегистрация отклонена (неотправленные), смена на старой СНО, ошибка в Кабинете",
        to=None,
        online=False,
        **oracle.task_failed(),
    )
    with oracle.step("Чек на старой СНО проходит", **oracle.sale(SUGAR.amount, online=False)):
        kkt.sell([SUGAR], tax_system=old)
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=False)):
        kkt.close_shift()
    with oracle.step("Связь с ОФД: очередь ушла", **oracle.queued(0, online=True)):
        lab.ofd(True)
    open_shift_expecting(
        oracle, kkt, "Следующее открытие: повтор — перерегистрация; Кабинет: «перерегистрирована»", to=new, online=True
    )


@allure.story("Исчерпан лимит перерегистраций")
@allure.title("Лимит ФН исчерпан: задание не выполнено, смена на старой СНО, ошибка в Кабинете при каждом открытии")
@allure.severity(allure.severity_level.CRITICAL)
def test_registrations_exhausted_task_fails(kkt: Kkt, lab, hub, oracle) -> None:
    new = regimes(kkt)[1]
    task_delivered(kkt, lab, hub, now="2021-01-01T08:00:00", target=new, day=date(2021, 1, 1))
    fn = lab.fn_setup()
    lab.fn_setup(registrations_done=fn["registrations_done"] + fn["registrations_left"])
    oracle.watch_hub(hub)
    for attempt in (1, 2):
        open_shift_expecting(
            oracle,
            kkt,
            f"Открытие {attempt}: перерегистрация невозможна, смена на старой СНО, ошибка в Кабинете",
            to=None,
            online=True,
            **oracle.task_failed(),
        )
        with oracle.step("Закрыть смену", **oracle.shift_closed(online=True)):
            kkt.close_shift()
    with allure.step("Проверить: Кабинет — «не перерегистрирована»"):
        assert hub.status()["reregistered"] is False
