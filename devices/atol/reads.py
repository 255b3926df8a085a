"""The АТОЛ driver's reads that need more than one command or a session memory.

:class:`AtolReads` sits between :class:`~devices.atol.wire.AtolWire` and
:class:`~devices.atol.driver.AtolDriver`: A4h sub-commands, A4h/10h decoded in the register's
own number encoding (the [conflict] of §3.5.4: the ``atol_a4_10_encoding`` setting of an
emulated register, told to the driver or learned from 3Fh), and the diagnostic reads 58h, B3h
and 91h (register 55 = the extended error, §3.5.3; layouts in
:mod:`devices.atol.protocol.registers`).
"""

from __future__ import annotations

from decimal import Decimal

from harness.errors import LinkCorrupted

from .protocol import (
    PAYMENTS_WIDTH,
    RECEIPT_COUNT_WIDTH,
    Cmd,
    CodecError,
    ExtendedError,
    FnQuery,
    LastError,
    LastShiftTotals,
    NumberEncoding,
    Register,
    ShiftParams,
    StatusBlock,
    encode_read_register,
    from_bcd,
    money_from_bcd,
)
from .wire import AtolWire, decoded


class AtolReads(AtolWire):
    """Reads over the wire; ``_a4_10`` is the A4h/10h encoding (None: not known yet)."""

    _a4_10: NumberEncoding | None = None

    def _fn_query(self, sub: int) -> bytes:
        return self.call(Cmd.FN, bytes([sub])).data

    def _shift_params(self, block: StatusBlock | None = None) -> ShiftParams:
        """A4h/10h, decoded as the register encodes it.  Without a told encoding the two readings
        (binary LE, BCD low byte first) are compared with 3Fh's BCD shift number (last closed:
        +1 while open) and receipt number; the one that agrees is kept for the session.  Numbers
        below 10 read the same either way and decide nothing."""
        data = self._fn_query(FnQuery.SHIFT)
        try:
            if self._a4_10 is not None:
                return ShiftParams.decode(data, self._a4_10)
            binary = ShiftParams.decode(data, NumberEncoding.BINARY_LE)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed A4h/10h answer: {exc}") from None
        try:
            bcd = ShiftParams.decode(data, NumberEncoding.BCD_LE)
        except CodecError:  # a nibble above 9: not BCD
            self._a4_10 = NumberEncoding.BINARY_LE
            return binary
        if bcd == binary:
            return binary
        block = block or self.status_block()
        for encoding, reading in ((NumberEncoding.BINARY_LE, binary), (NumberEncoding.BCD_LE, bcd)):
            open_ = reading.state in (1, 2)
            if (reading.shift_number, reading.receipt_number) == (block.shift_number + open_, block.receipt_number):
                self._a4_10 = encoding
                self._link.trace.note(f"A4h/10h numbers are {encoding.value} (they agree with 3Fh)")
                return reading
        return binary  # neither agrees with 3Fh: S7's reading, undecided

    # ------------------------------------------------------------------------------ diagnostics

    def last_shift_totals(self) -> LastShiftTotals:
        """58h: the shift totals of income and expense (§3.5.3)."""
        return decoded(LastShiftTotals.decode, self.call(Cmd.LAST_SHIFT_TOTALS).data, "58h answer")

    def last_error(self) -> LastError:
        """B3h: the last command's error code and command byte ([inferred] layout)."""
        return decoded(LastError.decode, self.call(Cmd.LAST_ERROR).data, "B3h answer")

    def read_register(self, register: int, param1: int = 0, param2: int = 0) -> bytes:
        """91h: a register's raw value (what follows the error byte)."""
        return self.call(Cmd.READ_REGISTER, encode_read_register(register, param1, param2)).data

    def _register_value(self, register: int, width: int, param1: int = 0, param2: int = 0) -> bytes:
        data = self.read_register(register, param1, param2)
        if len(data) < width:
            raise LinkCorrupted(f"register {register} answer has {len(data)} bytes, expected {width}")
        return data[:width]

    def cash_in_drawer(self) -> Decimal:
        """Register 10: the cash in the drawer."""
        return _money(self._register_value(Register.CASH, 7), Register.CASH)

    def shift_payments(self, receipt_type: int, payment_type: int) -> Decimal:
        """Register 3: the shift's payments of one payment type in receipts of one type."""
        value = self._register_value(Register.PAYMENTS, PAYMENTS_WIDTH, receipt_type, payment_type)
        return _money(value, Register.PAYMENTS)

    def shift_receipts(self, receipt_type: int) -> int:
        """Register 6: the shift's receipts of one type ([inferred], see the registers module)."""
        value = self._register_value(Register.RECEIPT_COUNT, RECEIPT_COUNT_WIDTH, receipt_type)
        try:
            return from_bcd(value)
        except CodecError as exc:
            raise LinkCorrupted(f"malformed register 6 answer: {exc}") from None

    def extended_error(self) -> ExtendedError:
        """Register 55: the extended error of the last command (read it after error 238)."""
        return decoded(ExtendedError.decode, self.read_register(Register.EXTENDED_ERROR), "register 55")


def _money(data: bytes, register: int) -> Decimal:
    try:
        return money_from_bcd(data)
    except CodecError as exc:
        raise LinkCorrupted(f"malformed register {register} answer: {exc}") from None
