"""Marking-code commands (0x79 and its sub-requests, FFD 1.2 editions: the catalogue gates them).

The emulator has no ФН marking module and no ОИСМ: every code it is given is "checked, valid".
State (``core.wire_memory["pirit_marking"]``, not in ``--state`` snapshots): the code last
checked by 0x79/1 and the codes accepted for the document (0x79/2 mode 1, 0x79/15).  Accepted
codes belong to the document being formed: once a document is committed to the ФН after them,
they are gone ("очищаются автоматически при закрытии фискального документа").

Values the manual leaves to the ФН and ОИСМ [inferred, from the FFD 1.2 tag tables]:

* tag 2106 (result of the check): bit 0 checked by the ФН, bit 1 the ФН's result positive, bit 2
  checked by the ОИСМ, bit 3 the ОИСМ's result positive → 15 while the OFD link is up; 3 when it
  is down (the ОИСМ does not answer within 3 s, and tags 2005/2105/2109 are then empty fields, as
  the manual says);
* reason not checked in the ФН: 0 (checked); tag 2005 (results of the request): 3 (bit 0 the
  request is well formed, bit 1 the code's status matches the planned one); tag 2105: 0 (request
  processed); tag 2109: 1 (planned status correct);
* 0x79/0 "flags allowing marking commands" (no table in the manual): bit 0 a code may be sent
  for checking, bit 1 a checked code may be accepted (one is waiting), bit 2 codes are saved for
  the notification;
* no notification is ever pending: 0x79/6 answers no exchange and an empty queue, 7 and 12 a
  length of 0, 8 and 13 no data, 11 and 14 no unconfirmed notifications; 10 (an ОИСМ receipt)
  answers "all codes positive, processed" (0, 0);
* 0x79/16: a check is always required (1); 0x79/52: the ФН keys need no update ("0"), the key
  server is settings element 93.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from harness.errors import ErrorKind

from ...emulator.core import CoreError
from ..protocol import Field, Request, parse_decimal
from .fields import Fields, ParamError, UnknownSub, handles

VALID_ONLINE = 0b1111  # tag 2106: checked and positive in the ФН and the ОИСМ
VALID_OFFLINE = 0b0011  # tag 2106: checked and positive in the ФН only
REQUEST_RESULTS = 3  # tag 2005
REQUEST_CODE = 0  # tag 2105
STATUS_INFO = 1  # tag 2109
PLANNED_STATUSES = range(1, 5)  # tag 2003 / 2110: 1..4
KEY_SERVER_ELEMENT = 93


class MarkingCommands(Fields):
    @property
    def _km_memory(self) -> dict[str, Any]:
        memory: dict[str, Any] = self.core.wire_memory.setdefault(
            "pirit_marking", {"checked": None, "accepted": [], "fd": self.core.last_fd().number}
        )
        if memory["fd"] != self.core.last_fd().number:  # a document was committed: codes are gone
            memory.update(checked=None, accepted=[], fd=self.core.last_fd().number)
        return memory

    @handles(0x79)
    def _marking_command(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        handlers: dict[int, Callable[[Request], list[Field]]] = {
            0: self._km_status,
            1: self._km_check,
            2: self._km_accept,
            3: self._km_clear,
            6: lambda _: [6, 0, 0, 0, "000000", "000000", 0],
            7: lambda _: [7, 0],
            8: self._km_block,
            9: self._km_end_reading,
            10: self._km_receipt,
            11: self._km_mode_code(11, [0, 0, 0, 0]),
            12: self._km_mode_code(12, [0, 0]),
            13: self._km_block,
            14: self._km_confirm,
            15: self._km_include,
            16: self._km_need_check,
            52: self._km_keys,
        }
        handler = handlers.get(n)
        if handler is None:
            raise UnknownSub(0x79, n)
        return handler(request)

    def _km_status(self, _: Request) -> list[Field]:
        memory = self._km_memory
        checked, accepted = memory["checked"], memory["accepted"]
        flags = 0b001 | (0b010 if checked else 0) | (0b100 if accepted else 0)
        return [0, 4 if checked else 1, 1 if accepted else 0, flags, len(accepted), 0, 0]

    def _km_code(self, request: Request, index: int) -> str:
        code = self._field(request, index)
        if not 1 <= len(code) <= 128:
            raise ParamError("marking code: 1..128 characters")
        return code

    def _km_result(self) -> int:
        return VALID_ONLINE if self.core.ofd_online else VALID_OFFLINE

    def _km_check(self, request: Request) -> list[Field]:
        code = self._km_code(request, 1)
        if self._int(request, 2, 0) != 0:
            raise ParamError("marking code processing mode (tag 2102) must be 0")
        status = self._int(request, 3, -1)
        if status not in PLANNED_STATUSES:
            raise ParamError(f"planned status (tag 2003) {status}: 1..4")
        measure = self._int(request, 5, 0)
        self._km_quantity(self._field(request, 4), measure)
        if self._int(request, 6, 0) not in (0, 1):
            raise ParamError("0x79/1 work mode: 0 or 1")
        result = self._km_result()
        self._km_memory["checked"] = {"code": code, "measure": measure, "result": result}
        if result == VALID_OFFLINE:
            return [1, result, 0, None, None, None]
        return [1, result, 0, REQUEST_RESULTS, REQUEST_CODE, STATUS_INFO]

    @staticmethod
    def _km_quantity(raw: str, measure: int) -> None:
        """Tag 1023: a number, or ``n/m`` (n < m) for a piece good (measure 0)."""
        if "/" in raw and measure == 0:
            n, _, m = raw.partition("/")
            if not (n.isdigit() and m.isdigit() and 0 < int(n) < int(m)):
                raise ParamError(f"fractional quantity {raw!r}: n/m with 0 < n < m")
            return
        try:
            if parse_decimal(raw) <= Decimal(0):
                raise ParamError(f"quantity {raw!r} must be positive")
        except (ValueError, InvalidOperation):
            raise ParamError(f"quantity {raw!r} is not a number") from None

    def _km_accept(self, request: Request) -> list[Field]:
        mode = self._int(request, 1, -1)
        if mode not in (0, 1):
            raise ParamError(f"0x79/2 mode {mode}: 0 or 1")
        memory = self._km_memory
        checked = memory["checked"]
        if checked is None:
            raise CoreError(ErrorKind.WRONG_MODE, "0x79/2: no marking code checked (0x79/1)")
        memory["checked"] = None
        if mode == 1:
            memory["accepted"].append(checked)
        return [2, checked["result"]]

    def _km_clear(self, _: Request) -> list[Field]:
        memory = self._km_memory
        memory.update(checked=None, accepted=[])
        return []

    def _km_block(self, request: Request) -> list[Field]:
        n = self._int(request, 0)
        offset, length = self._int(request, 1, -1), self._int(request, 2, -1)
        if offset < 0 or length < 0 or (n == 13 and length > 700):
            raise ParamError(f"0x79/{n}: offset {offset}, length {length}")
        return [n, ""]

    def _km_end_reading(self, request: Request) -> list[Field]:
        if self._int(request, 1, -1) not in (0, 1):
            raise ParamError("0x79/9 mode: 0 or 1")
        return [9]

    def _km_receipt(self, request: Request) -> list[Field]:
        size, data = self._int(request, 1, -1), self._field(request, 2)
        try:
            raw = bytes.fromhex(data)
        except ValueError:
            raise ParamError("0x79/10: receipt data is not hex") from None
        if size != len(raw):
            raise ParamError(f"0x79/10: size {size}, {len(raw)} bytes given")
        return [10, 0, 0]

    def _km_mode_code(self, n: int, answer: list[Field]) -> Callable[[Request], list[Field]]:
        def handler(request: Request) -> list[Field]:
            if self._int(request, 1, -1) not in (0, 1):
                raise ParamError(f"0x79/{n} additional code: 0 or 1")
            return [n, *answer]

        return handler

    def _km_confirm(self, request: Request) -> list[Field]:
        code = self._int(request, 1, -1)
        if code == 0:
            return [14, 0, 0]
        if code == 1:
            raise CoreError(ErrorKind.WRONG_MODE, "0x79/14: no notification to confirm")
        raise ParamError(f"0x79/14 additional code {code}: 0 or 1")

    def _km_include(self, request: Request) -> list[Field]:
        code = self._km_code(request, 1)
        if self._int(request, 2, -1) not in PLANNED_STATUSES:
            raise ParamError("assigned status (tag 2110): 1..4")
        if self._int(request, 3, 0) != 0:
            raise ParamError("marking code processing mode (tag 2102) must be 0")
        result, measure = self._int(request, 4, -1), self._int(request, 5, 0)
        memory = self._km_memory
        known = [c for c in [memory["checked"], *memory["accepted"]] if c is not None]
        if not any(c["code"] == code and c["measure"] == measure for c in known):
            raise ParamError("0x79/15: code and measure must be those checked by 0x79/1")
        if not any(c["code"] == code for c in memory["accepted"]):
            memory["accepted"].append({"code": code, "measure": measure, "result": result})
        return [15]

    def _km_need_check(self, request: Request) -> list[Field]:
        self._km_code(request, 1)
        return [16, 1]

    def _km_keys(self, request: Request) -> list[Field]:
        sub = self._int(request, 1, -1)
        if sub == 0:
            return ["0"]
        if sub == 1:
            table_value = getattr(self, "table_value", None)
            return [str(table_value(KEY_SERVER_ELEMENT)) if table_value else ""]
        raise ParamError(f"0x79/52 sub-request {sub}: 0 or 1")
