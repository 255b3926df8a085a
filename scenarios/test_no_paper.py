"""A. Нет бумаги (domain-rules.md, scenario matrix A; rules R8.1–R8.4)."""

from __future__ import annotations

from datetime import date

import allure
import pytest

from harness.device import Kkt, PaperState, ShiftState, TaxSystem
from harness.errors import NoPaper
from harness.plugin import expect_refusal

from .conftest import SUGAR, ensure_shift_closed, ensure_shift_open, regimes, task_delivered

pytestmark = [
    allure.epic("Отказы в работе ККТ"),
    allure.feature("A. Нет бумаги"),
    allure.link("matrix.html#scenario-a", name="Матрица сценариев A"),
    allure.label("rule", "R8.1"),
    allure.label("rule", "R8.2"),
]


@allure.story("Бумага кончилась до начала чека")
@allure.title("Без бумаги ККТ отказывает в новом чеке, ничего не записывая в ФН")
@allure.severity(allure.severity_level.CRITICAL)
def test_idle_refusal(kkt: Kkt, lab) -> None:
    ensure_shift_open(kkt)
    fd_before = kkt.fn().last_fd_number
    queue_before = kkt.ofd_queue().count
    lab.paper(PaperState.OUT)
    with allure.step("Проверить: статус показывает «нет бумаги»"):
        assert kkt.status().paper is PaperState.OUT
    with allure.step("Проверить: чек отклонён с ошибкой «нет бумаги»"), expect_refusal(NoPaper):
        kkt.sell([SUGAR])
    with allure.step("Проверить: в ФН не появилось нового документа, очередь ОФД не выросла"):
        assert kkt.fn().last_fd_number == fd_before
        assert kkt.ofd_queue().count == queue_before
        status = kkt.status()
        assert not status.document_open and not status.pending_print
    lab.paper(PaperState.OK)
    with allure.step("Проверить: после заправки бумаги продажа проходит"):
        doc = kkt.sell([SUGAR])
        assert doc.number == fd_before + 1


@allure.story("Бумага кончилась на печати чека после записи в ФН")
@allure.title("Чек записан в ФН, печать продолжается после заправки, второго документа нет")
@allure.severity(allure.severity_level.BLOCKER)
def test_paper_out_mid_receipt(kkt: Kkt, lab) -> None:
    ensure_shift_open(kkt)
    lab.ofd(False)  # the receipt must stay in the OFD queue to be seen there
    fd_before = kkt.fn().last_fd_number
    queue_before = kkt.ofd_queue().count
    lab.paper(PaperState.OK, after_lines=3)  # paper ends while the receipt is printed
    with allure.step("Пробить чек: печать обрывается, ККТ сообщает «нет бумаги»"), expect_refusal(NoPaper):
        kkt.sell([SUGAR])
    with allure.step("Проверить: документ есть в ФН (номер ФД вырос) и стоит в очереди ОФД"):
        assert kkt.fn().last_fd_number == fd_before + 1
        assert kkt.ofd_queue().count == queue_before + 1
    with allure.step("Проверить: ККТ ждёт допечатки"):
        status = kkt.status()
        assert status.pending_print
        assert status.paper is PaperState.OUT
    lab.paper(PaperState.OK)
    document = kkt.continue_print()
    with allure.step("Проверить: допечатан тот же документ, второго ФД нет"):
        assert document is not None
        assert document.number == fd_before + 1
        assert kkt.fn().last_fd_number == fd_before + 1
        status = kkt.status()
        assert not status.pending_print and not status.document_open
    with allure.step("Проверить: следующая продажа получает следующий номер ФД"):
        assert kkt.sell([SUGAR]).number == fd_before + 2


@allure.story("Бумага кончилась на печати Z-отчёта")
@allure.title("Смена закрыта в ФН, повтор закрытия только допечатывает, второго Z нет")
@allure.severity(allure.severity_level.CRITICAL)
def test_paper_out_mid_z_report(kkt: Kkt, lab) -> None:
    ensure_shift_open(kkt)
    fd_before = kkt.fn().last_fd_number
    lab.paper(PaperState.OK, after_lines=2)
    with allure.step("Закрыть смену: печать Z обрывается"), expect_refusal(NoPaper):
        kkt.close_shift()
    with allure.step("Проверить: Z записан в ФН, ККТ требует допечатки"):
        assert kkt.fn().last_fd_number == fd_before + 1
        assert kkt.status().pending_print
    lab.paper(PaperState.OK)
    document = kkt.continue_print()
    with allure.step("Проверить: допечатан тот же Z, смена закрыта, новая открывается"):
        assert document is not None and document.number == fd_before + 1
        assert kkt.fn().last_fd_number == fd_before + 1
        assert kkt.status().shift is ShiftState.CLOSED
        assert kkt.open_shift().number == fd_before + 2


@allure.story("Бумага кончилась на печати отчёта о перерегистрации")
@allure.title("Перерегистрация засчитана один раз, повтор не создаёт второго отчёта")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.destructive
def test_paper_out_mid_reregistration_report(kkt: Kkt, lab) -> None:
    ensure_shift_closed(kkt)
    fn = kkt.fn()
    target = TaxSystem.OSN if fn.tax_systems != TaxSystem.OSN else TaxSystem.USN_INCOME
    lab.ofd(True)
    lab.paper(PaperState.OK, after_lines=2)
    with allure.step(f"Перерегистрировать на {target.title}: печать отчёта обрывается"), expect_refusal(NoPaper):
        kkt.reregister(target)
    after = kkt.fn()
    with allure.step("Проверить: перерегистрация уже в ФН — новая СНО, новый отчёт о регистрации"):
        assert after.tax_systems == target
        assert after.last_registration_fd == fn.last_fd_number + 1
    lab.paper(PaperState.OK)
    kkt.continue_print()
    with allure.step("Проверить: второго отчёта о перерегистрации нет, смена открывается"):
        assert kkt.fn().last_registration_fd == after.last_registration_fd
        opened = kkt.open_shift()
        assert opened.number == fn.last_fd_number + 2


@allure.story("Бумага кончилась на печати отчёта об отложенной перерегистрации")
@allure.title("Задание Кабинета выполнено один раз: после заправки нет повторной перерегистрации")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.destructive
def test_paper_out_mid_deferred_reregistration(kkt: Kkt, lab, hub) -> None:
    new = regimes(kkt)[1]  # a tax system the register is not on
    task_delivered(kkt, lab, hub, now="2021-01-01T09:00:00", target=new, day=date(2021, 1, 1))
    registration_before = kkt.fn().last_registration_fd
    lab.paper(PaperState.OK, after_lines=2)
    with allure.step("Открыть смену: ККТ перерегистрируется, печать отчёта обрывается"), expect_refusal(NoPaper):
        kkt.open_shift()
    first = kkt.fn().last_registration_fd
    with allure.step("Проверить: перерегистрация выполнена, Кабинет видит «перерегистрирована»"):
        assert first is not None and first != registration_before
        assert kkt.fn().tax_systems == new
        assert hub.status()["reregistered"] is True
    lab.paper(PaperState.OK)
    opened = kkt.open_shift()
    with allure.step("Проверить: смена открыта без второй перерегистрации"):
        assert kkt.fn().last_registration_fd == first
        assert opened.number == first + 1


@allure.story("Бумага на исходе")
@allure.title("Датчик «бумага заканчивается» только предупреждает и не блокирует продажу")
@allure.severity(allure.severity_level.NORMAL)
def test_near_end_only_warns(kkt: Kkt, lab) -> None:
    ensure_shift_open(kkt)
    lab.paper(PaperState.NEAR_END)
    with allure.step("Проверить: продажа проходит"):
        assert kkt.sell([SUGAR]).number > 0


@allure.story("Отложенная допечатка и перезагрузка")
@allure.title("Недопечатанный чек переживает выключение питания и допечатывается после включения")
@allure.severity(allure.severity_level.CRITICAL)
def test_pending_print_survives_power_cycle(kkt: Kkt, lab) -> None:
    ensure_shift_open(kkt)
    fd_before = kkt.fn().last_fd_number
    lab.paper(PaperState.OK, after_lines=3)
    with expect_refusal(NoPaper):
        kkt.sell([SUGAR])
    lab.power("cycle")
    kkt.connect()
    with allure.step("Проверить: после включения ККТ всё ещё ждёт допечатки"):
        assert kkt.status().pending_print
    lab.paper(PaperState.OK)
    document = kkt.continue_print()
    with allure.step("Проверить: допечатан тот же документ"):
        assert document is not None and document.number == fd_before + 1
        assert kkt.fn().last_fd_number == fd_before + 1
