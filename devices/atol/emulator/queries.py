"""Read-only application answers of the АТОЛ emulator: 3Fh, 45h, A5h, 9Dh, 4Dh, A4h and E9h.

:class:`AtolQueries` is the base mixin of :class:`~.transport.AtolFrontEnd`: the handlers read the
fiscal core (``self.core``) and the device-level state (``self.state``) and change neither.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from harness.device import FnPhase as CoreFnPhase
from harness.device import PaperState

from ...emulator.core import FiscalCore
from ..protocol import (
    FFD_CODES,
    NUMBER_ENCODINGS,
    STATUS_BLOCK_SIZE,
    STATUS_PRINT_PENDING,
    CommandRequest,
    FirmwareVersion,
    FnQuery,
    FnStatus,
    FnValidity,
    FnWarnings,
    Interface,
    NumberEncoding,
    OfdExchangeStatus,
    OfdFlags,
    PrinterFlags,
    ReadRequisite,
    RegistrationTotals,
    ShiftParams,
    ShiftState,
    StateAnswer,
    StatusBlock,
    StatusFlags,
    Tag,
    encode_text,
    encode_tlv,
    money_to_bcd,
    to_bcd,
    to_le,
)
from .state import A4_10_SETTING, DEVICE_TYPE_KKT, PROTOCOL_VERSION, RECEIPT_TYPE, AtolError, AtolState, _u


class AtolQueries:
    """The helpers and the read-only answers (a mixin: the front-end supplies ``core`` and ``state``)."""

    core: FiscalCore

    if TYPE_CHECKING:

        @property
        def state(self) -> AtolState: ...

    # -------------------------------------------------------------------------- helpers

    def _cashier(self) -> str:
        raw = self.state.requisites.get(Tag.CASHIER)
        if raw:
            try:
                return raw.decode("cp866").rstrip("\x00 ")
            except UnicodeDecodeError:
                pass
        return f"Кассир {self.state.operator}" if self.state.operator else "Кассир"

    def _firmware_parts(self) -> tuple[int, int, int]:
        parts = [int(p) if p.isdigit() else 0 for p in self.core.firmware.split(".")] + [0, 0, 0]
        return min(parts[0], 99), min(parts[1], 99), parts[2] % 10000

    def _serial_bcd(self) -> int:
        digits = "".join(c for c in self.core.serial if c.isdigit())
        return int(digits[-8:] or "0")

    def _receipt_state(self) -> int:
        doc = self.core.document
        return RECEIPT_TYPE.get(doc.kind, 1) if doc is not None else 0

    def _mode_byte_parts(self) -> tuple[int, int]:
        return self.state.mode, self.state.submode

    def _a4_10_encoding(self) -> NumberEncoding:
        """The profile's ``atol_a4_10_encoding`` (the family default when the profile has none)."""
        name = self.core.profile.extra.get(A4_10_SETTING, "binary")
        return NUMBER_ENCODINGS.get(name, NumberEncoding.BINARY_LE)

    # -------------------------------------------------------------------------- status

    def _status(self, _: CommandRequest) -> bytes:
        core = self.core
        core.require_power()
        flags = StatusFlags.NONE
        if core.fn.phase == CoreFnPhase.FISCAL:
            flags |= StatusFlags.FISCAL
        if core.shift.is_open:
            flags |= StatusFlags.SHIFT_OPEN
        if core.printer.paper is not PaperState.OUT:
            flags |= StatusFlags.PAPER_PRESENT
        if core.printer.cover_open:
            flags |= StatusFlags.COVER_OPEN
        if core.fn.phase in (CoreFnPhase.FISCAL, CoreFnPhase.POST_FISCAL, CoreFnPhase.ARCHIVE):
            flags |= StatusFlags.FN_ACTIVATED
        if core.pending is not None or core.shift.close_interrupted:
            flags |= STATUS_PRINT_PENDING
        now = core.now()
        doc = core.document
        closed_shifts = core.shift.number - 1 if core.shift.is_open else core.shift.number
        block = StatusBlock(
            date=now.date(),
            time=now.time(),
            cashier=self.state.operator % 100,
            number_in_hall=1,
            flags=flags,
            serial=self._serial_bcd(),
            model=core.profile.model_code,
            version=to_bcd(self._firmware_parts()[0], 1) + to_bcd(self._firmware_parts()[1], 1),
            mode=self.state.mode,
            submode=self.state.submode,
            receipt_number=(core.shift.receipts + 1) % 10000,
            shift_number=max(0, closed_shifts) % 10000,
            receipt_state=self._receipt_state(),
            receipt_sum=doc.total.quantize(Decimal("0.01")) if doc is not None else Decimal("0.00"),
            decimal_point=2,
            interface=Interface.USB,
        )
        encoded = block.encode()
        assert len(encoded) == STATUS_BLOCK_SIZE
        return encoded

    def _state_code(self, _: CommandRequest) -> bytes:
        printer = self.core.printer
        flags = PrinterFlags.NONE
        if printer.paper is PaperState.OUT:
            flags |= PrinterFlags.NO_PAPER
        elif printer.paper is PaperState.NEAR_END:
            flags |= PrinterFlags.PAPER_NEAR_END
        mode, submode = self._mode_byte_parts()
        return b"\x55" + StateAnswer(mode, submode, flags).encode()

    def _device_type(self, _: CommandRequest) -> bytes:
        version, subversion, build = self._firmware_parts()
        firmware = to_bcd(version, 1) + to_bcd(subversion, 1) + b"\x00" + to_bcd(build, 2)
        name = encode_text(self.core.profile.model_name.encode("cp866", "replace").decode("cp866"))
        mode, submode = self._mode_byte_parts()
        return (
            bytes([0, PROTOCOL_VERSION, DEVICE_TYPE_KKT, self.core.profile.model_code, mode, submode]) + firmware + name
        )

    def _firmware(self, request: CommandRequest) -> bytes:
        source = request.params[0] if request.params else 1
        if source not in (1, 3):
            raise AtolError(19, f"9Dh source {source}: 1 main CPU or 3 bootloader")
        version, subversion, build = self._firmware_parts() if source == 1 else (1, 0, 0)
        return _u(FirmwareVersion(version, subversion, 0, build).encode())

    def _cash_in_drawer(self, _: CommandRequest) -> bytes:
        cash = max(Decimal(0), self.core.cash).quantize(Decimal("0.01"))
        return b"\x4d" + money_to_bcd(cash, 7)

    # -------------------------------------------------------------------------- FN queries

    def _fn_query(self, request: CommandRequest) -> bytes:
        if not request.params:
            raise AtolError(20, "A4h needs a sub-command")
        core = self.core
        sub = request.params[0]
        last = core.last_fd()
        if sub == FnQuery.SHIFT:
            state = ShiftState.CLOSED
            if core.shift.is_open:
                state = ShiftState.EXPIRED if core.shift_expired() else ShiftState.OPEN
            encoding = self._a4_10_encoding()
            limit = 0x10000 if encoding == NumberEncoding.BINARY_LE else 10000
            shift = ShiftParams(state, core.shift.number % limit, (core.shift.receipts + 1) % limit)
            return _u(shift.encode(encoding))
        if sub == FnQuery.OFD_EXCHANGE:
            queue = core.unsent()
            flags = OfdFlags.NONE
            if core.ofd_online:
                flags |= OfdFlags.TRANSPORT_CONNECTED
            if queue:
                flags |= OfdFlags.MESSAGE_WAITING
            return _u(
                OfdExchangeStatus(
                    flags,
                    0,
                    min(len(queue), 0xFFFF),
                    queue[0].number if queue else 0,
                    queue[0].at.replace(second=0) if queue else None,
                ).encode()
            )
        if sub == FnQuery.STATUS:
            return _u(
                FnStatus(
                    phase=int(core.fn.phase),
                    current_document=core.fn_current_document(),
                    document_data_received=core.document is not None and bool(core.document.items),
                    shift_open=core.shift.is_open,
                    warnings=FnWarnings(int(core.fn_warnings())),
                    last_document_at=last.at.replace(second=0),
                    fn_number=core.fn.serial,
                    last_fd_number=last.number,
                ).encode()
            )
        if sub == FnQuery.NUMBER:
            return _u(core.fn.serial.encode("ascii", "replace")[:16].ljust(16, b" "))
        if sub == FnQuery.VALIDITY:
            return _u(
                FnValidity(
                    core.fn_valid_until(), min(core.registrations_left(), 255), min(core.fn.registrations_done, 255)
                ).encode()
            )
        if sub == FnQuery.VERSION:
            return _u(encode_text("fn-emulator 1.0", 16, fill=0x20) + b"\x01")
        if sub == FnQuery.REGISTRATION:
            registration = core.last_registration()
            return _u(
                RegistrationTotals(
                    at=registration.at.replace(second=0),
                    inn=core.fn.inn[:12],
                    rnm=core.fn.rnm[:20],
                    tax_systems=int(registration.tax_systems or core.fn.tax_systems) & 0xFF,
                    work_mode=core.fn.work_mode & 0xFF,
                    fd_number=registration.number,
                    fiscal_sign=int(registration.fiscal_sign) if registration.fiscal_sign.isdigit() else 0,
                ).encode()
            )
        if sub == FnQuery.UNCONFIRMED_COUNT:
            return _u(to_le(min(len(core.unsent()), 0xFFFF), 2))
        raise AtolError(122, f"A4h sub-command {sub:02X}h is not emulated")

    # -------------------------------------------------------------------------- requisites (E9h)

    def _read_requisite(self, request: CommandRequest) -> bytes:
        params = ReadRequisite.decode(request.params)
        core = self.core
        values: dict[int, Callable[[], bytes]] = {
            Tag.KKT_SERIAL: lambda: core.serial.encode("ascii", "replace"),
            Tag.INN: lambda: core.fn.inn.encode("ascii", "replace"),
            Tag.RNM: lambda: core.fn.rnm.encode("ascii", "replace"),
            Tag.FN_SERIAL: lambda: core.fn.serial.encode("ascii", "replace"),
            Tag.TAX_SYSTEMS: lambda: bytes([int(core.fn.tax_systems) & 0xFF]),
            Tag.FFD_VERSION: lambda: bytes([FFD_CODES.get(core.fn.ffd, 2)]),
            Tag.CASHIER: lambda: self._cashier().encode("cp866", "replace"),
        }
        if params.tag not in values:
            raise AtolError(218, f"requisite {params.tag} is not available")
        if params.block != 0:
            raise AtolError(19, "one block only")
        return _u(b"\x01" + encode_tlv(params.tag, values[params.tag]()))
