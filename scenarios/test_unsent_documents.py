"""B. Неотправленные документы в ФН (domain-rules.md, matrix B; rules R4.1–R4.6)."""

from __future__ import annotations

import allure
import pytest

from harness import families
from harness.device import FnWarning, Kkt, ReceiptKind
from harness.errors import OfdTimeout, UnsentDocuments
from harness.oracle import Satisfies
from harness.plugin import expect_refusal

from .conftest import SUGAR, attach_note, ensure_shift_closed, ensure_shift_open, open_shift_expecting, regimes

pytestmark = [
    allure.epic("Отказы в работе ККТ"),
    allure.feature("B. Неотправленные документы"),
    allure.link("matrix.html#scenario-b", name="Матрица сценариев B"),
    allure.label("rule", "R4.1"),
    allure.label("rule", "R4.2"),
]


# what the queue holds when the OFD goes down: receipts only, a shift's reports, a return
QUEUES = ["receipts", "shift-reports", "with-return"]


@allure.story("ОФД недоступен: очередь растёт, продажи идут")
@allure.title("Без связи с ОФД документы пробиваются, очередь неотправленных растёт, первый не меняется")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.parametrize("queue", QUEUES)
def test_queue_grows_while_ofd_down(kkt: Kkt, lab, oracle, queue: str) -> None:
    ensure_shift_closed(kkt)
    lab.ofd(False)
    if queue == "shift-reports":
        open_shift_expecting(oracle, kkt, "Открыть смену: отчёт об открытии в очереди", to=None, online=False)
    else:
        ensure_shift_open(kkt)
    for n in range(3):
        with oracle.step(f"Чек {n + 1}: в очереди на один документ больше", **oracle.sale(SUGAR.amount, online=False)):
            kkt.sell([SUGAR])
    if queue == "with-return":
        with oracle.step("Возврат: в очереди на один больше", **oracle.refund(SUGAR.amount, online=False)):
            kkt.sell([SUGAR], kind=ReceiptKind.SALE_RETURN)
    if queue == "shift-reports":
        with oracle.step("Закрыть смену: Z-отчёт в очереди", **oracle.shift_closed(online=False)):
            kkt.close_shift()
    with oracle.step(
        "Связь с ОФД восстановлена: очередь пуста, больше ничего не меняется",
        **oracle.queued(0, online=True),
    ):
        lab.ofd(True)


@allure.story("«Напечатан» не значит «доставлен»")
@allure.title("Чек напечатан и записан в ФН, но считается неотправленным, пока ОФД не подтвердил")
@allure.severity(allure.severity_level.BLOCKER)
def test_printed_is_not_delivered(kkt: Kkt, lab, oracle) -> None:
    lab.ofd(False)
    ensure_shift_open(kkt)
    with oracle.step("Чек напечатан и стоит в очереди на отправку", **oracle.sale(SUGAR.amount, online=False)):
        receipt = kkt.sell([SUGAR])
    with allure.step("Проверить: чек напечатан, первый неотправленный — не позже него"):
        first = oracle.steps[-1].after["queue_first"]
        assert receipt.printed and first is not None and first <= receipt.number
    with oracle.step("После связи с ОФД очередь пуста", **oracle.queued(0, online=True)):
        lab.ofd(True)


@allure.story("30-дневная блокировка")
@allure.title("29 дней 23 часа без ОФД — продажи идут; 30 дней и 1 минута — ФН блокирует, после отправки блок снят")
@allure.severity(allure.severity_level.BLOCKER)
@pytest.mark.destructive
def test_thirty_day_block(kkt: Kkt, lab, oracle) -> None:
    lab.ofd(False)
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    kkt.close_shift()
    lab.clock_advance(days=29, hours=23)
    open_shift_expecting(oracle, kkt, "Через 29 д 23 ч: смена открывается", to=None, online=False)
    with oracle.step("Через 29 д 23 ч: чек проходит", **oracle.sale(SUGAR.amount, online=False)):
        kkt.sell([SUGAR])
    with oracle.step("Закрыть смену", **oracle.shift_closed(online=False)):
        kkt.close_shift()
    with oracle.step(
        "Через 30 д 1 мин: флаг «превышено время ожидания ОФД», больше ничего",
        warnings=Satisfies(lambda b, a: a == b | FnWarning.OFD_TIMEOUT, "+ превышено время ожидания ОФД"),
    ):
        lab.clock_advance(hours=1, minutes=1)
    with oracle.step("ФН отказывает в открытии смены, состояние прежнее"), expect_refusal(OfdTimeout):
        kkt.open_shift()
    with oracle.step(
        "Связь с ОФД: очередь ушла, блокировка снята без перерегистрации",
        **oracle.queued(0, online=True),
        warnings=Satisfies(lambda b, a: a == b & ~FnWarning.OFD_TIMEOUT, "− превышено время ожидания ОФД"),
    ):
        lab.ofd(True)
    open_shift_expecting(oracle, kkt, "Смена открывается", to=None, online=True)
    with oracle.step("Чек проходит", **oracle.sale(SUGAR.amount, online=True)):
        kkt.sell([SUGAR])


@allure.story("Перерегистрация при неотправленных документах")
@allure.title("Смена СНО при непустой очереди ОФД ведёт себя так, как записано для модели")
@allure.severity(allure.severity_level.CRITICAL)
@pytest.mark.destructive
def test_reregistration_with_unsent_documents(kkt: Kkt, lab, oracle) -> None:
    lab.ofd(False)
    ensure_shift_open(kkt)
    kkt.sell([SUGAR])
    ensure_shift_closed(kkt)
    target = regimes(kkt)[1]
    # what the model does with a pure СНО change while documents are unsent (R4.6, recorded in the catalogue)
    refuses = families.model(kkt.model).rereg_requires_empty_queue
    attach_note(
        "Поведение модели",
        f"{kkt.model}: перерегистрация при {kkt.ofd_queue().count} неотправленных — "
        + ("отказ" if refuses else "принимается"),
    )
    if refuses:
        with oracle.step("Перерегистрация отклонена, ФН и очередь без изменений"), expect_refusal(UnsentDocuments):
            kkt.reregister(target)
    else:
        with oracle.step(
            f"Перерегистрация на {target.title} принята, отчёт встаёт в очередь",
            **oracle.reregistered(target, online=False),
        ):
            kkt.reregister(target)
