"""Pirit document commands of devices/pirit/emulator/requisites.py, frames in and exact answers
out: text and barcodes (0x40, 0x41), requisites (0x24, 0x25, 0x49, 0x57), the cut and pictures
(0x34, 0x56), the receipt discount and totals (0x45, 0x50, 0x52, 0x64) and the copy of a receipt
(0x53) — each where the manual allows it, refused elsewhere, and a refusal never touches the
fiscal state."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from devices.emulator.core import FiscalCore
from devices.emulator.profiles import profile
from devices.emulator.records import CUT
from devices.pirit import protocol as p
from devices.pirit.emulator import PiritFrontEnd

OK: tuple[str, ...] = ()


class Wire:
    """A Касса Ф (punix, FFD 1.2 unless told) after start of work and with its shift open."""

    def __init__(self, *, ffd: str | None = None, open_shift: bool = True) -> None:
        model = profile("kf")
        self.core = FiscalCore(model.with_overrides({"ffd": ffd}) if ffd else model)
        self.front = PiritFrontEnd(self.core)
        self.packet = 0x20
        assert self.call(0x10, "011220", "090000") == OK
        if open_shift:
            assert self.call(0x23, "Кассир") == OK

    def raw(self, command: int, *fields: object) -> tuple[int, bytes]:
        self.packet = self.packet + 1 if self.packet < 0xF0 else 0x21
        return self.packet, self.front.feed(p.encode_request(command, list(fields), packet_id=self.packet))  # type: ignore[arg-type]

    def call(self, command: int, *fields: object) -> tuple[str, ...] | int:
        """The answer's fields on success (checked byte for byte), else the error code."""
        packet, out = self.raw(command, *fields)
        answer = p.decode_response(out)
        assert (answer.packet_id, answer.command) == (packet, command)
        if answer.error:
            assert out == p.encode_response(packet, command, answer.error)  # an error carries no fields
            return answer.error
        assert out == p.encode_response(packet, command, 0, list(answer.fields))
        return answer.fields

    def exact(self, command: int, *fields: object, answer: list[str]) -> None:
        """A success carrying exactly ``answer`` (one empty field is a lone FS)."""
        packet, out = self.raw(command, *fields)
        assert out == p.encode_response(packet, command, 0, answer)

    def extended(self) -> int:
        fields = self.call(0x06, 1)
        assert isinstance(fields, tuple)
        return int(fields[1])

    def last_fd(self) -> int:
        fields = self.call(0x78, 3)
        assert isinstance(fields, tuple)
        return int(fields[1])

    def sale(self) -> None:
        assert self.call(0x30, 2, 1, "Кассир", "", 1) == OK

    def fiscal(self) -> tuple[object, ...]:
        core = self.core
        return (core.last_fd().number, len(core.fn.archive), core.shift.receipts, core.counters.operations, core.cash)


def item(wire: Wire, price: str, vat: int = 3) -> None:
    fields = wire.call(0x42, "Товар", "", "1", price, vat)
    assert isinstance(fields, tuple) and len(fields) == 1


# ---------------------------------------------------------------------------- service document


def test_a_service_document_prints_its_text_and_makes_no_fiscal_document() -> None:
    wire = Wire()
    fd = wire.last_fd()
    assert wire.call(0x30, 1, 1, "Кассир") == OK
    assert wire.call(0x40, "Первая строка") == OK
    assert wire.call(0x40, "Вторая строка", 0x12) == OK  # font 2, double height
    assert wire.call(0x41, 0, 2, 60, 2, "4600000000008") == OK
    closed = wire.call(0x31, 1)
    assert isinstance(closed, tuple) and len(closed) == 2  # through number and operation counter only
    assert wire.core.tape[-5:] == [
        "Первая строка",
        "Вторая строка",
        "[barcode type 2: 4600000000008]",
        "НЕФИСКАЛЬНЫЙ ДОКУМЕНТ",
        CUT,
    ]
    assert wire.last_fd() == fd


@pytest.mark.parametrize(
    ("fields", "code"),
    [(("",), 0x03), (("x" * 73,), 0x03), (("x" * 72,), 0), (("текст", 7), 0x03), (("текст", "a"), 0x03)],
)
def test_0x40_takes_1_to_72_characters_and_the_edition_fonts(fields: tuple[object, ...], code: int) -> None:
    wire = Wire()
    wire.call(0x30, 1, 1, "Кассир")
    assert wire.call(0x40, *fields) == (code or OK)


def test_0x40_with_no_document_open_is_refused_0x01_extended_8() -> None:
    wire = Wire()
    before, tape = wire.fiscal(), list(wire.core.tape)
    assert wire.call(0x40, "текст") == 0x01
    assert wire.extended() == 8
    assert wire.fiscal() == before and wire.core.tape == tape


def test_text_in_a_receipt_is_printed_with_the_receipt() -> None:
    wire = Wire()
    wire.sale()
    item(wire, "10")
    assert wire.call(0x40, "Спасибо за покупку") == OK
    assert wire.call(0x47, 0, "10") == OK
    assert isinstance(wire.call(0x31, 2), tuple)
    assert "Спасибо за покупку" in wire.core.tape


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ((0, 2, 60, 10, "123"), 0x03),  # type 0..9
        ((0, 1, 60, 4, "ABC"), 0x03),  # width 2..8
        ((0, 7, 60, 2, "4600000000008"), 0x03),  # EAN-13: width at most 6
        ((0, 7, 60, 4, "ABC"), 0),
        ((0, 2, 0, 4, "ABC"), 0x03),  # height 1..255 for a linear code
        ((0, 2, 256, 4, "ABC"), 0x03),
        ((0, 3, 0, 8, "https://example.ru"), 0),  # QR: no height
        ((4, 2, 60, 4, "ABC"), 0x03),  # output options 0..3 for a linear code
        ((0, 2, 60, 3, "12AB5678"), 0x03),  # EAN-8: digits
        ((0, 2, 60, 4, ""), 0x03),
    ],
)
def test_0x41_checks_type_width_height_and_data(fields: tuple[object, ...], code: int) -> None:
    wire = Wire()
    wire.call(0x30, 1, 1, "Кассир")
    assert wire.call(0x41, *fields) == (code or OK)
    if not code:
        assert wire.core.document is not None
        assert wire.core.document.text == [f"[barcode type {fields[3]}: {fields[4]}]"]


# ---------------------------------------------------------------------------- discount and totals


def test_0x45_discount_after_the_first_subtotal_once_lowers_the_total() -> None:
    wire = Wire()
    wire.sale()
    item(wire, "100", vat=0)
    before = wire.fiscal()
    assert wire.call(0x45, 1, "Скидка", "0.50") == 0x01  # before the subtotal
    assert wire.call(0x44) == OK
    assert wire.call(0x45, 2, "Скидка", "0.50") == 0x03  # only type 1
    assert wire.call(0x45, 1, "Скидка", "1.00") == 0x03  # at most 0.99
    assert wire.extended() == 52
    assert wire.fiscal() == before
    assert wire.call(0x45, 1, "Скидка", "0.50") == OK
    assert wire.call(0x45, 1, "Скидка", "0.10") == 0x01  # once
    assert wire.call(0x52, "100.00") == 0x03
    assert wire.call(0x52, "99.50") == OK
    assert wire.call(0x47, 0, "99.50") == OK
    assert isinstance(wire.call(0x31, 2), tuple)
    doc = wire.core.last_fd()
    assert doc.total == Decimal("99.50")
    assert doc.taxes["vat20"] == Decimal("16.5833")  # 16.6667 less the discount's 0.0833
    assert wire.core.cash == Decimal("99.50")
    assert "Скидка  -0.50" in wire.core.tape


def test_0x52_mismatch_is_a_bad_parameter_and_changes_nothing() -> None:
    wire = Wire()
    wire.sale()
    item(wire, "10")
    before = wire.fiscal()
    assert wire.call(0x52, "10.01") == 0x03
    assert wire.call(0x52, "10") == OK
    assert wire.fiscal() == before and wire.core.document is not None and wire.core.document.total == 10


def test_0x64_sets_the_total_when_the_roubles_match_and_before_payment() -> None:
    wire = Wire()
    wire.sale()
    item(wire, "100.40")
    assert wire.call(0x64, "101.00") == 0x03
    assert wire.call(0x64, "100.00") == OK
    assert wire.call(0x52, "100") == OK
    assert wire.call(0x47, 1, "50") == OK
    assert wire.call(0x64, "100.10") == 0x01  # payments begun
    assert wire.call(0x47, 0, "50") == OK
    assert isinstance(wire.call(0x31, 2), tuple)
    assert wire.core.last_fd().total == Decimal("100.00")


def test_0x50_registers_a_department_sum_in_an_open_document() -> None:
    wire = Wire()
    assert wire.call(0x50, 0, 1, "10") == 0x01
    wire.sale()
    item(wire, "10")
    assert wire.call(0x50, 0, 17, "10") == 0x03
    assert wire.call(0x50, 2, 1, "10") == 0x03
    assert wire.call(0x50, 0, 3, "10") == OK
    assert wire.call(0x50, 0, 3, "5.5") == OK
    doc, sums = wire.core.wire_memory["pirit_department_sums"]
    assert doc is wire.core.document and sums == {(0, 3): Decimal("15.5")}


# ---------------------------------------------------------------------------- requisites


def test_0x24_answers_the_product_code_check_and_keeps_the_tags_for_the_next_item() -> None:
    wire = Wire()
    assert wire.call(0x24, "@0104600000000000") == 0x01  # no document
    wire.sale()
    wire.exact(0x24, "@0104600000000000", "доп", "", 0, answer=[""])
    doc, index, tags = wire.core.wire_memory["pirit_item_requisites"]
    assert doc is wire.core.document and index == 0 and tags[1191] == "доп" and 1163 in tags
    wire.exact(0x24, "$ZZ", answer=["Unrecogn"])
    assert wire.call(0x24, "", "", "", 0, "", "+7999") == 0x03  # agent requisites without an agent sign
    assert wire.call(0x24, "", "", "", 4, "", "79991234567") == 0x03  # a phone starts with '+'
    assert wire.extended() == 93
    wire.exact(0x24, "", "", "", 4, "7701234567", "+79991234567", answer=[""])


def test_0x24_in_ffd_105_checks_the_1162_code_type() -> None:
    wire = Wire(ffd="1.05")
    wire.sale()
    wire.exact(0x24, "$45$0D$00$01", answer=[""])  # EAN-13 type bytes
    wire.exact(0x24, "ABCDEF", answer=["Unrecogn"])
    assert wire.call(0x24, "$45$0D" + "1" * 31) == 0x03  # 33 bytes


def test_0x25_is_ffd_12_only_and_takes_numbers_1_to_5() -> None:
    wire = Wire()
    assert wire.call(0x25, 3, "Имя", "Данные") == OK
    assert wire.core.wire_memory["pirit_report_requisites"] == {3: ("Имя", "Данные".encode("cp866"))}
    assert wire.call(0x25, 6, "Имя", "Данные") == 0x03
    assert wire.call(0x25, 1, "x" * 33, "") == 0x03
    assert Wire(ffd="1.05").call(0x25, 3, "Имя", "Данные") == 0x02


def test_0x49_prints_a_requisite_in_a_receipt_not_in_a_service_document() -> None:
    wire = Wire()
    wire.call(0x30, 1, 1, "Кассир")
    assert wire.call(0x49, 0, 0, "Значение") == 0x01
    wire.call(0x32)
    wire.sale()
    item(wire, "10")
    assert wire.call(0x49, 1, 0, "Значение") == 0x03  # names 1..5 not programmed
    assert wire.call(0x49, 0, 0, "") == 0x03
    assert wire.call(0x49, 0, 0, "&Номер:") == OK
    assert wire.call(0x49, 0, 0, "42", "вторая") == OK
    assert wire.call(0x49, 0, 0, "&не склеится") == OK
    assert wire.call(0x40, "текст") == OK  # a line in between: the next requisite starts anew
    wire.core.wire_memory["pirit_settings"] = {(52, 2): "Телефон"}
    assert wire.call(0x49, 2, 0, "+79990000000") == OK
    assert wire.core.document is not None
    assert wire.core.document.text == ["Номер: 42", "вторая", "не склеится", "текст", "Телефон +79990000000"]


@pytest.mark.parametrize(
    ("ffd", "fields", "code"),
    [
        (None, (1192, 0, "Доп. реквизит", "12345"), 0),
        (None, (1192, 0, "", "12345"), 0x03),  # 1192 needs a description
        (None, (1192, 0, "Доп", "x" * 17), 0x03),  # at most 16 characters
        (None, (1262, 0, "ФОИВ", "001"), 0),
        (None, (1263, 0, "Дата", "31022021"), 0x03),
        (None, (1273, 0, "Дата", "0102211230"), 0),
        (None, (1005, 0, "Адрес", "Москва"), 0x03),  # an FFD 1.05 code
        (None, (1008, 0, "Покупатель", "a@b.ru"), 0x03),
        (None, (1192, 0x40, "Число", "#12"), 0),
        (None, (1192, 0x40, "Число", "abc"), 0x03),
        ("1.05", (1005, 0, "Адрес", "Москва"), 0),
        ("1.05", (1171, 0, "Тел", "+79991234567"), 0),
        ("1.05", (1262, 0, "ФОИВ", "001"), 0x03),  # an FFD 1.2 code
    ],
)
def test_0x57_takes_the_codes_of_its_ffd(ffd: str | None, fields: tuple[object, ...], code: int) -> None:
    wire = Wire(ffd=ffd)
    wire.sale()
    before = wire.fiscal()
    assert wire.call(0x57, *fields) == (code or OK)
    if code:
        assert wire.fiscal() == before
    else:
        doc, tags = wire.core.wire_memory["pirit_ofd_requisites"]
        assert doc is wire.core.document and tags == {fields[0]: fields[3]}


def test_0x57_needs_an_open_receipt() -> None:
    wire = Wire()
    wire.call(0x30, 1, 1, "Кассир")
    assert wire.call(0x57, 1192, 0, "Доп", "1") == 0x01


# ---------------------------------------------------------------------------- cut, picture, copy


def test_0x34_cuts_and_0x56_prints_only_a_loaded_picture() -> None:
    wire = Wire()
    assert wire.call(0x34) == OK
    assert wire.core.tape[-1] == CUT
    assert wire.call(0x56, 0, 1) == 0x03  # nothing loaded
    wire.core.wire_memory["pirit_pictures"] = {1: b"picture"}
    assert wire.call(0x56, 4, 1) == 0x03  # offset 0..3
    assert wire.call(0x56, 1, 1) == OK
    assert wire.core.tape[-1] == "[picture 1]"
    wire.core.set_cover(True)
    assert wire.call(0x34) == 0x09


def test_0x53_opens_a_non_fiscal_copy_of_a_receipt_of_this_shift() -> None:
    wire = Wire()
    wire.sale()
    item(wire, "10")
    wire.call(0x47, 0, "10")
    wire.call(0x31, 2)
    original = wire.core.last_fd()
    fd = wire.last_fd()
    assert wire.call(0x53, 4, 1, "Кассир", 1, 1, "011220", "090000", fd, 1) == 0x03  # type
    assert wire.call(0x53, 2, 1, "Кассир", 1, 1, "011220", "090000", fd + 5, 1) == 0x03  # no such FD
    assert wire.core.document is None
    assert wire.call(0x53, 2, 1, "Кассир", 1, 1, "011220", "090000", fd, 1) == OK
    assert wire.call(0x40, "Товар  1 x 10") == OK
    assert isinstance(wire.call(0x31, 1), tuple)
    assert wire.last_fd() == fd
    tape = wire.core.tape
    assert tape[tape.index("КОПИЯ ЧЕКА") :][:2] == ["КОПИЯ ЧЕКА", "КАССОВЫЙ ЧЕК / ПРИХОД"]
    assert f"ФД {original.number}  ФП {original.fiscal_sign}" in tape and "Товар  1 x 10" in tape


# ---------------------------------------------------------------------------- batch mode and refusals


def test_successful_batch_commands_are_silent_and_a_failure_answers() -> None:
    wire = Wire()
    assert wire.call(0x30, 0x12, 1, "Кассир", "", 1) == OK  # a sale in batch mode
    assert wire.raw(0x24, "@010460000000000")[1] == b""
    assert wire.raw(0x42, "Товар", "", "1", "10", 3)[1] == b""
    for command, fields in [(0x40, ("текст",)), (0x41, (0, 2, 60, 4, "ABC")), (0x49, (0, 0, "реквизит"))]:
        assert wire.raw(command, *fields)[1] == b""
    assert wire.raw(0x44)[1] == b""
    assert wire.raw(0x45, 1, "Скидка", "0.10")[1] == b""
    assert wire.raw(0x52, "9.90")[1] == b""
    assert wire.call(0x52, "1") == 0x03  # a failure answers
    assert wire.call(0x40, "текст") == 0x01  # and the batch refuses the rest
    assert wire.call(0x32) == OK


def _receipt_after_subtotal(wire: Wire) -> None:
    wire.sale()
    item(wire, "10")
    wire.call(0x44)


REFUSED = [
    (None, 0x40, ("текст",)),
    (None, 0x41, (0, 2, 60, 2, "4600000000008")),
    (None, 0x45, (1, "", "0.10")),
    (None, 0x49, (0, 0, "значение")),
    (None, 0x52, ("10",)),
    (None, 0x64, ("10",)),
    (None, 0x50, (0, 1, "10")),
    (None, 0x57, (1192, 0, "Доп", "1")),
    (None, 0x24, ("@01",)),
    (None, 0x56, (0, 1)),
    (None, 0x53, (9, 1, "Кассир")),
    (None, 0x25, (9, "", "")),
    (_receipt_after_subtotal, 0x45, (1, "", "1.50")),
    (_receipt_after_subtotal, 0x45, (3, "", "0.10")),
    (_receipt_after_subtotal, 0x52, ("10.01",)),
    (_receipt_after_subtotal, 0x64, ("11.00",)),
    (_receipt_after_subtotal, 0x40, ("x" * 73,)),
    (_receipt_after_subtotal, 0x41, (0, 2, 60, 11, "1")),
    (_receipt_after_subtotal, 0x57, (9999, 0, "Доп", "1")),
    (_receipt_after_subtotal, 0x53, (2, 1, "Кассир")),  # a document is open
    (_receipt_after_subtotal, 0x50, (0, 0, "1")),
]


@pytest.mark.parametrize(("setup", "command", "fields"), REFUSED)
def test_a_refused_command_leaves_the_fiscal_state_as_it_was(
    setup: Callable[[Wire], None] | None, command: int, fields: tuple[object, ...]
) -> None:
    wire = Wire()
    if setup is not None:
        setup(wire)
    doc = wire.core.document
    before = (wire.fiscal(), doc and (doc.total, doc.state, list(doc.text), dict(doc.taxes)), list(wire.core.tape))
    assert wire.call(command, *fields) in (0x01, 0x03)
    doc = wire.core.document
    after = (wire.fiscal(), doc and (doc.total, doc.state, list(doc.text), dict(doc.taxes)), list(wire.core.tape))
    assert after == before
