"""What a host adds to an open document besides items and payments: free text (0x40), barcodes
(0x41), requisites (0x24 item requisites, 0x25 report requisites, 0x49, 0x57), a loaded picture
(0x56), the cut (0x34), the receipt discount (0x45), department sums (0x50), the total check and
set (0x52, 0x64), and the copy of a receipt (0x53).

The manual's sections of these commands are the same in every edition but for the fonts (FM16
has fewer), 0x24 (FFD 1.05: code 1162 of at most 32 bytes; FFD 1.2: code 1163 and the 1262-1265
fields), 0x25 (FFD 1.2 only: the catalogue gates it), 0x56 (not FM16; Пирит 2Ф: pictures 1..10)
and 0x57 (the codes it takes differ by FFD).  Printed lines go into the open document
(``core.add_text``) and reach the tape when it closes.

What the core does not hold yet is kept per open document in ``core.wire_memory`` as
``(document, data)``, ``data`` belonging to that document only: ``pirit_item_requisites`` (0x24,
for the next 0x42), ``pirit_ofd_requisites`` (0x57 tag → value), ``pirit_department_sums``
(0x50), ``pirit_copy`` (0x53), ``pirit_join`` (a line opened with '&'); and
``pirit_report_requisites`` (0x25, report number → name, data) for the next report.  Names come
from the settings table (``pirit_settings``: 50 departments, 52 requisites), pictures from 0x18
(``pirit_pictures``).  A refusal answered 0x01 carries the manual's extended code in
:class:`DocumentRefusal` ``.extended`` (the front-end answers 11 for now).  0x45 and 0x64 change
the open receipt's total through :func:`set_receipt_total`: the core has no discount of its own.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from harness.device import PaperState, TaxSystem, Vat
from harness.errors import ErrorKind

from ...emulator.core import CoreError
from ...emulator.printing import RECEIPT_TITLES
from ...emulator.records import CUT, VAT_RATES, DocumentForm, OpenDocument, ReceiptStep
from ..catalogue import FM16, PIRIT2F
from ..protocol import ENCODING, Field, Request, parse_date, parse_time
from .fields import RECEIPT_BY_TYPE, Fields, ParamError, handles

TEXT_MAX = 72  # 0x40, 0x49 and 0x57 lines: Строка[1..72]
# highest font number of the text attributes (bits 0..3): FM16 0x40 has two fonts, its 0x49/0x57 three
FONTS = {FM16: 1}
REQUISITE_FONTS = {FM16: 2}
OTHER_FONTS = 6
BARCODES = {
    0: "UPC-A",
    1: "UPC-E",
    2: "EAN-13",
    3: "EAN-8",
    4: "Code 39",
    5: "Interleaved 2 of 5",
    6: "Codabar",
    7: "PDF417",
    8: "QR CODE",
    9: "Code 128 A",
}
TWO_D = frozenset({7, 8})  # the height is for linear codes only
NARROW = frozenset({0, 2})  # UPC-A and EAN-13: width at most 6
# digits with or without the check digit [inferred: the symbologies' own lengths]
DIGITS = {0: (11, 12), 1: (6, 8), 2: (12, 13), 3: (7, 8), 5: (1, TEXT_MAX)}
# FFD 1.05 tag 1162: the code's first two bytes (FM16 manual, from 665.2.29; kept for every edition)
CODE_TYPES = frozenset(
    {b"\x00\x05", b"\x15\x20", b"\x45\x08", b"\x45\x0d", b"\x49\x0e", b"\x44\x4d", b"\x52\x46", b"\x52\x47"}
    | {b"\xc5\x14", b"\xc5\x1e"}
)
UNRECOGNISED = "Unrecogn"
PHONE_TAGS = frozenset({1073, 1074, 1075, 1171})
# 0x24: field index → (tag, most characters); 0: the code, 3: agent sign 1222, 15: date 1263
ITEM_TEXT = {1: (1191, 64), 4: (1226, 12), 5: (1171, 40), 6: (1225, 256), 7: (1005, 256), 8: (1016, 12)}
ITEM_TEXT |= {9: (1026, 64), 10: (1075, 40), 11: (1044, 24), 12: (1073, 60), 13: (1074, 60)}
ITEM_TEXT_12 = {14: (1262, 3), 16: (1264, 32), 17: (1265, 256)}
# 0x57: code → most characters of the value, by FFD
OFD_CODES_105 = {1005: 256, 1016: 12, 1026: 64, 1044: 24, 1057: 3, 1073: 19, 1074: 19, 1075: 19, 1171: 19, 1192: 16}
OFD_CODES_12 = {1192: 16, 1262: 3, 1263: 8, 1264: 32, 1265: 256, 1271: 3, 1272: 64, 1273: 10}
DISCOUNT_MAX = Decimal("0.99")
CENT = Decimal("0.01")


class DocumentRefusal(CoreError):
    """The open document is in the wrong form or step: 0x01 with the manual's ``extended`` code
    (12 step not 1/2, 16 not a receipt, 19 a service document, 35 one discount only)."""

    def __init__(self, text: str, extended: int) -> None:
        super().__init__(ErrorKind.DOCUMENT_STATE, text)
        self.extended = extended


def unescape(text: str) -> bytes | None:
    """A code or data field as bytes: ``$xy`` is the byte 0xXY; None if an escape is malformed."""
    out = bytearray()
    parts = text.split("$")
    out += parts[0].encode(ENCODING, "replace")
    for part in parts[1:]:
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", part[:2]):
            return None
        out.append(int(part[:2], 16))
        out += part[2:].encode(ENCODING, "replace")
    return bytes(out)


def set_receipt_total(doc: OpenDocument, total: Decimal) -> None:
    """Make ``total`` the open receipt's total (0x45 discount, 0x64 set total): the core's close
    commits ``doc.total``.  What it differs from the items' sum by is spread over the tax groups
    in proportion to their sums (the last takes the rounding); each group's tax is then the items'
    own (as the core adds them) plus the change of the tax of the group's sum, so it can be set
    again (0x64 after 0x45)."""
    groups: dict[str, Decimal] = {}
    taxes: dict[str, Decimal] = {}
    for item in doc.items:
        amount = (Decimal(item["price"]) * Decimal(item["quantity"])).quantize(CENT)
        groups[item["vat"]] = groups.get(item["vat"], Decimal(0)) + amount
        taxes[item["vat"]] = taxes.get(item["vat"], Decimal(0)) + _tax(amount, item["vat"])
    base = sum(groups.values(), Decimal(0))
    delta = left = total - base
    for index, (vat, amount) in enumerate(sorted(groups.items())):
        share = left if index == len(groups) - 1 else (delta * amount / base).quantize(CENT) if base else Decimal(0)
        left -= share
        doc.taxes[vat] = taxes[vat] + _tax(amount + share, vat) - _tax(amount, vat)
    doc.total = total


def _tax(amount: Decimal, vat: str) -> Decimal:
    rate = VAT_RATES[Vat(vat)]
    return (amount * rate / (1 + rate)).quantize(Decimal("0.0001"))


class RequisiteCommands(Fields):
    edition: str

    # ------------------------------------------------------------------ shared checks

    def _text(self, request: Request, index: int, most: int, extended: int = 0, *, least: int = 0) -> str:
        value = self._field(request, index)
        if not least <= len(value) <= most:
            raise ParamError(f"field {index + 1}: {len(value)} characters, not {least}..{most}", extended)
        return value

    def _attributes(self, request: Request, index: int, fonts: dict[str, int]) -> int:
        """Text attributes: bits 0..3 the font (the edition's table), 4 double height, 5 double width."""
        value = self._int(request, index, 0)
        if not 0 <= value <= 0xFF or value & 0x0F > fonts.get(self.edition, OTHER_FONTS):
            raise ParamError(f"bad text attributes {value}")
        return value

    def _open(self, forms: frozenset[DocumentForm], extended: int) -> OpenDocument:
        """The open document, which must be of one of ``forms`` (else 0x01 + ``extended``)."""
        self.core.require_power()
        doc = self.core.current_document()  # none open: 0x01 + extended 8
        if doc.form not in forms:
            raise DocumentRefusal(f"not allowed in a {doc.form.value} document", extended)
        return doc

    def _receipt(self, *, forms: frozenset[DocumentForm] = frozenset({DocumentForm.RECEIPT})) -> OpenDocument:
        """An open receipt not yet paid for (0x45, 0x64)."""
        doc = self._open(forms, 16)
        if not doc.items:
            raise DocumentRefusal("the receipt has no items", 26)
        if doc.paid or doc.state is ReceiptStep.PAID:
            raise DocumentRefusal(f"payments begun (document state {int(doc.state)})", 12)
        return doc

    def _memory(self, key: str, doc: OpenDocument) -> dict[Any, Any]:
        """This document's data under ``key`` (another document's is dropped)."""
        held = self.core.wire_memory.get(key)
        if held is None or held[0] is not doc:
            held = (doc, {})
            self.core.wire_memory[key] = held
        return held[1]

    def _print(self, line: str) -> None:
        """A line into the open document; a line opening with '&' (0x49, 0x57) leaves the next
        requisite on the same line, if nothing was printed in between."""
        doc = self.core.current_document()
        glue = line.startswith("&")
        text = line.removeprefix("&")
        held = self.core.wire_memory.get("pirit_join")
        if held is not None and held[0] is doc and held[1] == len(doc.text) and doc.text:
            doc.text[-1] = f"{doc.text[-1]} {text}"
        else:
            self.core.add_text(text)
        self.core.wire_memory["pirit_join"] = (doc, len(doc.text)) if glue else None

    def _settings(self) -> dict[Any, Any]:
        """The settings table as 0x12 wrote it ((number, index) → value; unwritten: the default)."""
        return dict(self.core.wire_memory.get("pirit_settings") or {})

    def _require_printer(self) -> None:
        if self.core.printer.cover_open:
            raise CoreError(ErrorKind.COVER_OPEN, "cover open")
        if self.core.printer.paper is PaperState.OUT:
            raise CoreError(ErrorKind.NO_PAPER, "no paper")

    # ------------------------------------------------------------------ text and graphics

    @handles(0x40)
    def _print_text(self, request: Request) -> list[Field]:
        """Text inside any open document (a service document, a receipt, cash in/out)."""
        text = self._text(request, 0, TEXT_MAX, least=1)
        self._attributes(request, 1, FONTS)
        self.core.add_text(text)
        return []

    @handles(0x41)
    def _print_barcode(self, request: Request) -> list[Field]:
        options, width, height = (self._int(request, i, -1) for i in range(3))
        kind = self._int(request, 3, -1)
        data = self._field(request, 4)
        if kind not in BARCODES:
            raise ParamError(f"bad barcode type {kind}")
        if not 2 <= width <= (6 if kind in NARROW else 8):
            raise ParamError(f"bad barcode width {width}")
        if kind not in TWO_D and not 1 <= height <= 255:
            raise ParamError(f"bad barcode height {height}")
        if not 0 <= options <= (100 if kind == 7 else 3 if kind not in TWO_D else 255):
            raise ParamError(f"bad barcode output options {options}")
        least, most = DIGITS.get(kind, (1, 4096))
        if not least <= len(data) <= most or (kind in DIGITS and not data.isdigit()):
            raise ParamError(f"bad {BARCODES[kind]} data {data!r}")
        self.core.current_document()
        self.core.add_text(f"[barcode type {kind}: {data}]")
        return []

    @handles(0x56)
    def _print_picture(self, request: Request) -> list[Field]:
        """A picture loaded by 0x18: into the open document, or straight onto the tape."""
        offset = self._int(request, 0, 0)
        number = self._int(request, 1, -1)
        if not 0 <= offset <= 3:
            raise ParamError(f"bad picture offset {offset}")
        if self.edition == PIRIT2F and not 1 <= number <= 10:
            raise ParamError(f"bad picture number {number}")
        if number not in (self.core.wire_memory.get("pirit_pictures") or {}):
            raise ParamError(f"no picture {number} loaded")  # [inferred: the manual names no code]
        if self.core.document is not None:
            self.core.add_text(f"[picture {number}]")
            return []
        self._require_printer()
        self.core.tape.append(f"[picture {number}]")
        return []

    @handles(0x34)
    def _cut(self, _: Request) -> list[Field]:
        """Forced cut, in or outside a document [inferred: the manual names no state]."""
        self._require_printer()
        self.core.tape.append(CUT)
        self.core.log("cut", "0x34")
        return []

    # ------------------------------------------------------------------ requisites

    @handles(0x24)
    def _item_requisites(self, request: Request) -> list[Field]:
        """Tags of the next item (0x42) of the open receipt; the answer checks the code field."""
        doc = self._open(frozenset({DocumentForm.RECEIPT, DocumentForm.CORRECTION}), 16)
        if doc.state not in (ReceiptStep.OPENED, ReceiptStep.SUBTOTAL):
            raise DocumentRefusal(f"no items in document state {int(doc.state)}", 12)
        code = self._field(request, 0)
        raw = unescape(code)
        if not self.ffd12 and raw is not None and len(raw) > 32:
            raise ParamError(f"product code of {len(raw)} bytes, at most 32", 81)
        tags: dict[int, Any] = {}
        for index, (tag, most) in (ITEM_TEXT | (ITEM_TEXT_12 if self.ffd12 else {})).items():
            value = self._text(request, index, most, 93 if tag in PHONE_TAGS else 0)
            if tag in PHONE_TAGS:
                self._phones(value)
            if value:
                tags[tag] = value
        agent = self._int(request, 3, 0, 64)
        if not 0 <= agent <= 0x7F:
            raise ParamError(f"bad agent sign {agent}", 64)
        if set(tags) & {1005, 1016, 1026, 1044, 1073, 1074, 1075, 1171, 1225, 1226} and not agent:
            raise ParamError("agent requisites without an agent sign (1222)", 79)  # [inferred]
        if agent:
            tags[1222] = agent
        if not self.ffd12 and self._field(request, 2):
            tags[0] = self._text(request, 2, 12)  # FFD 1.05: quantity of a measured item for the printout
        if self.ffd12 and self._field(request, 15):
            tags[1263] = self._date8(request, 15)
        recognised = raw is not None and (self.ffd12 or raw[:2] in CODE_TYPES)
        if code:
            tags[1163 if self.ffd12 else 1162] = raw if recognised else code
        self.core.wire_memory["pirit_item_requisites"] = (doc, len(doc.items), tags)
        return ["" if recognised or not code else UNRECOGNISED]

    @staticmethod
    def _phones(value: str) -> None:
        for phone in filter(None, value.split(",")):
            if not phone.startswith("+") or len(phone) > 19:
                raise ParamError(f"bad phone {phone!r}", 93)

    def _date8(self, request: Request, index: int) -> str:
        value = self._field(request, index)
        try:
            if len(value) != 8:
                raise ValueError(value)
            parse_date(value)
        except ValueError:
            raise ParamError(f"field {index + 1}: not a ddmmyyyy date: {value!r}", 39) from None
        return value

    @handles(0x25)
    def _report_requisite(self, request: Request) -> list[Field]:
        """FFD 1.2: an extra requisite of the next report of that kind (1 registration, 2 shift
        open, 3 shift close, 4 state of settlements, 5 ФН close)."""
        self.core.require_power()
        number = self._int(request, 0, -1)
        if not 1 <= number <= 5:
            raise ParamError(f"bad report requisite number {number}")
        name = self._text(request, 1, 32)
        data = unescape(self._field(request, 2))
        if data is None or len(data) > 32:
            raise ParamError("bad report requisite data")
        self.core.wire_memory.setdefault("pirit_report_requisites", {})[number] = (name, data)
        return []

    @handles(0x49)
    def _print_requisite(self, request: Request) -> list[Field]:
        """A requisite printed in a receipt or a cash in/out document (not a service document)."""
        forms = frozenset(DocumentForm) - {DocumentForm.SERVICE}
        code = self._int(request, 0, 0)
        self._attributes(request, 1, REQUISITE_FONTS)
        lines = [self._text(request, 2, TEXT_MAX, least=1)] + [self._text(request, i, TEXT_MAX) for i in (3, 4, 5)]
        name = str(self._settings().get((52, code), "")) if code else ""
        if code and (not 1 <= code <= 5 or len(name) < 3):
            # a name under 3 characters "cannot be used for printing" [inferred: answered 0x03]
            raise ParamError(f"requisite {code}: no name programmed in settings table 52")
        self._open(forms, 19)
        lines = [line for line in lines if line]
        glue = "&" if len(lines) == 1 and lines[0].startswith("&") else ""  # '&' joins a one-line value
        first = lines[0].removeprefix("&")
        lines[0] = glue + (f"{name} {first}" if name else first)
        for line in lines:
            self._print(line)
        return []

    @handles(0x57)
    def _ofd_requisite(self, request: Request) -> list[Field]:
        """A receipt requisite printed and sent to the OFD; the codes the FFD's manual lists."""
        codes = OFD_CODES_12 if self.ffd12 else OFD_CODES_105
        code = self._int(request, 0, -1)
        if code not in codes:
            raise ParamError(f"requisite {code} not accepted by 0x57 in FFD {self.core.profile.ffd}")
        attributes = self._attributes(request, 1, REQUISITE_FONTS)
        description = self._text(request, 2, TEXT_MAX)
        value = self._text(request, 3, 255)
        extended = {1192: 71, 1057: 64}.get(code, 93 if code in PHONE_TAGS else 0)
        if code == 1192 and not description:
            raise ParamError("1192 needs a description", 71)
        if len(value) > codes[code] or not self._ofd_value_ok(code, value, numeric=bool(attributes & 0x40)):
            raise ParamError(f"bad value of requisite {code}: {value!r}", extended)
        doc = self._open(frozenset({DocumentForm.RECEIPT, DocumentForm.CORRECTION}), 16)
        self._memory("pirit_ofd_requisites", doc)[code] = value
        self._print(f"{description} {value}".rstrip() if description else value)
        return []

    @staticmethod
    def _ofd_value_ok(code: int, value: str, *, numeric: bool) -> bool:
        if numeric and not re.fullmatch(r"#[0-9]+|[0-9]+(\.[0-9]{1,2})?", value):
            return False
        if code in PHONE_TAGS:
            return not value or (value.startswith("+") and value[1:].isdigit())
        if code in (1262, 1271, 1057):
            return value.isdigit() and (code != 1057 or int(value) <= 0x7F)
        if code in (1263, 1273):
            formats = ("%d%m%Y",) if code == 1263 else ("%d%m%y", "%d%m%y%H%M")
            for pattern in formats:
                try:
                    datetime.strptime(value, pattern)
                    return len(value) in (6, 8, 10)
                except ValueError:
                    pass
            return False
        return True

    # ------------------------------------------------------------------ sums

    @handles(0x45)
    def _receipt_discount(self, request: Request) -> list[Field]:
        """An absolute discount on the receipt: after the first subtotal, once, type 1 only, at most
        0.99; it lowers the total the receipt is paid and closed with."""
        kind = self._int(request, 0, -1)
        name = self._text(request, 1, 38, 51)
        amount = self._decimal(request, 2, 52)
        if kind != 1:
            raise ParamError(f"discount type {kind}: only 1 (a sum) is available")
        if not CENT <= amount <= DISCOUNT_MAX or amount != amount.quantize(CENT):
            raise ParamError(f"discount {amount}: 0.01..0.99", 52)
        doc = self._receipt()
        if doc.discount:
            raise DocumentRefusal("only one discount on a receipt", 35)
        if doc.state is not ReceiptStep.SUBTOTAL:
            raise DocumentRefusal(f"a discount comes right after the first subtotal (state {int(doc.state)})", 12)
        if amount > doc.total:
            raise ParamError(f"discount {amount} over the total {doc.total}", 52)
        set_receipt_total(doc, doc.total - amount)
        doc.discount = amount
        self.core.add_text(f"{name or 'СКИДКА'}  -{amount}")
        return []

    @handles(0x64)
    def _set_total(self, request: Request) -> list[Field]:
        """The receipt's total before payments: the roubles must be the register's own."""
        total = self._decimal(request, 0)
        doc = self._receipt(forms=frozenset({DocumentForm.RECEIPT, DocumentForm.CORRECTION}))
        if total < 0 or total != total.quantize(CENT) or int(total) != int(doc.total):
            raise ParamError(f"total {total}: the rouble part must be that of {doc.total}")
        set_receipt_total(doc, total)
        return []

    @handles(0x52)
    def _compare_total(self, request: Request) -> list[Field]:
        """The open document's sum against the host's: a mismatch is a bad parameter (0x03)."""
        expected = self._decimal(request, 0)
        doc = self._open(frozenset(DocumentForm), 0)
        if expected != doc.total:
            raise ParamError(f"receipt sum {doc.total}, not {expected}")
        return []

    @handles(0x50)
    def _department_sum(self, request: Request) -> list[Field]:
        """A sum registered on a department (settings table 50, 1..16) for the shift report."""
        operation = self._int(request, 0, -1, 76)
        department = self._int(request, 1, -1, 41)
        amount = self._decimal(request, 2)
        if operation not in (0, 1):
            raise ParamError(f"bad operation type {operation} (0 sale, 1 return)", 76)  # [inferred: code]
        if not 1 <= department <= 16 or not str(self._settings().get((50, department), "ОТДЕЛ")):
            raise ParamError(f"bad department {department} (1..16, named in settings table 50)", 41)
        if amount < 0 or amount != amount.quantize(CENT):
            raise ParamError(f"bad department sum {amount}")
        sums = self._memory("pirit_department_sums", self._open(frozenset(DocumentForm), 0))
        sums[(operation, department)] = sums.get((operation, department), Decimal(0)) + amount
        return []

    # ------------------------------------------------------------------ the copy of a receipt

    @handles(0x53)
    def _open_copy(self, request: Request) -> list[Field]:
        """A copy of a receipt: a service document headed "КОПИЯ ЧЕКА" and the original's
        requisites; with an FD number the footer comes from that ФН document (this shift's)."""
        kind = RECEIPT_BY_TYPE.get(self._int(request, 0, -1, 40))
        if kind is None:
            raise ParamError(f"bad receipt type {self._field(request, 0)!r}", 40)
        department = self._int(request, 1, 1, 41)
        if not 1 <= department <= 99:
            raise ParamError(f"bad department {department}", 41)
        cashier = self._field(request, 2)
        number = self._int(request, 3, 0, 42)
        register = self._int(request, 4, 1)
        if not 1 <= register <= 9999:
            raise ParamError(f"bad register number {register}")
        when = self._copy_moment(request)
        fd = self._int(request, 7, 0, 42)
        tax_index = self._int(request, 8, 0, 43)
        if not 0 <= tax_index <= 5:
            raise ParamError(f"bad tax system index {tax_index}", 43)
        original = None
        if fd:
            original = next((d for d in self.core.fn.archive if d.number == fd), None)
            if original is None or not self.core.shift.is_open or original.shift_number != self.core.shift.number:
                raise ParamError(f"FD {fd} is not a document of the current shift", 42)  # [inferred: code]
        self.core.open_nonfiscal(DocumentForm.SERVICE, cashier)
        doc = self.core.current_document()
        lines = ["КОПИЯ ЧЕКА", f"КАССОВЫЙ ЧЕК / {RECEIPT_TITLES[kind]}", f"Чек {number}  Касса {register}"]
        lines += [when, f"Кассир {cashier}", f"СНО {TaxSystem.from_index(tax_index).title}"]
        if original is not None:
            lines.append(f"ФД {original.number}  ФП {original.fiscal_sign}")
        for line in filter(None, lines):
            self.core.add_text(line)
        copy = {"kind": kind, "department": department, "number": number, "fd": fd, "tax_system": tax_index}
        self.core.wire_memory["pirit_copy"] = (doc, copy)
        return []

    def _copy_moment(self, request: Request) -> str:
        day, moment = self._field(request, 5), self._field(request, 6)
        if not day and not moment:
            return ""
        try:
            return datetime.combine(parse_date(day), parse_time(moment)).strftime("%d.%m.%Y %H:%M")
        except ValueError:
            raise ParamError("bad date/time", 39) from None
