"""Information requests answered from the fiscal core: 0x01 shift counters and registers
(:mod:`.counters`), 0x02 device information, 0x03 receipt data, 0x05 service information
(reference §2.5.3–§2.5.5; the manual's tables for each edition).  Which sub-requests an edition
has is the catalogue's (:mod:`devices.pirit.catalogue`); the front-end refuses the others.

0x02 answers, after the echoed number: 1 serial; 2 firmware id; 3 ИНН; 4 РНМ; 5 date, time of
the last FD; 6 date of the last (re-)registration (a date only); 7 cash in the drawer; 8 next FD
number; 9 shift number at the last (re-)registration (the last shift before it, 0 when none);
10 next X report number (X reports over the device's life + 1); 11 operation counter (a
string); 12 grand totals over the ФН archive: sale, return of sale, purchase, return of purchase
(receipts only [inferred: corrections are the ФН counters' own, 0x78/23]); 14 ФН validity end
date (FFD 1.2 editions: and days left); 15 firmware type 0 (standard); 16 paper of the current
design (1 = 57 mm for Viki Mini/Tower/57/57+, else 0 = 80 mm); 17 date, time the shift opened;
FM16 only: 18 characters per line of font n (field 2, default 0), 19/20 the SD card's CID/CSD
registers (16 bytes hex, fixed plausible values with a valid CRC7), 22 interface mask (bit 2 SD,
bit 3 ФН), 40 VAT 20 % transition done (1); 21 model code; 23 tax systems, work mode,
additional mode 0; 24 header and footer line limits (settings tables 30 and 31: 4 and 10
[inferred]); 70 firmware version; 71 (FM16, FFD 1.2) Wi-Fi module version, fixed.

0x03: 1 the open receipt's sum, discount (0: not emulated), 0; 2 the last closed receipt: type
(0x30 type: 2 sale, 3 return, 6 purchase, 7 purchase return), operation counter (a string),
receipt number in its shift, document number, sum, discount, 0, FP, FD number.  The document
number is the FD number [inferred: the core keeps no per-document through number]; an annulled
receipt is never "the last closed one" here (the core does not record when it was annulled, so
type 0 is not answered).

0x05: fixed device values of an emulated printer, except the cutter and head counters, which
follow the tape: a cut per document printed, 4 mm of thermal head per printed line [inferred];
5 and 6 reset the resettable ones (wire memory: the device keeps them over connections).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from harness.device import ReceiptKind

from ...emulator.records import CUT
from ..protocol import Field, Request, format_date
from .counters import CounterQueries
from .fields import TYPE_BY_RECEIPT, ParamError, UnknownSub, handles, money

SUPPLY_MV = 24000  # 0x05/1 [inferred: a 24 V adapter]
HEAD_CELSIUS = 31  # 0x05/2
BATTERY_MV = 3050  # 0x05/7: the clock's CR2032
MM_PER_LINE = 4  # 0x05/4, /9: head resource in mm per printed line [inferred]
HEADER_LINES, FOOTER_LINES = 4, 10  # 0x02/24: settings table 30 (lines 0..3) and 31 (0..9)
WIFI_VERSION = "1.0.4"  # 0x02/71 [inferred]
PRINTER_BIOS = ("1.12", "150319")  # 0x05/11, /13 [inferred]
CHARS_PER_LINE = {80: (48, 64), 57: (32, 42)}  # paper mm → (font 0, other fonts) [inferred]
SD_CID_HEAD = bytes.fromhex("035344534430324780")  # MID 03, OID "SD", PNM "SD02G", PRV 8.0 [inferred]
SD_CID_DATE = bytes.fromhex("0134")  # MDT: April 2019
SD_CSD = bytes.fromhex("400E00325B59000076B27F800A4040")  # SDHC, CSD v2


class InfoQueries(CounterQueries):
    # -------------------------------------------------------------------------- 0x02

    @handles(0x02)
    def _device_info(self, request: Request) -> list[Field]:
        core = self.core
        n = self._int(request, 0, -1)
        last = core.last_fd()
        registration = core.last_registration()
        answers: dict[int, Callable[[], list[Field]]] = {
            1: lambda: [core.serial],
            2: lambda: [core.profile.firmware_id],
            3: lambda: [core.fn.inn],
            4: lambda: [core.fn.rnm],
            5: lambda: self._date_time(last.at),
            6: lambda: self._date(registration.at),  # a date only (every edition's table)
            7: lambda: [money(core.cash)],
            8: lambda: [last.number + 1],
            9: lambda: [self._registration_shift()],
            10: lambda: [core.counters.x_reports + 1],
            11: lambda: [str(core.counters.operations)],
            12: self._grand_totals,
            14: lambda: [  # FFD 1.2 editions add the days left
                format_date(core.fn_valid_until()),
                *([max(0, (core.fn_valid_until() - core.now().date()).days)] if self.ffd12 else []),
            ],
            15: lambda: [0],
            16: lambda: [1 if self._paper_mm() == 57 else 0],
            17: lambda: self._date_time(core.shift.opened_at if core.shift.is_open else None),
            18: lambda: [self._chars_per_line(self._int(request, 1, 0))],
            19: lambda: [_with_crc7(SD_CID_HEAD + self._sd_serial() + SD_CID_DATE)],
            20: lambda: [_with_crc7(SD_CSD)],
            21: lambda: [core.profile.model_code],
            22: lambda: [(1 << 2) | (1 << 3)],
            23: lambda: [int(core.fn.tax_systems), core.fn.work_mode, 0],
            24: lambda: [HEADER_LINES, FOOTER_LINES],
            40: lambda: [1],
            70: lambda: [core.firmware],
            71: lambda: [WIFI_VERSION],
        }
        if n not in answers:
            raise UnknownSub(0x02, n)
        return [n, *answers[n]()]

    def _registration_shift(self) -> int:
        """The shift number when the last (re-)registration was made: the last shift before it."""
        registration = self.core.last_registration()
        before = [d.shift_number or 0 for d in self.core.fn.archive if d.number < registration.number]
        return max(before, default=0)

    def _grand_totals(self) -> list[Field]:
        totals = self.core.totals()
        kinds = (ReceiptKind.SALE, ReceiptKind.SALE_RETURN, ReceiptKind.PURCHASE, ReceiptKind.PURCHASE_RETURN)
        return [money(totals.receipts[kind].total) for kind in kinds]

    def _paper_mm(self) -> int:
        return 57 if self.core.profile.model_code in range(1, 5) else 80

    def _chars_per_line(self, font: int) -> int:
        if not 0 <= font <= 6:
            raise ParamError(f"0x02/18: no font {font}")
        normal, small = CHARS_PER_LINE[self._paper_mm()]
        return normal if font == 0 else small

    def _sd_serial(self) -> bytes:
        digits = "".join(ch for ch in self.core.serial if ch.isdigit()) or "0"
        return (int(digits) % (1 << 32)).to_bytes(4, "big")

    # -------------------------------------------------------------------------- 0x03

    @handles(0x03)
    def _receipt_data(self, request: Request) -> list[Field]:
        """0x03/2's field 5 is the receipt's sum (the driver's read-back checks it)."""
        n = self._int(request, 0, -1)
        core = self.core
        if n == 1:
            doc = core.document
            if doc is None:
                return [n, "0.00", "0.00", "0.00"]
            return [n, money(doc.total), money(doc.discount), "0.00"]
        if n == 2:
            receipts = [d for d in core.fn.archive if d.receipt_kind is not None]
            operations = str(core.counters.operations)
            counters = core.counters
            if counters.annulled_after >= (receipts[-1].number if receipts else 0):
                # an annulled receipt came last: type 0, its sum, nothing fiscal (the manual: "0 for annulled")
                return [n, 0, operations, 0, 0, money(Decimal(counters.annulled_total)), "0.00", "0.00", "", 0]
            if not receipts:
                return [n, 0, operations, 0, 0, "0.00", "0.00", "0.00", "", 0]
            d = receipts[-1]
            return [
                n,
                TYPE_BY_RECEIPT.get(d.receipt_kind or ReceiptKind.SALE, 2),
                operations,
                d.number_in_shift or 0,
                d.number,
                money(d.total or Decimal(0)),
                "0.00",
                "0.00",
                d.fiscal_sign,
                d.number,
            ]
        raise UnknownSub(0x03, n)

    # -------------------------------------------------------------------------- 0x05

    @handles(0x05)
    def _service_info(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        cuts, lines = self._printed()
        cuts_reset, lines_reset = self.core.wire_memory.get("pirit_service_reset", (0, 0))
        answers: dict[int, Callable[[], list[Field]]] = {
            1: lambda: [SUPPLY_MV],
            2: lambda: [HEAD_CELSIUS],
            3: lambda: [cuts - cuts_reset],
            4: lambda: [(lines - lines_reset) * MM_PER_LINE],
            5: lambda: self._reset_service(cuts, lines_reset),
            6: lambda: self._reset_service(cuts_reset, lines),
            7: lambda: [BATTERY_MV],
            8: lambda: [cuts],
            9: lambda: [lines * MM_PER_LINE],
            10: lambda: [f"TP{self._paper_mm()}"],
            11: lambda: [PRINTER_BIOS[0]],
            12: lambda: [f"PU{self.core.serial}"],
            13: lambda: [PRINTER_BIOS[1]],
        }
        if n not in answers:
            raise UnknownSub(0x05, n)
        return [n, *answers[n]()]

    def _printed(self) -> tuple[int, int]:
        """Cuts and printed lines over the device's life: the tape's."""
        tape = self.core.tape
        cuts = sum(1 for line in tape if line == CUT)
        return cuts, len(tape) - cuts

    def _reset_service(self, cuts: int, lines: int) -> list[Field]:
        self.core.wire_memory["pirit_service_reset"] = (cuts, lines)
        return []


def _with_crc7(body: bytes) -> str:
    """An SD card register: 15 bytes, then CRC7 << 1 | 1, as 32 hex digits (most significant first)."""
    crc = 0
    for byte in body[:15]:
        for bit in range(7, -1, -1):
            crc <<= 1
            if ((byte >> bit) & 1) ^ ((crc >> 7) & 1):
                crc ^= 0x09
            crc &= 0x7F
    return (body[:15] + bytes([(crc << 1) | 1])).hex().upper()
