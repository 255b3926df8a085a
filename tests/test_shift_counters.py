"""Shift counters (``Kkt.counters()``) and receipts of every settlement sign (``sell(kind=...)``)
through the real drivers against the in-process emulators of a Касса Ф, a Старт and an АТОЛ 30Ф:
Pirit 0x01/1, 0x01/7, 0x01/3, 0x01/5 and 0x02/7; АТОЛ A4h/10h and 91h registers 3, 6 and 10."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from devices.atol.driver import AtolDriver
from devices.emulator.core import FiscalCore
from devices.pirit.driver import PiritDriver
from harness import open_kkt
from harness.device import DocumentKind, Item, Kkt, Payment, PaymentKind, ReceiptKind, ShiftCounters
from harness.errors import DeviceError, MiscommittedDocument
from harness.reconcile import Intent

from .atol_common import START
from .driver_rigs import LINK_TIMEOUT

SUGAR = Item("Сахар", Decimal("100.00"))
SALT = Item("Соль", Decimal("25.50"), Decimal(2))
ZERO = Decimal("0.00")


@pytest.fixture(params=["kf", "start", "atol"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[Kkt, FiscalCore]]:
    spec = f"emulator:{request.param}?clock={START.isoformat()}&transport=tcp"
    with open_kkt(spec, timeout_scale=0.3, link_timeout=LINK_TIMEOUT) as handle:
        assert isinstance(handle.kkt, Kkt)
        yield handle.kkt, handle.emulator.core  # type: ignore[union-attr]


def test_a_new_shift_counts_nothing(rig) -> None:
    kkt, _ = rig
    kkt.open_shift()
    assert kkt.counters() == ShiftCounters(1, 0, ZERO, 0, ZERO, ZERO)


def test_sales_and_a_return_are_counted_by_sign(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    kkt.sell([SUGAR])  # cash
    kkt.sell([SALT], [Payment(Decimal("51.00"), PaymentKind.ELECTRONIC)])
    after_sales = kkt.counters()
    assert after_sales == ShiftCounters(1, 2, Decimal("151.00"), 0, ZERO, Decimal("100.00"))

    back = kkt.sell([Item("Сахар", Decimal("40.00"))], kind=ReceiptKind.SALE_RETURN)
    assert (back.kind, back.total) == (DocumentKind.RECEIPT, Decimal("40.00"))
    assert core.fn.archive[-1].receipt_kind is ReceiptKind.SALE_RETURN  # the register made a return
    after_return = kkt.counters()
    assert (after_return.sales, after_return.sales_total) == (2, Decimal("151.00"))  # sales untouched
    assert (after_return.returns, after_return.returns_total) == (1, Decimal("40.00"))
    assert after_return.cash == Decimal("60.00")  # a cash return takes money out of the drawer


def test_an_electronic_return_leaves_the_drawer(rig) -> None:
    kkt, _ = rig
    kkt.open_shift()
    kkt.sell([SUGAR])
    kkt.sell([SALT], [Payment(Decimal("51.00"), PaymentKind.ELECTRONIC)], kind=ReceiptKind.SALE_RETURN)
    counters = kkt.counters()
    assert (counters.returns, counters.returns_total, counters.cash) == (1, Decimal("51.00"), Decimal("100.00"))


def test_change_is_not_counted_as_takings(rig) -> None:
    kkt, _ = rig
    kkt.open_shift()
    kkt.sell([SUGAR], [Payment(Decimal("150.00"))])  # 50.00 change
    counters = kkt.counters()
    assert (counters.sales_total, counters.cash) == (Decimal("100.00"), Decimal("100.00"))


def test_a_z_report_keeps_the_closed_shift_until_the_next_opens(rig) -> None:
    kkt, _ = rig
    kkt.open_shift()
    kkt.sell([SUGAR])
    kkt.sell([Item("Сахар", Decimal("30.00"))], kind=ReceiptKind.SALE_RETURN)
    before_z = kkt.counters()
    kkt.close_shift()
    assert kkt.counters() == before_z == ShiftCounters(1, 1, Decimal("100.00"), 1, Decimal("30.00"), Decimal("70.00"))
    kkt.open_shift()
    # a new shift counts from zero; the drawer keeps its cash
    assert kkt.counters() == ShiftCounters(2, 0, ZERO, 0, ZERO, Decimal("70.00"))


def test_purchases_are_not_sales_or_returns(rig) -> None:
    kkt, core = rig
    kkt.open_shift()
    kkt.sell([SUGAR], kind=ReceiptKind.PURCHASE)
    kkt.sell([Item("Тара", Decimal("10.00"))], kind=ReceiptKind.PURCHASE_RETURN)
    kinds = [doc.receipt_kind for doc in core.fn.archive if doc.receipt_kind is not None]
    assert kinds == [ReceiptKind.PURCHASE, ReceiptKind.PURCHASE_RETURN]
    counters = kkt.counters()
    assert (counters.sales, counters.returns, counters.sales_total, counters.returns_total) == (0, 0, ZERO, ZERO)


def test_a_return_is_not_reconciled_as_the_sale_before_it(rig) -> None:
    """The kind is part of the intent: a sale in the register is not the committed return."""
    kkt, _ = rig
    kkt.open_shift()
    sale = kkt.sell([SUGAR])
    request = ((SUGAR,), (Payment(SUGAR.amount),), None, "Кассир", ReceiptKind.SALE_RETURN, SUGAR.amount)
    intent = Intent(DocumentKind.RECEIPT, request, steps=2)
    if isinstance(kkt, PiritDriver):  # Pirit reads the last receipt's type back (0x03/2)
        with pytest.raises(MiscommittedDocument):
            kkt._committed_document(intent, kkt._observe())
    sale_intent = Intent(DocumentKind.RECEIPT, (*request[:4], ReceiptKind.SALE, request[5]), steps=2)
    assert intent != sale_intent
    assert kkt._committed_document(sale_intent, kkt._observe()).number == sale.number


def test_atol_register_3_refuses_a_receipt_type_it_does_not_know(rig) -> None:
    kkt, _ = rig
    if not isinstance(kkt, AtolDriver):
        pytest.skip("АТОЛ 91h registers")
    with pytest.raises(DeviceError) as refused:
        kkt.read_register(3, 3, 1)  # 3 is no 92h receipt type
    assert refused.value.code == 19
    with pytest.raises(DeviceError) as refused:
        kkt.read_register(10, 1, 0)  # the cash register takes no parameters
    assert refused.value.code == 19
