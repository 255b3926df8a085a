"""Diagnostic reads of the АТОЛ emulator: 58h last shift totals, B3h last error, 91h registers.

Layouts: :mod:`devices.atol.protocol.registers` (the [inferred] points are recorded there).
Emulator choices, all **[inferred]**:

* The *last error* (B3h, register 55) is the outcome of the last command other than B3h and 91h
  themselves (success → 0), so a cash application can send 91h/55 or B3h after any refusal and
  read what was refused.  Its extended code is 0: the emulator has no codes below the ATOL one.
  Power-off forgets it with the rest of the device-level state.
* 58h totals are net per operation over the receipts of the current shift (the last one when
  the shift is closed): income = приход − возврат прихода, expense = расход − возврат расхода,
  taken from the ФН archive.
* Registers 3 (payments) and 6 (receipt count) take the receipt type in param1 (and register 3
  the payment type in param2): the shift's receipts of that type (the current shift's, or the
  last closed one's until a new shift opens, as the core counts them); a receipt type or payment
  type the register does not know is 19 (bad format), as is a non-zero param2 of register 6.
* The other registers take no parameters: a non-zero param1/param2 is 19 (bad format); a missing
  register byte or more than three parameter bytes is 20 (bad length); a register not served is 108.
"""

from __future__ import annotations

from decimal import Decimal

from harness.device import ReceiptKind

from ..protocol import (
    PAYMENTS_WIDTH,
    RECEIPT_COUNT_WIDTH,
    REGISTER_PARAMS,
    WRONG_REGISTER,
    CommandRequest,
    ExtendedError,
    LastError,
    LastShiftTotals,
    PaymentType,
    ReadRegister,
    ReceiptStateRegister,
    ReceiptType,
    Register,
    ShiftState,
    encode_datetime_register,
    money_to_bcd,
    to_bcd,
)
from .queries import AtolQueries
from .state import PAYMENT_KIND, RECEIPT_KIND, AtolError, _u

CENTS = Decimal("0.01")


class AtolDiagnostics(AtolQueries):
    """58h, B3h and 91h over the core and the device-level state (read-only)."""

    def _shift_state(self) -> int:
        core = self.core
        if not core.shift.is_open:
            return ShiftState.CLOSED
        return ShiftState.EXPIRED if core.shift_expired() else ShiftState.OPEN

    def _last_shift_totals(self, request: CommandRequest) -> bytes:
        if request.params:
            raise AtolError(20, "58h takes no parameters")
        core = self.core
        sums = dict.fromkeys(ReceiptKind, Decimal(0))
        for doc in core.fn.archive:
            if doc.shift_number == core.shift.number and doc.receipt_kind is not None and doc.total is not None:
                sums[doc.receipt_kind] += doc.total
        income = max(Decimal(0), sums[ReceiptKind.SALE] - sums[ReceiptKind.SALE_RETURN])
        expense = max(Decimal(0), sums[ReceiptKind.PURCHASE] - sums[ReceiptKind.PURCHASE_RETURN])
        return _u(LastShiftTotals(income.quantize(CENTS), expense.quantize(CENTS)).encode())

    def _shift_register(self, register: Register, receipt_type: int, payment_type: int) -> bytes:
        """Registers 3 and 6: the shift's payments / receipts of one receipt type."""
        try:
            kind = RECEIPT_KIND[ReceiptType(receipt_type)]
        except (ValueError, KeyError):
            raise AtolError(19, f"register {int(register)}: no receipt type {receipt_type}") from None
        totals = self.core.shift_totals().receipts[kind]
        if register is Register.RECEIPT_COUNT:
            if payment_type:
                raise AtolError(19, "register 6 takes no payment type")
            return to_bcd(totals.count % 10**10, RECEIPT_COUNT_WIDTH)
        try:
            payment = PAYMENT_KIND.get(PaymentType(payment_type))  # 3..5: types the emulator takes no payment in
        except ValueError:
            raise AtolError(19, f"register 3: no payment type {payment_type}") from None
        amount = totals.payments.get(payment.value, Decimal(0)) if payment is not None else Decimal(0)
        return money_to_bcd(max(Decimal(0), amount).quantize(CENTS), PAYMENTS_WIDTH)

    def _last_error(self, request: CommandRequest) -> bytes:
        if request.params:
            raise AtolError(20, "B3h takes no parameters")
        state = self.state
        return _u(LastError(state.last_error, state.last_command).encode())

    def _read_register(self, request: CommandRequest) -> bytes:
        if not 1 <= len(request.params) <= 3:
            raise AtolError(20, "91h takes register(1) param1(1) param2(1)")
        params = ReadRegister.decode(request.params)
        if params.register not in set(Register):
            raise AtolError(WRONG_REGISTER, f"register {params.register} is not emulated")
        register = Register(params.register)
        if register in REGISTER_PARAMS:
            return _u(self._shift_register(register, params.param1, params.param2))
        if params.param1 or params.param2:
            raise AtolError(19, f"register {params.register} takes no parameters")
        core = self.core
        if register is Register.CASH:
            return _u(money_to_bcd(max(Decimal(0), core.cash).quantize(CENTS), 7))
        if register is Register.DATETIME:
            return _u(encode_datetime_register(core.now()))
        if register is Register.RECEIPT_STATE:
            value = ReceiptStateRegister(
                receipt_state=self._receipt_state(),
                shift_state=self._shift_state(),
                receipt_number=(core.shift.receipts + 1) % 10000,
                shift_number=core.shift.number % 10**8,
            )
            return _u(value.encode())
        if register is Register.SERIAL:
            return _u(to_bcd(self._serial_bcd(), 4))
        state = self.state  # Register.EXTENDED_ERROR
        return _u(ExtendedError(state.last_error, state.last_extended).encode())
