"""A. Нет бумаги (domain-rules.md, scenario matrix A; rules R8.1, R8.2)."""

from __future__ import annotations

from decimal import Decimal

import allure
import pytest

from harness.device import Item, Kkt, PaperState
from harness.errors import NoPaper

from .conftest import ensure_shift_open

pytestmark = [
    allure.epic("Отказы в работе ККТ"),
    allure.feature("A. Нет бумаги"),
    allure.link("reference/domain-rules.md#a-no-paper-paper-end--cover-open", name="Матрица сценариев A"),
    allure.label("rule", "R8.1"),
    allure.label("rule", "R8.2"),
]

SUGAR = Item("Сахар", Decimal("100.00"))


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
    with allure.step("Проверить: чек отклонён с ошибкой «нет бумаги»"), pytest.raises(NoPaper):
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
    fd_before = kkt.fn().last_fd_number
    queue_before = kkt.ofd_queue().count
    lab.paper(PaperState.OK, after_lines=3)  # paper ends while the receipt is printed
    with allure.step("Пробить чек: печать обрывается, ККТ сообщает «нет бумаги»"), pytest.raises(NoPaper):
        kkt.sell([SUGAR])
    with allure.step("Проверить: документ есть в ФН (номер ФД вырос) и стоит в очереди ОФД"):
        assert kkt.fn().last_fd_number == fd_before + 1
        assert kkt.ofd_queue().count == queue_before + 1
    with allure.step("Проверить: ККТ ждёт допечатки, документ отменить нельзя"):
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
