"""ФН requests: 0x78 and its sub-requests (reference §2.5.11), answered from the fiscal core."""

from __future__ import annotations

from harness.device import DocumentKind

from ..protocol import Field, Request
from .fields import Fields, ParamError, ffd_code, handles


class FnQueries(Fields):
    @handles(0x78)
    def _fn_query(self, request: Request) -> list[Field]:
        core = self.core
        n = self._int(request, 0, -1)
        last = core.last_fd()
        registration = core.last_registration()
        if n == 1:
            return [n, core.fn.serial]
        if n == 2:
            state = int(core.fn.phase) | ((1 << 5) if core.shift.is_open else 0)
            return [n, state, core.fn_current_document(), int(core.fn_warnings())]
        if n == 3:
            return [n, last.number]
        if n == 4:
            return [n, *self._date_time(registration.at)]
        if n == 5:
            return [n, registration.number]
        if n == 6:
            return [n, core.shift.number, 1 if core.shift.is_open else 0, core.shift.receipts + 1]
        if n == 7:
            queue = core.unsent()
            status = (1 if core.ofd_online else 0) | ((1 << 1) if queue else 0)
            if not queue:
                return [n, status, 0, 0, "000000", "000000"]
            return [n, status, len(queue), queue[0].number, *self._date_time(queue[0].at)]
        if n == 14:
            return [n, "fn-emulator 1.0", 1, ffd_code(core.fn.ffd), core.firmware, ffd_code(core.profile.ffd)]
        if n == 19:
            return [n, registration.number, registration.fiscal_sign, *self._date_time(registration.at)]
        if n in (20, 21):
            return [n, *self._registration_tlv(self._int(request, 1, 0))]
        if n == 22:
            return [n, ffd_code(core.fn.ffd), 4]
        raise ParamError(f"0x78 sub-request {n} not supported")

    def _registration_tlv(self, index: int) -> list[Field]:
        """0x78/20: the ``index``-th registration of this ФН (1 = the registration at activation):
        its kind (1 registration, 11 re-registration) and its FD number as a 1040 TLV, in hex.
        Beyond the registrations done: 0x03 [inferred: the manual names no code for "no such
        registration"]."""
        core = self.core
        if not 1 <= index <= core.fn.registrations_done:
            raise ParamError(f"0x78/20: no registration {index} on this ФН ({core.fn.registrations_done} done)")
        documents = [d for d in core.fn.archive if d.kind in (DocumentKind.REGISTRATION, DocumentKind.REREGISTRATION)]
        # the archive may hold only the last of them (a prepared ФН): number the known ones from the end
        known = index - (core.fn.registrations_done - len(documents)) - 1
        number = documents[known].number if 0 <= known < len(documents) else 0
        kind = 1 if index == 1 else 11
        return [
            kind,
            (1040).to_bytes(2, "little").hex() + (4).to_bytes(2, "little").hex() + number.to_bytes(4, "little").hex(),
        ]
