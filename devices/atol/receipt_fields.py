"""What an АТОЛ receipt's fields carry on the wire: cashier and item names in CP866, an item
position (56h) and a payment (99h), with the money rounded to the field's precision."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from harness.device import Item, Payment, PaymentKind, Vat
from harness.errors import HarnessError

from .protocol import CodecError, PaymentType, Position, TaxType
from .protocol import Payment as AtolPayment

VAT_TAX = {Vat.VAT20: TaxType.VAT20, Vat.VAT10: TaxType.VAT10, Vat.VAT0: TaxType.VAT0, Vat.NONE: TaxType.NONE}
PAYMENT_TYPE = {PaymentKind.CASH: PaymentType.CASH, PaymentKind.ELECTRONIC: PaymentType.ELECTRONIC}


def cp866(text: str, width: int) -> bytes:
    return text.encode("cp866", "replace")[:width]


def position(item: Item) -> bytes:
    price = item.price.quantize(Decimal("0.01"), ROUND_HALF_UP)
    quantity = item.quantity.quantize(Decimal("0.001"), ROUND_HALF_UP)
    name = cp866(item.name, 64).decode("cp866")
    try:
        return Position(name=name, price=price, quantity=quantity, tax=VAT_TAX[item.vat]).encode()
    except CodecError as exc:
        raise HarnessError(f"item {item.name!r} cannot be sent to an АТОЛ: {exc}") from None


def payment_field(payment: Payment) -> bytes:
    try:
        return AtolPayment(PAYMENT_TYPE[payment.kind], payment.amount.quantize(Decimal("0.01"), ROUND_HALF_UP)).encode()
    except CodecError as exc:
        raise HarnessError(f"payment {payment.amount} cannot be sent to an АТОЛ: {exc}") from None
