"""Clock, shift and report commands: 0x10 start of work, 0x13/0x14 date and time, 0x20 X report,
0x21 Z report, 0x23 open shift, 0x59 report on the state of settlements, 0xA0 emergency shift
close, 0xA1/0xA3 copies of the last Z and registration reports, 0x73 print a ФН document
(reference §2.5.7–§2.5.9, §2.5.13)."""

from __future__ import annotations

from harness.device import DocumentKind
from harness.errors import ErrorKind

from ...emulator.core import CoreError
from ..protocol import Field, Request
from .fields import Fields, handles


class ShiftCommands(Fields):
    @handles(0x10)
    def _start_work(self, request: Request) -> list[Field]:
        self.core.start_work(self._datetime(request, 0))
        return []

    @handles(0x13)
    def _get_clock(self, _: Request) -> list[Field]:
        self.core.require_power()
        return self._date_time(self.core.now())

    @handles(0x14)
    def _set_clock(self, request: Request) -> list[Field]:
        self.core.set_rtc(self._datetime(request, 0))
        return []

    @handles(0x23)
    def _open_shift(self, request: Request) -> list[Field]:
        self.core.open_shift(self._field(request, 0))
        return []

    @handles(0x21)
    def _close_shift(self, request: Request) -> list[Field]:
        self.core.close_shift(self._field(request, 0))
        return []

    @handles(0xA0)
    def _emergency_close_shift(self, request: Request) -> list[Field]:
        """For a broken ФН; with a working one the device makes the ordinary Z report [inferred:
        the manual describes only the broken-ФН case]."""
        self.core.close_shift("")
        return []

    @handles(0x20)
    def _x_report(self, request: Request) -> list[Field]:
        self.core.x_report(self._field(request, 0))
        return []

    @handles(0x59)
    def _state_report(self, request: Request) -> list[Field]:
        self.core.state_report(self._field(request, 0))
        return []

    @handles(0xA1)
    def _reprint_last_z(self, _: Request) -> list[Field]:
        closes = [d for d in self.core.fn.archive if d.kind == DocumentKind.SHIFT_CLOSE]
        if not closes:
            raise CoreError(ErrorKind.OTHER, "no Z report in the ФН")
        self.core.print_document(closes[-1].number)
        return []

    @handles(0xA3)
    def _reprint_registration(self, _: Request) -> list[Field]:
        self.core.print_document(self.core.last_registration().number)
        return []

    @handles(0x73)
    def _print_document(self, request: Request) -> list[Field]:
        number = self._int(request, 0, 0)
        if number == 0:
            number = self.core.last_registration().number
        self.core.print_document(number)
        return []
