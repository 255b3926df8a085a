"""State-changing application commands of the АТОЛ emulator: modes, shift, receipts, clock, E8h, A6h.

:class:`AtolCommands` extends :class:`~.queries.AtolQueries`; the handlers translate a decoded
:class:`~..protocol.CommandRequest` into fiscal-core calls and answer ``55 00 ...`` on success
(refusals are raised as :class:`~.state.AtolError` or the core's ``CoreError``).
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from harness.device import PaymentKind, TaxSystem
from harness.errors import ErrorKind

from ...emulator.core import CoreError
from ..protocol import (
    CloseReceipt,
    CodecError,
    CommandRequest,
    EnterMode,
    Mode,
    OpenReceipt,
    Payment,
    PaymentResult,
    PaymentType,
    Position,
    ReceiptType,
    Registration,
    RegistrationKind,
    Tag,
    TaxType,
    WriteRequisite,
    decode_date_params,
    decode_datetime_params,
    decode_time_params,
    decode_tlvs,
)
from .queries import AtolQueries
from .state import PAYMENT_KIND, RECEIPT_KIND, VAT_BY_TAX, AtolError, _u, modes_for_password


class AtolCommands(AtolQueries):
    """The handlers that change the mode, the requisites or the fiscal core."""

    # -------------------------------------------------------------------------- modes

    def _enter_mode(self, request: CommandRequest) -> bytes:
        if len(request.params) != 5:
            raise AtolError(20, "56h takes mode(1) and password(4)")
        try:
            params = EnterMode.decode(request.params)
        except CodecError:
            raise AtolError(164, "mode password is not BCD") from None
        state = self.state
        if not 1 <= params.mode <= 6:
            raise AtolError(19, f"no mode {params.mode}")
        if state.mode != Mode.SELECT and state.mode != params.mode:
            raise AtolError(102, f"leave mode {state.mode} (48h) first")
        if params.mode not in modes_for_password(params.password):
            raise AtolError(140, f"password {params.password} does not open mode {params.mode}")
        state.mode, state.submode, state.operator = params.mode, 0, params.password
        return _u()

    def _exit_mode(self, _: CommandRequest) -> bytes:
        state = self.state
        if state.mode == Mode.REGISTRATION and self.core.document is not None:
            raise AtolError(155, "a receipt is open")
        state.mode, state.submode = Mode.SELECT, 0
        return _u()

    # -------------------------------------------------------------------------- shift, reports

    def _open_shift(self, request: CommandRequest) -> bytes:
        self.core.open_shift(self._cashier())
        return _u()

    def _z_report(self, _: CommandRequest) -> bytes:
        self.core.close_shift(self._cashier())
        return _u()

    def _x_report(self, request: CommandRequest) -> bytes:
        report = request.params[0] if request.params else 1
        if report != 1:
            raise AtolError(163, f"report type {report} is not emulated (1 = X report)")
        self.core.x_report(self._cashier())
        return _u()

    def _reprint_last(self, _: CommandRequest) -> bytes:
        core = self.core
        if core.pending is not None:
            core.continue_print()
        else:
            core.print_document(core.last_fd().number)
        return _u()

    # -------------------------------------------------------------------------- receipts

    def _open_receipt(self, request: CommandRequest) -> bytes:
        if len(request.params) < 2:
            raise AtolError(20, "92h takes flags(1) and type(1)")
        params = OpenReceipt.decode(request.params)
        try:
            kind = RECEIPT_KIND[ReceiptType(params.receipt_type)]
        except (ValueError, KeyError):
            raise AtolError(106, f"receipt type {params.receipt_type} is not emulated") from None
        tax: TaxSystem | None = None
        raw = self.state.requisites.pop(Tag.RECEIPT_TAX_SYSTEM, None)
        if raw is not None:
            mask = raw[0] if raw else 0
            if mask == 0 or mask & (mask - 1) or mask >= 64:
                raise AtolError(231, f"1055 must be a single tax system, not {mask}")
            tax = TaxSystem(mask)
        self.core.open_receipt(kind, tax, self._cashier())
        return _u()

    def _register_position(self, request: CommandRequest) -> bytes:
        params = Position.decode(request.params)
        if params.quantity <= 0:
            raise AtolError(10, "quantity must be positive")
        try:
            vat = VAT_BY_TAX[TaxType(params.tax)]
        except ValueError:
            raise AtolError(19, f"tax type {params.tax} unknown") from None
        if params.discount and params.discount_type not in (0, 1):
            raise AtolError(19, "discount type is 0 (percent) or 1 (sum)")
        if params.flags & 0x01:  # check only
            self.core.current_document()
            return _u()
        self.core.add_item(params.name, params.quantity, params.price, vat)
        return _u()

    def _payment(self, request: CommandRequest) -> bytes:
        params = Payment.decode(request.params)
        kind = self._payment_kind(params.payment_type)
        if params.amount <= 0:
            raise AtolError(19, "payment sum must be positive")
        change = self.core.pay(kind, params.amount)
        doc = self.core.document
        remainder = max(Decimal(0), doc.total - doc.paid) if doc is not None else Decimal(0)
        return _u(PaymentResult(remainder.quantize(Decimal("0.01")), change.quantize(Decimal("0.01"))).encode())

    @staticmethod
    def _payment_kind(code: int) -> PaymentKind:
        try:
            return PAYMENT_KIND[PaymentType(code)]
        except (ValueError, KeyError):
            raise AtolError(126, f"payment type {code} is not emulated (1 cash, 2 electronic)") from None

    def _close_receipt(self, request: CommandRequest) -> bytes:
        params = CloseReceipt.decode(request.params)
        core = self.core
        doc = core.document
        if params.amount > 0 and doc is not None and doc.paid < doc.total:
            core.pay(self._payment_kind(params.payment_type), params.amount)
        core.close_receipt()
        return _u()

    def _cancel_receipt(self, _: CommandRequest) -> bytes:
        self.core.cancel_receipt()
        return _u()

    # -------------------------------------------------------------------------- clock

    def _set_date(self, request: CommandRequest) -> bytes:
        day = decode_date_params(request.params)
        self.core.set_rtc(datetime.combine(day, self.core.now().time()))
        return _u()

    def _set_time(self, request: CommandRequest) -> bytes:
        moment: time = decode_time_params(request.params)
        self.core.set_rtc(datetime.combine(self.core.now().date(), moment))
        return _u()

    def _set_datetime(self, request: CommandRequest) -> bytes:
        self.core.set_rtc(decode_datetime_params(request.params))
        return _u()

    # -------------------------------------------------------------------------- requisites (E8h)

    def _write_requisite(self, request: CommandRequest) -> bytes:
        params = WriteRequisite.decode(request.params)
        state = self.state
        if params.blocks == 0 or params.block >= params.blocks:
            raise AtolError(19, f"block {params.block} of {params.blocks}")
        if params.block == 0:
            state.blocks = bytearray()
        state.blocks += params.data
        if params.block < params.blocks - 1:
            return _u()
        data, state.blocks = bytes(state.blocks), bytearray()
        for tag, value in decode_tlvs(data):
            if tag in (Tag.RECEIPT_TAX_SYSTEM, Tag.TAX_SYSTEMS, Tag.REREG_REASON) and len(value) != 1:
                raise AtolError(20, f"requisite {tag} is one byte")
            if tag == Tag.REREG_REASONS and len(value) != 4:
                raise AtolError(20, "requisite 1205 is four bytes")
            state.requisites[tag] = value
        return _u()

    # -------------------------------------------------------------------------- registration

    def _registration(self, request: CommandRequest) -> bytes:
        params = Registration.decode(request.params)
        state = self.state
        if params.kind == RegistrationKind.REGISTRATION:
            raise CoreError(ErrorKind.ALREADY_REGISTERED, "the ФН is already activated")
        if params.kind == RegistrationKind.FN_REPLACEMENT:
            raise AtolError(122, "ФН replacement is not emulated")
        if params.kind != RegistrationKind.CHANGE_PARAMETERS:
            raise AtolError(19, f"A6h kind {params.kind}: 1 activation, 2 change parameters, 3 ФН replacement")
        written = state.requisites.pop(Tag.TAX_SYSTEMS, None)
        if params.tax_systems is not None:
            mask = params.tax_systems
        elif written:
            mask = written[0]
        else:
            mask = int(self.core.fn.tax_systems)
        state.requisites.pop(Tag.REREG_REASONS, None)
        state.requisites.pop(Tag.REREG_REASON, None)
        self.core.reregister(TaxSystem(mask & 0xFF), cashier=self._cashier())
        return _u()
