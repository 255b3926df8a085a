"""The Pirit information requests (0x01, 0x02, 0x03, 0x05, 0x78) answer in the manual's layouts
from the fiscal core's state, through real frames: a scripted day (two sales, cash and card, a
return, an annulled receipt, cash in and out, X, Z, a new shift), then every sub-request's
field count and values; sub-requests an edition lacks answer 0x03."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore
from devices.pirit import protocol as p
from devices.pirit.emulator import PiritFrontEnd

CASHIER = "Кассир"
ZERO16 = ("0.00",) * 16


class Register:
    """A front-end over a real core, spoken to in frames."""

    def __init__(self, model: str = "kf", settings: dict[str, str] | None = None) -> None:
        self.core: FiscalCore = build_emulator(model, settings).core
        self.front = PiritFrontEnd(self.core)
        now = self.core.now()
        self.ok(0x10, [now.strftime("%d%m%y"), now.strftime("%H%M%S")])

    def call(self, command: int, fields: Sequence[p.Field] = ()) -> p.Response:
        out = self.front.feed(p.encode_request(command, list(fields), packet_id=0x30))
        answers = [p.decode_response(e.raw) for e in p.FrameReader().feed(out) if isinstance(e, p.Frame)]
        assert len(answers) == 1
        return answers[0]

    def ok(self, command: int, fields: Sequence[p.Field] = ()) -> tuple[str, ...]:
        answer = self.call(command, fields)
        assert answer.error == 0, (hex(command), fields, answer)
        return answer.fields

    def sub(self, command: int, n: int, *extra: p.Field) -> tuple[str, ...]:
        fields = self.ok(command, [n, *extra])
        assert fields[0] == str(n)
        return fields[1:]

    def receipt(self, kind: int, items: Sequence[tuple[str, str, int]], payments: Sequence[tuple[int, str]]) -> None:
        self.ok(0x30, [kind, 1, CASHIER])
        for name, price, vat in items:
            self.ok(0x42, [name, "", 1, price, vat])
        for index, amount in payments:
            self.ok(0x47, [index, amount])
        self.ok(0x31, [0])

    def cash(self, kind: int, amount: str) -> None:
        self.ok(0x30, [kind, 1, CASHIER])
        self.ok(0x48, ["", amount])
        self.ok(0x31, [0])


def _day(reg: Register) -> None:
    reg.ok(0x23, [CASHIER])
    reg.receipt(2, [("Сахар", "100.00", 0)], [(0, "150.00")])  # cash, 50.00 change; VAT 20 %
    reg.receipt(2, [("Чай", "80.00", 1)], [(1, "80.00")])  # card; VAT 10 %
    reg.receipt(3, [("Сахар", "50.00", 0)], [(0, "50.00")])  # a return, cash
    reg.ok(0x30, [2, 1, CASHIER])
    reg.ok(0x42, ["Соль", "", 1, "30.00", 3])
    reg.ok(0x32)  # annulled
    reg.cash(4, "500.00")
    reg.cash(5, "200.00")


@pytest.fixture
def reg() -> Register:
    register = Register()
    _day(register)
    return register


def _payments(cash: str = "0.00", card: str = "0.00") -> tuple[str, ...]:
    return (cash, card, *ZERO16[2:])


REPORT = ("7", "5", "350.00", "2", "180.00", "1", "50.00", "1", "30.00", "1", "500.00", "1", "200.00")


def test_shift_counters_after_a_day(reg: Register) -> None:
    assert reg.sub(0x01, 1) == ("1",)
    assert reg.sub(0x01, 2) == ("4",)
    assert reg.sub(0x01, 3) == _payments("100.00", "80.00")
    assert reg.sub(0x01, 4) == ("1", "1", *("0",) * 14)
    assert reg.sub(0x01, 5) == _payments("50.00")
    assert reg.sub(0x01, 6) == ("1", *("0",) * 15)
    assert reg.sub(0x01, 7) == ("2", "1", "1", "0", "1", "1")
    assert reg.sub(0x01, 8) == ("30.00", "0.00", "500.00", "200.00")
    assert reg.sub(0x01, 9) == ("0.00",) * 4
    assert reg.sub(0x01, 10) == ("16.67", "7.27", "0.00", "0.00", "0.00", "0.00")
    assert reg.sub(0x01, 11) == ("8.33", "0.00", "0.00", "0.00", "0.00", "0.00")
    assert reg.sub(0x01, 12) == ("0", "0", "0.00", *("0", "0.00") * 5)  # no X or Z report yet
    assert reg.sub(0x01, 13) == ("180.00", *ZERO16[1:])  # all in department 1
    assert reg.sub(0x01, 14) == ("50.00", *ZERO16[1:])
    assert reg.sub(0x01, 15) == ("0", "0")
    assert reg.sub(0x01, 16) == ZERO16
    assert reg.sub(0x01, 17) == ZERO16
    assert reg.sub(0x01, 18) == ("0", *("0.00",) * 5)  # FFD 1.2: count + 5 sums


def test_x_and_z_data_then_a_new_shift_starts_from_zero(reg: Register) -> None:
    reg.ok(0x20, [CASHIER])
    assert reg.sub(0x01, 12) == REPORT
    assert reg.sub(0x02, 10) == ("2",)  # next X report
    reg.ok(0x21, [CASHIER])
    assert reg.sub(0x01, 12) == REPORT  # the Z report's figures: taken before its own FD
    assert reg.sub(0x01, 3) == _payments("100.00", "80.00")  # the closed shift is still readable
    assert reg.sub(0x01, 7) == ("2", "1", "1", "0", "1", "1")
    reg.ok(0x23, [CASHIER])
    assert reg.sub(0x01, 1) == ("2",)
    assert reg.sub(0x01, 2) == ("1",)
    assert reg.sub(0x01, 3) == ZERO16
    assert reg.sub(0x01, 4) == ("0",) * 16
    assert reg.sub(0x01, 7) == ("0",) * 6
    assert reg.sub(0x01, 8) == ("0.00",) * 4
    assert reg.sub(0x01, 10) == ("0.00",) * 6
    assert reg.sub(0x01, 13) == ZERO16
    assert reg.sub(0x01, 12) == REPORT  # still the last report's
    assert reg.sub(0x78, 17) == ("7",)  # the new shift's opening report
    assert reg.sub(0x78, 23, 0, 1) == ("0", "0.00", *("0.00",) * 11, "0", "0.00")
    assert reg.sub(0x78, 23, 1, 1)[:4] == ("2", "180.00", "100.00", "80.00")  # the ФН's counters stay


def test_device_information(reg: Register) -> None:
    core = reg.core
    assert reg.sub(0x02, 1) == (core.serial,)
    assert reg.sub(0x02, 2) == ("570",)
    assert reg.sub(0x02, 5) == (core.now().strftime("%d%m%y"), core.last_fd().at.strftime("%H%M%S"))
    assert len(reg.sub(0x02, 6)) == 1  # a date only
    assert reg.sub(0x02, 7) == ("350.00",)
    assert reg.sub(0x02, 8) == ("6",)
    assert reg.sub(0x02, 9) == ("0",)  # registered at activation, before any shift
    assert reg.sub(0x02, 10) == ("1",)
    assert reg.sub(0x02, 11) == ("6",)
    assert reg.sub(0x02, 12) == ("180.00", "50.00", "0.00", "0.00")
    assert len(reg.sub(0x02, 14)) == 2  # FFD 1.2: date and days left
    assert reg.sub(0x02, 15) == ("0",)
    assert reg.sub(0x02, 16) == ("0",)  # 80 mm
    assert reg.sub(0x02, 21) == ("9",)
    assert reg.sub(0x02, 23) == (str(int(core.fn.tax_systems)), "0", "0")
    assert reg.sub(0x02, 24) == ("4", "10")
    assert reg.sub(0x02, 70) == (core.firmware,)
    for fm16_only in (18, 19, 20, 22, 40, 71):
        assert reg.call(0x02, [fm16_only]).error == 0x03


def test_the_fm16_edition_answers_its_own_sub_requests() -> None:
    start = Register("start")
    assert start.sub(0x02, 16) == ("1",)  # Viki Print 57
    assert start.sub(0x02, 18) == ("32",)
    assert start.sub(0x02, 18, 1) == ("42",)
    cid, csd = start.sub(0x02, 19)[0], start.sub(0x02, 20)[0]
    assert len(cid) == len(csd) == 32 and cid.startswith("03534453")
    assert start.sub(0x02, 22) == ("12",)
    assert start.sub(0x02, 40) == ("1",)
    assert len(start.sub(0x02, 71)) == 1
    assert start.sub(0x05, 7) == ("3050",)
    assert [len(start.sub(0x05, n)) for n in (10, 11, 12, 13)] == [1, 1, 1, 1]
    for not_fm16 in (1, 2, 3, 4, 5, 6, 8, 9):
        assert start.call(0x05, [not_fm16]).error == 0x03
    assert start.call(0x78, [18]).error == 0x03  # punix only


def test_receipt_data(reg: Register) -> None:
    assert reg.sub(0x03, 1) == ("0.00", "0.00", "0.00")
    reg.ok(0x30, [2, 1, CASHIER])
    reg.ok(0x42, ["Хлеб", "", 2, "25.00", 3])
    assert reg.sub(0x03, 1) == ("50.00", "0.00", "0.00")
    reg.ok(0x32)
    # the manual: "data of the last closed receipt: receipt type (0 for an annulled one)" — the
    # annulled receipt is the last one: type 0, its sum, nothing fiscal
    assert reg.sub(0x03, 2) == ("0", "6", "0", "0", "50.00", "0.00", "0.00", "", "0")


def test_service_information_and_its_resets(reg: Register) -> None:
    cuts = int(reg.sub(0x05, 3)[0])
    assert cuts == reg.core.tape.count("-" * 32 + " ✂") > 0
    assert reg.sub(0x05, 8) == (str(cuts),)
    head = int(reg.sub(0x05, 4)[0])
    assert head > 0 and head == int(reg.sub(0x05, 9)[0])
    assert reg.sub(0x05, 1) == ("24000",) and len(reg.sub(0x05, 2)) == 1
    assert reg.sub(0x05, 5) == ()
    assert reg.sub(0x05, 3) == ("0",) and reg.sub(0x05, 4) == (str(head),)
    assert reg.sub(0x05, 6) == ()
    assert reg.sub(0x05, 4) == ("0",)
    reg.ok(0x20, [CASHIER])
    assert reg.sub(0x05, 3) == ("1",) and int(reg.sub(0x05, 4)[0]) > 0
    assert reg.sub(0x05, 8) == (str(cuts + 1),)
    for fm16_only in (10, 11, 12, 13):
        assert reg.call(0x05, [fm16_only]).error == 0x03


def test_fn_requests(reg: Register) -> None:
    core = reg.core
    assert reg.sub(0x78, 3) == ("5",)
    assert reg.sub(0x78, 6) == ("1", "1", "4")
    assert reg.sub(0x78, 13) == ("00",)
    assert reg.sub(0x78, 17) == ("2",)
    left, free = reg.sub(0x78, 18)
    assert int(left) == 250_000 - 5 and int(free) > 0
    assert reg.sub(0x78, 22) == ("4", "4")
    sales = ("2", "180.00", "100.00", "80.00", "0.00", "0.00", "0.00", "16.67", "7.27", "0.00", "0.00")
    assert reg.sub(0x78, 23, 0, 1) == (*sales, "0.00", "0.00", "0", "0.00")  # 15 fields
    assert reg.sub(0x78, 23, 1, 2) == ("1", "50.00", "50.00", *("0.00",) * 4, "8.33", *("0.00",) * 5, "0", "0.00")
    assert reg.call(0x78, [23, 0, 5]).error == 0x03
    # document 3 (the first sale) from the archive: the ФН's structure
    flag, data = reg.sub(0x78, 11, 3)
    doc = core.document_by_number(3)
    raw = bytes.fromhex(data)
    assert flag == ("1" if doc.delivered else "0")
    assert raw[0] == 3 and int.from_bytes(raw[6:10], "little") == 3
    assert int.from_bytes(raw[10:14], "little") == int(doc.fiscal_sign)
    assert raw[14] == 1 and int.from_bytes(raw[15:20], "little") == 10000
    if doc.delivered:
        receipt = bytes.fromhex(reg.sub(0x78, 12, 3)[0])
        assert len(receipt) == 5 + 18 + 4 and int.from_bytes(receipt[-4:], "little") == 3
    assert reg.call(0x78, [11, 99]).error == 0x03


def test_a_document_as_tlv(reg: Register) -> None:
    kind, size = reg.sub(0x78, 15, 3)
    assert kind == "3"
    first = bytes.fromhex(reg.sub(0x78, 16, "", 20)[0])
    rest = bytes.fromhex(reg.sub(0x78, 16)[0])
    tlv = first + rest
    assert len(first) == 20 and len(tlv) == int(size)
    assert reg.call(0x78, [16]).error == 0x03  # read to the end
    tags: dict[int, bytes] = {}
    while tlv:
        tag, length = int.from_bytes(tlv[:2], "little"), int.from_bytes(tlv[2:4], "little")
        tags[tag] = tlv[4 : 4 + length]
        tlv = tlv[4 + length :]
    assert int.from_bytes(tags[1040], "little") == 3
    assert int.from_bytes(tags[1020], "little") == 10000  # kopecks
    assert int.from_bytes(tags[1031], "little") == 10000
    assert tags[1054] == b"\x01" and int.from_bytes(tags[1042], "little") == 1
    assert tags[1041].decode() == reg.core.fn.serial
    assert reg.sub(0x78, 20, 1) == ("1",)
    registration = bytes.fromhex(reg.sub(0x78, 21)[0])
    assert registration[:8] == (1040).to_bytes(2, "little") + b"\x04\x00" + (1).to_bytes(4, "little")
    assert reg.call(0x78, [20, 2]).error == 0x03


def test_ffd_105_differences() -> None:
    old = Register("kf", {"ffd": "1.05"})
    old.ok(0x23, [CASHIER])
    assert old.sub(0x01, 18) == ("0", "0.00", "0.00")  # count + 2 sums
    assert len(old.sub(0x02, 14)) == 1  # the date only
    for n in (22, 23):
        assert old.call(0x78, [n]).error == 0x03
