"""Registration commands: 0x60 registration / re-registration, 0x63 technological reset, 0x71
close the ФН, 0xA4 emergency ФН close (reference §2.5.12, §2.5.13)."""

from __future__ import annotations

from harness.device import TaxSystem
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
