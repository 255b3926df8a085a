"""Registration commands: 0x60 registration / re-registration, 0x63 technological reset, 0x71
close the ФН, 0xA4 emergency ФН close (reference §2.5.12, §2.5.13).

The emulator's ФН never breaks and cannot be replaced, so the commands meant for a broken or a
replaced ФН refuse as the register does when their precondition is not met [inferred]: 0xA4
(emergency close: for a ФН that cannot run 0x71) and 0x63 (wipes registration data: only with the
ФН's fiscal mode closed) answer 0x01 with extended code 5 (ФН registered) while the ФН is in fiscal
mode, and 0x02 after (re-registration with a new ФН is not emulated).  The lab safety layer keeps
all three from ever reaching a real register that is not proven sacrificial."""

from __future__ import annotations

from harness.device import FnPhase, TaxSystem
from harness.errors import ErrorKind

from ...emulator.core import CoreError
from ..protocol import Field, Request
from .fields import Fields, ParamError, handles


class RegistrationCommands(Fields):
    @handles(0x60)
    def _registration(self, request: Request) -> list[Field]:
        if self._int(request, 0, 0) == 1:
            raise CoreError(ErrorKind.UNSUPPORTED, "ФН replacement is not emulated")
        mask = self._int(request, 3, 0, 43)
        if not 0 < mask < 64:
            raise ParamError(f"bad tax system mask {mask}", 43)
        work_mode = self._int(request, 4, self.core.fn.work_mode, 61)
        doc = self.core.reregister(TaxSystem(mask), cashier=self._field(request, 5), work_mode=work_mode)
        return [doc.number, doc.fiscal_sign, *self._date_time(doc.at)]

    @handles(0x71)
    def _close_fn(self, request: Request) -> list[Field]:
        doc = self.core.close_fn(self._field(request, 0))
        return [doc.number, doc.fiscal_sign, *self._date_time(doc.at)]

    @handles(0x63)
    def _technological_reset(self, request: Request) -> list[Field]:
        self._datetime(request, 0)
        return self._needs_closed_fn("technological reset")

    @handles(0xA4)
    def _emergency_close_fn(self, _: Request) -> list[Field]:
        return self._needs_closed_fn("emergency ФН close")

    def _needs_closed_fn(self, what: str) -> list[Field]:
        self.core.require_power()
        if self.core.fn.phase == FnPhase.FISCAL:
            raise CoreError(ErrorKind.ALREADY_REGISTERED, f"{what}: the ФН is in fiscal mode (close it with 0x71)")
        raise CoreError(ErrorKind.UNSUPPORTED, f"{what}: a new ФН is not emulated")
