"""Black-box test of ``kkt-hil emulate kf`` on the wire, fiscal flow, with the client of
tests/pirit_blackbox_client.py: opening a shift with the §2.6 worked frame, a cash sale with
its fiscal data and tape, the printer (no paper, cover open), the 24-hour shift rule on the
virtual clock, and the OFD queue draining once the OFD is online.
"""

from __future__ import annotations

import re

from .pirit_blackbox_client import (
    NO_PAPER,
    SHIFT_OPEN,
    SHIFT_OVER_24H,
    START,
    Stand,
    date6,
    open_shift,
    parse_answer,
    ready,
    request,
    time6,
)

SALE_OPEN = [2, 1, "Кассир", "", 1, ""]  # sale, department 1, cashier, no number, УСН доход, no address
SALE_ITEM = ["Сахар", "", 1, "100.00", 3]  # name, article, quantity, price, tax index 3 (без НДС)


# ====================================================================== shift and sale


def test_open_shift_with_the_worked_frame_and_status_answer(stand: Stand) -> None:
    link = ready(stand)
    link.send(bytes.fromhex("02 50 49 52 49 25 32 33 8A A0 E1 E1 A8 E0 1C 03 35 42"))  # §2.6
    answer = parse_answer(link.read_frame())
    assert (answer.packet_id, answer.command, answer.error) == (0x25, 0x23, 0)
    # §2.6: "answer to 0x00: no fatal, shift open, no document" — byte for byte
    link.send(request(0x00, packet_id=0x21))
    assert link.read_frame() == bytes.fromhex("02 21 30 30 30 30 30 1C 34 1C 30 1C 03 30 41")
    assert link.fn_query(6)[:2] == ["1", "1"]  # shift 1, open
    # a second 0x23 on an open shift is refused
    assert link.call(0x23, ["Кассир"]).error != 0


def test_sale_with_one_item_cash(stand: Stand) -> None:
    link = open_shift(stand)
    (last_fd_before,) = link.fn_query(3)
    assert link.ok(0x30, SALE_OPEN) == []
    assert link.status()[2] == 0x12  # state 1 (open), type 2 (sale)
    (tax,) = link.ok(0x42, SALE_ITEM)
    assert re.fullmatch(r"\d+\.\d{4}", tax) and float(tax) == 0.0  # без НДС: no tax, 4 decimals
    assert link.ok(0x44) == []
    assert link.status()[2] >> 4 == 2  # after the first subtotal
    assert link.ok(0x47, [0, "100.00"]) == []
    assert link.status()[2] == 0x42  # settled, must be closed
    fields = link.ok(0x31, [0])
    assert len(fields) >= 9
    fd_number, fiscal_sign = int(fields[3]), fields[4]
    assert fd_number == int(last_fd_before) + 1
    assert re.fullmatch(r"\d{1,10}", fiscal_sign) and int(fiscal_sign) > 0
    assert str(fd_number) in fields[2] and fiscal_sign in fields[2]  # "ФД и ФП"
    assert fields[5] == "1"  # shift number
    assert fields[7:9] == [date6(START), time6(START)]  # frozen clock
    assert link.status()[2] == 0  # no document
    assert link.fn_query(3) == [str(fd_number)]
    tape = "\n".join(stand.control({"op": "tape"})["tape"])
    assert "Сахар" in tape and fiscal_sign in tape
    # the next receipt gets the next number and a different fiscal sign
    link.ok(0x30, SALE_OPEN)
    link.ok(0x42, SALE_ITEM)
    link.ok(0x47, [0, "100.00"])
    second = link.ok(0x31, [0])
    assert int(second[3]) == fd_number + 1 and second[4] != fiscal_sign


def test_requests_without_trailing_fs_are_accepted(stand: Stand) -> None:
    link = ready(stand)
    assert link.ok(0x02, [1], trailing_fs=False)[0] == "1"
    assert link.ok(0x10, [date6(START), time6(START)], trailing_fs=False) == []


# ====================================================================== printer


def test_no_paper(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "paper", "state": "out"})
    link.send(request(0x30, SALE_OPEN, packet_id=0x27))
    assert link.read_frame() == bytes.fromhex("02 27 33 30 30 38 03 32 46")  # §2.6, byte for byte
    assert link.printer() & NO_PAPER
    assert link.status()[2] == 0  # no document was opened
    stand.control({"op": "paper", "state": "ok"})
    assert not link.printer() & NO_PAPER
    assert link.ok(0x30, SALE_OPEN) == []
    assert link.ok(0x32) == []  # cancel
    assert link.status()[2] == 0


def test_cover_open_refuses_printing_with_09(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "cover", "open": True})
    assert link.call(0x30, SALE_OPEN).error == 0x09
    assert link.printer() & (1 << 2)
    stand.control({"op": "cover", "open": False})
    assert link.printer() & (1 << 2) == 0
    assert link.ok(0x30, SALE_OPEN) == []


# ====================================================================== 24 h rule


def test_shift_longer_than_24_hours(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "clock", "advance": 86401})
    _, current, _ = link.status()
    assert current & SHIFT_OPEN and current & SHIFT_OVER_24H
    assert link.call(0x30, SALE_OPEN).error == 0x0A
    assert link.status()[2] == 0
    assert link.ok(0x21, ["Кассир"]) == []  # Z is allowed on the expired shift
    _, current, _ = link.status()
    assert not current & SHIFT_OPEN and not current & SHIFT_OVER_24H
    assert link.ok(0x23, ["Кассир"]) == []  # a new shift works again
    assert link.fn_query(6)[:2] == ["2", "1"]
    assert link.ok(0x30, SALE_OPEN) == []


def test_shift_is_not_expired_one_second_before_24_hours(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "clock", "advance": 86399})
    _, current, _ = link.status()
    assert current & SHIFT_OPEN and not current & SHIFT_OVER_24H
    stand.control({"op": "clock", "advance": 2})
    _, current, _ = link.status()
    assert current & SHIFT_OVER_24H


# ====================================================================== OFD queue


def test_ofd_queue_drains_when_the_ofd_comes_online(stand: Stand) -> None:
    stand.control({"op": "ofd", "online": False})
    link = open_shift(stand)
    link.ok(0x30, SALE_OPEN)
    link.ok(0x42, SALE_ITEM)
    link.ok(0x47, [0, "100.00"])
    receipt_fd = int(link.ok(0x31, [0])[3])
    status, count, first, day, clock = link.fn_query(7)
    assert int(count) == 2  # the shift-open report and the receipt wait for the OFD
    assert int(first) == receipt_fd - 1
    assert (day, clock) == (date6(START), time6(START))
    assert int(status) & (1 << 1)  # message waiting for the OFD
    assert not int(status) & 1  # OFD offline: no transport connection
    stand.control({"op": "ofd", "online": True})
    status, count, first, day, clock = link.fn_query(7)
    assert int(count) == 0
    assert not int(status) & (1 << 1)
