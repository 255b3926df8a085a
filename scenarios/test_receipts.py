"""Чеки: приход, возврат, расход, сдача, безналичная оплата и округление суммы позиции — каждый чек
меняет ровно свой счётчик смены и наличность в ящике (R7.4 признаки расчёта)."""

from __future__ import annotations

from decimal import Decimal

import allure
import pytest

from harness.device import Item, Kkt, Payment, PaymentKind, ReceiptKind
from harness.oracle import delta

from .conftest import SUGAR, ensure_shift_open

pytestmark = [allure.epic("Чеки"), allure.feature("Счётчики смены и денежный ящик")]

NAILS = Item("Гвозди", Decimal("1.25"), Decimal("0.5"))  # 0.625: half up to 0.63


@allure.story("Сдача")
@allure.title("Оплата наличными с запасом: в ящике остаётся сумма чека, сдача уходит покупателю")
@allure.severity(allure.severity_level.CRITICAL)
def test_cash_with_change(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    with oracle.step("Чек на 100,00, наличными 500,00: в ящике +100,00", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR], payments=[Payment(Decimal("500.00"))])


@allure.story("Безналичная оплата")
@allure.title("Оплата картой: приход растёт, наличность в ящике нет")
@allure.severity(allure.severity_level.CRITICAL)
def test_electronic_payment(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    with oracle.step("Чек картой: приход +1, наличность прежняя", **oracle.sale(SUGAR.amount, cash=False)):
        kkt.sell([SUGAR], payments=[Payment(SUGAR.amount, PaymentKind.ELECTRONIC)])


@allure.story("Смешанная оплата")
@allure.title("Часть наличными, часть картой: в ящике только наличная часть")
@allure.severity(allure.severity_level.NORMAL)
def test_mixed_payment(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    cash, card = Decimal("30.00"), SUGAR.amount - Decimal("30.00")
    with oracle.step(
        "Чек: 30,00 наличными и 70,00 картой", **{**oracle.sale(SUGAR.amount, cash=False), "cash": delta(cash)}
    ):
        kkt.sell([SUGAR], payments=[Payment(cash), Payment(card, PaymentKind.ELECTRONIC)])


@allure.story("Возврат прихода")
@allure.title("Возврат: считается возвратом, а не приходом; деньги уходят из ящика")
@allure.severity(allure.severity_level.BLOCKER)
def test_sale_then_return(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    with oracle.step("Продажа", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])
    with oracle.step("Возврат той же суммы", **oracle.refund(SUGAR.amount)):
        kkt.sell([SUGAR], kind=ReceiptKind.SALE_RETURN)


@allure.story("Расход и возврат расхода")
@allure.title("Расход выдаёт наличные из ящика, возврат расхода возвращает их; приход и возвраты не меняются")
@allure.severity(allure.severity_level.CRITICAL)
def test_purchase_and_purchase_return(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    with oracle.step("Продажа: в ящике есть наличные", **oracle.sale(SUGAR.amount)):
        kkt.sell([SUGAR])
    with oracle.step(
        "Расход: наличные из ящика", fd=delta(1), cash=delta(-SUGAR.amount), **oracle.queued(1, online=None)
    ):
        kkt.sell([SUGAR], kind=ReceiptKind.PURCHASE)
    with oracle.step(
        "Возврат расхода: наличные в ящик", fd=delta(1), cash=delta(SUGAR.amount), **oracle.queued(1, online=None)
    ):
        kkt.sell([SUGAR], kind=ReceiptKind.PURCHASE_RETURN)


@allure.story("Округление")
@allure.title("Сумма позиции округляется до копейки: 1,25 × 0,5 = 0,63")
@allure.severity(allure.severity_level.NORMAL)
@pytest.mark.parametrize("kind", ["sale", "return"])
def test_item_amount_rounds_half_up(kkt: Kkt, lab, oracle, kind: str) -> None:
    ensure_shift_open(kkt)
    total = Decimal("0.63")
    if kind == "sale":
        with oracle.step("Продажа 0,5 × 1,25: в счётчиках и в ящике 0,63", **oracle.sale(total)):
            kkt.sell([NAILS], payments=[Payment(total)])
        return
    kkt.sell([SUGAR])
    with oracle.step("Возврат 0,5 × 1,25: в счётчиках и из ящика 0,63", **oracle.refund(total)):
        kkt.sell([NAILS], payments=[Payment(total)], kind=ReceiptKind.SALE_RETURN)


@allure.story("Несколько позиций")
@allure.title("Чек из нескольких позиций: в счётчики идёт сумма всех позиций")
@allure.severity(allure.severity_level.NORMAL)
def test_several_items(kkt: Kkt, lab, oracle) -> None:
    ensure_shift_open(kkt)
    items = [SUGAR, Item("Соль", Decimal("35.50"), Decimal(2)), NAILS]
    total = sum((item.amount for item in items), Decimal(0))
    with oracle.step(f"Чек из трёх позиций на {total}", **oracle.sale(total)):
        kkt.sell(items, payments=[Payment(total)])
