"""ФН requests: 0x78 and its sub-requests (reference §2.5.11; the manual's 0x78 table), answered
from the fiscal core's ФН and its archive.

Request: ``n``, then (field 2) a document number, offset or mode, and (field 3) a block size.
Answers, after the echoed ``n``:

* 1 ФН serial; 2 state mask, current document, warnings; 3 last FD; 4 registration date, time;
  5 FD of the last registration; 6 shift number, open flag, next receipt number in the shift;
  7 OFD exchange status, documents waiting, first waiting FD, its date and time;
* 11 document ``field 2`` from the archive: OFD receipt flag (1 received), then the document as
  the ФН's "find document" answer gives it, in hex: type (form code), date-time (5 bytes yy mm
  dd hh mm), FD (uint32), FP (uint32), then by type — receipt/correction: settlement sign (1),
  total (5-byte kopecks); shift open/close: shift number (uint16); (re-)registration: ИНН (12),
  РНМ (20), tax systems (1), work mode (1); ФН close: ИНН, РНМ; state report: nothing more.
  Integers little-endian, text CP866 padded with spaces [inferred from the ФН's protocol: the
  manual says only "block of the document's data"];
* 12 the OFD receipt of document ``field 2``: date-time (5), the OFD's FP (18 bytes), FD
  (uint32), in hex; the core keeps no delivery time or OFD signature, so the time is the
  document's and the signature is derived from its FP [inferred].  No receipt yet: 0x03;
* 13 the manual's "last ФН errors" block in hex: the emulated ФН records none, so one byte
  0x00 (no entries) [inferred]; the catalogue's title for 13 ("ФД без квитанции") is not the
  manual's;
* 14 ФН firmware, ФН type (1 serial), ФФД of the ФН (1209), ККТ version (1188), ФФД of the ККТ
  (1189);
* 15 start reading document ``field 2`` as TLV: its type (form code) and the TLV's byte count;
  16 the next block of it in hex (``field 2`` an offset, default where the last block ended;
  ``field 3`` the block size, default the rest up to 512 bytes); past the end: 0x03;
* 17 FD number of the current (or last) shift's opening report (0 before the first shift);
* 18 (punix) resource: approx. 5-year documents left, free KB for 30-day (OFD) storage
  [inferred capacities: 250 000 documents, 512 KB at 2 documents a KB];
* 19 last (re-)registration: FD, FP, date, time;
* 20 choose registration ``field 2`` (1 = at activation): its kind (1 registration, 11
  re-registration); 21 the next block of its TLV in hex, as 16 does;
* 22 (FFD 1.2) current and maximum ФФД code (2 = 1.05, 4 = 1.2);
* 23 (FFD 1.2) ФН counters: ``field 2`` 1 the whole ФН / 0 the shift, ``field 3`` the settlement
  sign 1..4: receipts, total, sums by cash, electronic, prepaid, credit, other, VAT 20 %, 10 %,
  0 % (tax 0), total of receipts without VAT (receipts of no-VAT items only [inferred: the
  archive keeps taxes, not turnover by rate]), VAT 20/120 and 10/110 (0: the core's rates are
  the first four), corrections, their total.

The TLV of a document (FFD tags, tag and length uint16 little-endian): 1040 FD, 1012 date-time
(unixtime of the local time), 1077 ФПД (2 zero bytes + FP uint32 big-endian [inferred]), 1041
ФН serial, 1018 ИНН, 1037 РНМ, and by type — registration: 1062 tax systems, 1209 ФФД; shift:
1038; receipt/correction: 1038, 1042 number in shift, 1054 settlement sign, 1055 tax system,
1020 total, 1031/1081/1215/1216/1217 payment sums, 1102/1103 VAT 20 %/10 % sums when not zero
(money as kopecks, little-endian, fewest bytes).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from harness.device import DocumentKind, PaymentKind, ReceiptKind, Vat

from ...emulator.cashdesk import RECEIPT_FORMS as RECEIPTS
from ...emulator.records import Document
from ...emulator.rules import REGISTRATION_KINDS as REGISTRATIONS
from ..protocol import ENCODING, Field, Request
from .counters import kind_totals
from .fields import Fields, ParamError, UnknownSub, ffd_code, handles, money

TLV_BLOCK = 512  # 0x78/16, /21: default block size (bytes)
FN_ARCHIVE_CAPACITY = 250_000  # 0x78/18 [inferred]
OFD_STORAGE_KB = 512
SHIFT_REPORTS = (DocumentKind.SHIFT_OPEN, DocumentKind.SHIFT_CLOSE)
PAYMENT_TAGS = {
    PaymentKind.CASH: 1031,
    PaymentKind.ELECTRONIC: 1081,
    PaymentKind.PREPAID: 1215,
    PaymentKind.CREDIT: 1216,
    PaymentKind.OTHER: 1217,
}
VAT_TAGS = {Vat.VAT20: 1102, Vat.VAT10: 1103}


class FnQueries(Fields):
    @handles(0x78)
    def _fn_query(self, request: Request) -> list[Field]:
        core = self.core
        n = self._int(request, 0, -1)
        last = core.last_fd()
        registration = core.last_registration()
        answers: dict[int, Callable[[], list[Field]]] = {
            1: lambda: [core.fn.serial],
            2: lambda: [
                int(core.fn.phase) | ((1 << 5) if core.shift.is_open else 0),
                core.fn_current_document(),
                int(core.fn_warnings()),
            ],
            3: lambda: [last.number],
            4: lambda: self._date_time(registration.at),
            5: lambda: [registration.number],
            6: lambda: [core.shift.number, 1 if core.shift.is_open else 0, core.shift.receipts + 1],
            7: self._ofd_exchange,
            11: lambda: self._archive_document(self._document(request)),
            12: lambda: self._ofd_receipt(self._document(request)),
            13: lambda: ["00"],
            14: lambda: ["fn-emulator 1.0", 1, ffd_code(core.fn.ffd), core.firmware, ffd_code(core.profile.ffd)],
            15: lambda: self._start_tlv(self._document(request)),
            16: lambda: self._tlv_block("pirit_tlv", request),
            17: lambda: [self._shift_start_fd()],
            18: self._resource,
            19: lambda: [registration.number, registration.fiscal_sign, *self._date_time(registration.at)],
            20: lambda: self._choose_registration(self._int(request, 1, 0)),
            21: lambda: self._tlv_block("pirit_registration_tlv", request),
            22: lambda: [ffd_code(core.fn.ffd), 4],
            23: lambda: self._fn_counters(self._int(request, 1, 1), self._int(request, 2, 1)),
        }
        if n not in answers:
            raise UnknownSub(0x78, n)
        return [n, *answers[n]()]

    # ---------------------------------------------------------------------- state

    def _ofd_exchange(self) -> list[Field]:
        queue = self.core.unsent()
        status = (1 if self.core.ofd_online else 0) | ((1 << 1) if queue else 0)
        if not queue:
            return [status, 0, 0, "000000", "000000"]
        return [status, len(queue), queue[0].number, *self._date_time(queue[0].at)]

    def _shift_start_fd(self) -> int:
        number = self.core.shift.number
        opens = [
            d.number for d in self.core.fn.archive if d.kind == DocumentKind.SHIFT_OPEN and d.shift_number == number
        ]
        return opens[-1] if opens else 0

    def _resource(self) -> list[Field]:
        core = self.core
        left = max(0, FN_ARCHIVE_CAPACITY - len(core.fn.archive))
        return [left, max(0, OFD_STORAGE_KB - (len(core.unsent()) + 1) // 2)]

    def _fn_counters(self, whole: int, sign: int) -> list[Field]:
        """0x78/23: the ФН's counters of one settlement sign, over the ФН or the shift."""
        if whole not in (0, 1):
            raise ParamError(f"0x78/23: counter type {whole} is neither 0 (shift) nor 1 (ФН)")
        if sign not in range(1, 5):
            raise ParamError(f"0x78/23: settlement sign {sign} not in 1..4")
        kind = ReceiptKind(sign)
        shift = None if whole else self.core.shift.number
        docs = [
            d
            for d in self.core.fn.archive
            if d.kind in RECEIPTS and d.receipt_kind == kind and (shift is None or d.shift_number == shift)
        ]
        receipts = kind_totals(d for d in docs if not d.correction)
        corrections = kind_totals(d for d in docs if d.correction)
        untaxed = sum(
            (d.total or Decimal(0) for d in docs if not d.correction and set(d.taxes) == {"none"}), Decimal(0)
        )
        pays = [money(receipts.payments.get(p.value, Decimal(0))) for p in PAYMENT_TAGS]
        taxes = [money(receipts.taxes.get(v.value, Decimal(0))) for v in (Vat.VAT20, Vat.VAT10)]
        return [
            receipts.count,
            money(receipts.total),
            *pays,
            *taxes,
            "0.00",
            money(untaxed),
            "0.00",
            "0.00",
            corrections.count,
            money(corrections.total),
        ]

    # ---------------------------------------------------------------------- archive

    def _document(self, request: Request) -> Document:
        return self.core.document_by_number(self._int(request, 1, 0))

    def _archive_document(self, doc: Document) -> list[Field]:
        """0x78/11: the receipt flag and the ФН's structure of the document, in hex."""
        core = self.core
        data = bytes([int(doc.kind)]) + _fn_datetime(doc.at) + _u32(doc.number) + _u32(_fp(doc))
        if doc.kind in RECEIPTS:
            data += bytes([int(doc.receipt_kind or ReceiptKind.SALE)]) + _kopecks(doc.total or Decimal(0), 5)
        elif doc.kind in SHIFT_REPORTS:
            data += (doc.shift_number or 0).to_bytes(2, "little")
        elif doc.kind in (*REGISTRATIONS, DocumentKind.FN_CLOSE):
            data += _text(core.fn.inn, 12) + _text(core.fn.rnm, 20)
            if doc.kind in REGISTRATIONS:
                data += bytes([int(doc.tax_systems or core.fn.tax_systems), core.fn.work_mode])
        return [1 if doc.delivered else 0, data.hex().upper()]

    def _ofd_receipt(self, doc: Document) -> list[Field]:
        if not doc.delivered:
            raise ParamError(f"0x78/12: no OFD receipt for FD {doc.number} yet")
        signature = _fp(doc).to_bytes(18, "big")
        return [(_fn_datetime(doc.at) + signature + _u32(doc.number)).hex().upper()]

    def _start_tlv(self, doc: Document) -> list[Field]:
        tlv = self._tlv(doc)
        self.core.wire_memory["pirit_tlv"] = (doc.number, 0)
        return [int(doc.kind), len(tlv)]

    def _choose_registration(self, index: int) -> list[Field]:
        """0x78/20: the ``index``-th registration of this ФН (1 = the registration at activation):
        its kind (1 registration, 11 re-registration); 21 then reads its TLV.  Beyond the
        registrations done: 0x03 [inferred: the manual names no code for "no such registration"]."""
        core = self.core
        if not 1 <= index <= core.fn.registrations_done:
            raise ParamError(f"0x78/20: no registration {index} on this ФН ({core.fn.registrations_done} done)")
        documents = [d for d in core.fn.archive if d.kind in REGISTRATIONS]
        # the archive may hold only the last of them (a prepared ФН): number the known ones from the end
        known = index - (core.fn.registrations_done - len(documents)) - 1
        number = documents[known].number if 0 <= known < len(documents) else 0
        core.wire_memory["pirit_registration_tlv"] = (number, 0)
        return [1 if index == 1 else 11]

    def _tlv_block(self, key: str, request: Request) -> list[Field]:
        """0x78/16, /21: the next block of the TLV chosen by 15 (or 20)."""
        chosen = self.core.wire_memory.get(key)
        if chosen is None:
            raise ParamError("no document chosen for a TLV read (0x78/15 or /20 first)")
        number, position = chosen
        tlv = self._tlv(self.core.document_by_number(number)) if number else b""
        offset = self._int(request, 1, position)
        size = self._int(request, 2, 0) or TLV_BLOCK
        if not 0 <= offset < len(tlv):
            raise ParamError(f"TLV of FD {number}: nothing at offset {offset} ({len(tlv)} bytes)")
        block = tlv[offset : offset + size]
        self.core.wire_memory[key] = (number, offset + len(block))
        return [block.hex().upper()]

    def _tlv(self, doc: Document) -> bytes:
        core = self.core
        out = _tag(1040, _u32(doc.number)) + _tag(1012, _u32(calendar.timegm(doc.at.timetuple())))
        out += _tag(1077, bytes(2) + _fp(doc).to_bytes(4, "big"))
        out += _tag(1041, core.fn.serial.encode(ENCODING)) + _tag(1018, _text(core.fn.inn, 12))
        out += _tag(1037, core.fn.rnm.encode(ENCODING))
        if doc.kind in REGISTRATIONS:
            out += _tag(1062, bytes([int(doc.tax_systems or core.fn.tax_systems)]))
            out += _tag(1209, bytes([ffd_code(core.fn.ffd)]))
        elif doc.kind in SHIFT_REPORTS:
            out += _tag(1038, _u32(doc.shift_number or 0))
        elif doc.kind in RECEIPTS:
            out += _tag(1038, _u32(doc.shift_number or 0)) + _tag(1042, _u32(doc.number_in_shift or 0))
            out += _tag(1054, bytes([int(doc.receipt_kind or ReceiptKind.SALE)]))
            out += _tag(1055, bytes([int(doc.tax_system or 0)]))
            out += _tag(1020, _vln(doc.total or Decimal(0)))
            for payment, tag in PAYMENT_TAGS.items():
                out += _tag(tag, _vln(doc.payments.get(payment.value, Decimal(0))))
            for vat, tag in VAT_TAGS.items():
                if doc.taxes.get(vat.value):
                    out += _tag(tag, _vln(doc.taxes[vat.value]))
        return out


def _fp(doc: Document) -> int:
    return int(doc.fiscal_sign) if doc.fiscal_sign.isdigit() else 0


def _tag(tag: int, value: bytes) -> bytes:
    return tag.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def _kopecks(amount: Decimal, size: int) -> bytes:
    return int((amount * 100).to_integral_value()).to_bytes(size, "little")


def _vln(amount: Decimal) -> bytes:
    """FFD VLN money: kopecks, little-endian, the fewest bytes (at least one)."""
    kopecks = int((amount * 100).to_integral_value())
    return kopecks.to_bytes(max(1, (kopecks.bit_length() + 7) // 8), "little")


def _text(value: str, size: int) -> bytes:
    return value.encode(ENCODING)[:size].ljust(size, b" ")


def _fn_datetime(at: datetime) -> bytes:
    return bytes([at.year % 100, at.month, at.day, at.hour, at.minute])
