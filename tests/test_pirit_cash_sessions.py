"""Cash-application sessions through the real Pirit driver on the Касса Ф emulator (issue 12, item 5).

A hypothesis state machine plays random sessions — shifts, sales in cash, by card and split,
cash returns, cash in and out (and a cash out of more than the drawer holds, which must be refused
with 0x0E and change nothing), annulled receipts, service documents, X and Z reports — with the
driver's low-level ``call``/``fields`` (the commands a cash program sends), and keeps its own
model of the register (tests/cash_session_model.py).  After every step the register must agree:
FD numbers contiguous (0x78/3; each 0x31 answer of a receipt the previous FD + 1, non-fiscal
documents and X reports no FD at all), the drawer (0x02/7), the shift's sums and payment counts
by payment type (0x01/3..6), receipt counts (0x01/7) and sums (0x01/8), the grand totals (0x02/12:
only growing, the sum of every receipt), the shift (0x01/1, 0x01/2, 0x78/6, 0x00), the OFD queue
(0x78/7).  After a Z report and a new shift the shift counters are zero.

One deterministic working day does each operation once, with the expected figures written out.
Every answer is checked against the manual's layout (Punix 1.2 edition: field counts and types).
The link is in memory (tests/cash_session_model.py): the driver's framing, no pty, no sleeps; the
emulator's clock is virtual and moves only when the test moves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from devices.emulator.core import FiscalCore
from devices.pirit.driver import PiritDriver
from devices.pirit.protocol import format_money, format_quantity
from harness.errors import DeviceError

from .cash_session_model import (
    CARD,
    CASH,
    CASHIER,
    CLOSE_FISCAL,
    CLOSE_OTHER,
    ITEM_ANSWER,
    CashDeskModel,
    amount,
    ask,
    ints,
    memory_driver,
    money,
    query,
)

START = datetime(2021, 3, 1, 9, 0, 0)
STEP_SECONDS = 45  # virtual time between two operations of a session
SALE, RETURN, SERVICE, CASH_IN, CASH_OUT = 2, 3, 1, 4, 5  # 0x30 document types
NO_VAT = 3  # 0x42 tax rate index: without VAT
ZERO16 = [Decimal(0)] * 16

Item = tuple[str, Decimal, Decimal]  # name, quantity, price


class Session:
    """A cash program's operations on one register, each answer checked against the model."""

    def __init__(self, kkt: PiritDriver, core: FiscalCore) -> None:
        self.kkt = kkt
        self.core = core  # only to move the virtual clock and the OFD link
        grand = money(query(kkt, 0x02, 12))
        self.model = CashDeskModel(
            fd=int(query(kkt, 0x78, 3)[0]),
            shift=int(query(kkt, 0x01, 1)[0]),
            shift_open=bool(int(query(kkt, 0x00)[1]) & 0b100),
            cash=money(query(kkt, 0x02, 7))[0],
            grand_sales=grand[0],
            grand_returns=grand[1],
        )
        assert grand[2:] == [0, 0], f"0x02/12 purchases of a fresh register: {grand}"
        self.grand_seen = grand
        self.fd_times: dict[int, datetime] = {}
        self.queued_after: int | None = None  # the OFD link is down since this FD (None: up)

    # -------------------------------------------------------------- time and the OFD

    def tick(self) -> None:
        self.core.lab_clock_advance(STEP_SECONDS)

    def ofd(self, online: bool) -> None:
        self.core.set_ofd(online)
        self.queued_after = None if online else self.model.fd

    def _new_fd(self) -> None:
        self.fd_times[self.model.fd] = self.kkt.clock()

    # -------------------------------------------------------------- documents

    def _open(self, doc_type: int) -> None:
        ask(self.kkt, 0x30, [doc_type, 1, CASHIER, "", "", ""])

    def _close_other(self) -> None:
        """0x31 of a non-fiscal document: two fields, no FD consumed."""
        closed = ask(self.kkt, 0x31, [0], CLOSE_OTHER)
        self._through(int(closed[0]), closed)
        assert int(query(self.kkt, 0x78, 3)[0]) == self.model.fd, "a non-fiscal document consumed an FD number"

    def _through(self, number: int, answer: list[str]) -> None:
        assert number > self.model.through, f"0x31 through number {number} after {self.model.through}: {answer}"
        self.model.through = number

    def open_shift(self) -> None:
        ask(self.kkt, 0x23, [CASHIER])
        self.model.open_shift()
        self._new_fd()
        # a new shift's counters are zero (0x01/3, 5, 7, 8), whatever the last shift did
        assert money(query(self.kkt, 0x01, 3)) == ZERO16
        assert money(query(self.kkt, 0x01, 5)) == ZERO16
        assert ints(query(self.kkt, 0x01, 7)) == [0] * 6
        assert money(query(self.kkt, 0x01, 8)) == [0] * 4
        assert ints(query(self.kkt, 0x78, 6)) == [self.model.shift, 1, 1]

    def close_shift(self) -> None:
        ask(self.kkt, 0x21, [CASHIER, 0])
        self.model.close_shift()
        self._new_fd()
        self.check_last_report()
        assert ints(query(self.kkt, 0x78, 6))[:2] == [self.model.shift, 0]

    def x_report(self) -> None:
        ask(self.kkt, 0x20, [CASHIER])
        self.check_last_report()

    def check_last_report(self) -> list[str]:
        """0x01/12 after an X or Z report: the drawer and the shift's counts and sums."""
        report = query(self.kkt, 0x01, 12)
        assert money(report[2:]) == self.model.last_report(), f"0x01/12 {report}"
        return report

    def receipt(
        self, doc_type: int, items: list[Item], payments: list[tuple[int, Decimal]]
    ) -> tuple[list[str], Decimal, dict[int, Decimal]]:
        """A sale or return receipt: open, items, subtotal, payments, close.  Returns the 0x31
        answer, the total, and what each payment type settled (cash net of change)."""
        total = sum((amount(price, quantity) for _, quantity, price in items), Decimal(0))
        self._open(doc_type)
        for name, quantity, price in items:
            ask(self.kkt, 0x42, [name, "", format_quantity(quantity), format_money(price), NO_VAT], ITEM_ANSWER)
        ask(self.kkt, 0x44)
        held = money(query(self.kkt, 0x03, 1))
        assert held[0] == total, f"0x03/1 holds {held[0]} for items {items} (each sum rounded half up: {total})"
        for kind, value in payments:
            ask(self.kkt, 0x47, [kind, format_money(value)])
        closed = ask(self.kkt, 0x31, [0], CLOSE_FISCAL)
        model = self.model
        assert int(closed[3]) == model.fd + 1, f"0x31 FD {closed[3]}, the last FD was {model.fd}: {closed}"
        assert int(closed[5]) == model.shift, f"0x31 shift {closed[5]}: {closed}"
        assert int(closed[6]) == model.receipts + 1, f"0x31 receipt {closed[6]} of the shift's {model.receipts}"
        clock = self.kkt.clock()
        assert (closed[7], closed[8]) == (f"{clock:%d%m%y}", f"{clock:%H%M%S}"), f"0x31 date, time: {closed}"
        self._through(int(closed[0]), closed)
        settled: dict[int, Decimal] = {}
        for kind, value in payments:
            settled[kind] = settled.get(kind, Decimal(0)) + value
        change = sum(settled.values(), Decimal(0)) - total
        if change:
            settled[CASH] -= change
        model.receipt(sale=doc_type == SALE, total=total, paid={k: v for k, v in settled.items() if v})
        self._new_fd()
        last = query(self.kkt, 0x03, 2)
        assert (int(last[0]), int(last[2]), Decimal(last[4]), last[7], int(last[8])) == (
            doc_type,
            model.receipts,
            total,
            closed[4],
            model.fd,
        ), f"0x03/2 {last} after the receipt {closed}"
        return closed, total, settled

    def annul(self, items: list[Item], subtotal: bool) -> Decimal:
        total = sum((amount(price, quantity) for _, quantity, price in items), Decimal(0))
        self._open(SALE)
        for name, quantity, price in items:
            ask(self.kkt, 0x42, [name, "", format_quantity(quantity), format_money(price), NO_VAT], ITEM_ANSWER)
        if subtotal:
            ask(self.kkt, 0x44)
        held = money(query(self.kkt, 0x03, 1))[0]
        assert held == total, f"0x03/1 holds {held} for items {items} (each sum rounded half up: {total})"
        assert int(query(self.kkt, 0x00)[2]) >> 4 != 0, "a receipt with items is not an open document"
        ask(self.kkt, 0x32)
        last = query(self.kkt, 0x03, 2)  # the manual: the last closed receipt, "type 0 for an annulled one"
        assert (int(last[0]), Decimal(last[4])) == (0, total), f"0x03/2 {last} after annulling a receipt of {total}"
        self.model.annulled += 1
        self.model.annulled_sum += total
        return total

    def cash_move(self, doc_type: int, value: Decimal) -> None:
        self._open(doc_type)
        ask(self.kkt, 0x48, ["", format_money(value)])
        self._close_other()
        if doc_type == CASH_IN:
            self.model.cash += value
            self.model.cash_in += 1
            self.model.cash_in_sum += value
        else:
            self.model.cash -= value
            self.model.cash_out += 1
            self.model.cash_out_sum += value

    def cash_out_refused(self, value: Decimal) -> None:
        """A cash out of more than the drawer: 0x48 refused with 0x0E (negative result), the
        document then annulled; nothing changes."""
        fd, cash = self.model.fd, money(query(self.kkt, 0x02, 7))[0]
        self._open(CASH_OUT)
        with pytest.raises(DeviceError) as refused:
            self.kkt.call(0x48, ["", format_money(value)])
        assert refused.value.code == 0x0E, f"cash out of {value} from {cash}: {refused.value!r}"
        assert int(query(self.kkt, 0x00)[2]) == (1 << 4) | CASH_OUT, "the cash-out document is still open"
        ask(self.kkt, 0x32)
        assert money(query(self.kkt, 0x02, 7))[0] == cash
        assert int(query(self.kkt, 0x78, 3)[0]) == fd

    def service(self, lines: list[str]) -> None:
        self._open(SERVICE)
        for line in lines:
            ask(self.kkt, 0x40, [line, 0])
        self._close_other()

    # -------------------------------------------------------------- what must always hold

    def check(self) -> None:
        kkt, model = self.kkt, self.model
        status = ints(query(kkt, 0x00))
        assert status[2] == 0, f"a document is left open: 0x00 {status}"
        assert bool(status[1] & 0b100) == model.shift_open, f"0x00 current flags {status[1]:#x}"
        assert int(query(kkt, 0x78, 3)[0]) == model.fd, "0x78/3 last FD"
        assert int(query(kkt, 0x02, 8)[0]) == model.fd + 1, "0x02/8 next document"
        assert money(query(kkt, 0x02, 7)) == [model.cash], "0x02/7 cash in the drawer"
        assert int(query(kkt, 0x01, 1)[0]) == model.shift, "0x01/1 shift"
        assert int(query(kkt, 0x01, 2)[0]) == model.receipts + 1, "0x01/2 next receipt"
        assert ints(query(kkt, 0x78, 6)) == [model.shift, int(model.shift_open), model.receipts + 1], "0x78/6"
        assert money(query(kkt, 0x01, 3)) == model.sales.by_type, "0x01/3 sales by payment type"
        assert ints(query(kkt, 0x01, 4)) == model.sales.payments, "0x01/4 payments by sales"
        assert money(query(kkt, 0x01, 5)) == model.returns.by_type, "0x01/5 returns by payment type"
        assert ints(query(kkt, 0x01, 6)) == model.returns.payments, "0x01/6 payments by returns"
        assert ints(query(kkt, 0x01, 7)) == model.counts(), "0x01/7 receipts by kind"
        assert money(query(kkt, 0x01, 8)) == model.sums(), "0x01/8 annulled, postponed, cash in, cash out"
        grand = money(query(kkt, 0x02, 12))
        assert all(now >= before for now, before in zip(grand, self.grand_seen, strict=True)), (
            f"0x02/12 went down: {self.grand_seen} → {grand}"
        )
        assert grand == [model.grand_sales, model.grand_returns, 0, 0], "0x02/12 grand totals"
        self.grand_seen = grand
        self.check_ofd_queue()

    def check_ofd_queue(self) -> list[str]:
        ofd = query(self.kkt, 0x78, 7)
        status, count, first = ints(ofd[:3])
        if self.queued_after is None:
            assert count == 0 and not status & 0b10, f"0x78/7 with the OFD online: {ofd}"
            return ofd
        expected = self.model.fd - self.queued_after
        assert count == expected, f"0x78/7 {ofd}: {expected} documents since FD {self.queued_after} are unsent"
        if expected:
            when = self.fd_times[self.queued_after + 1]
            assert (first, ofd[3], ofd[4]) == (self.queued_after + 1, f"{when:%d%m%y}", f"{when:%H%M%S}"), ofd
            assert status & 0b10, f"0x78/7 status {status:#x}: no message for the OFD"
        return ofd


# ------------------------------------------------------------------ the state machine


def _cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda c: Decimal(c) / 100)


NAMES = st.sampled_from(["Сахар", "Хлеб", "Молоко 3.2%", "Tea", "Кофе молотый"])
ITEM = st.tuples(NAMES, _cents(1, 500), _cents(1, 99999)).map(
    lambda i: (i[0], i[1] if amount(i[2], i[1]) > 0 else Decimal(1), i[2])  # no item of zero sum
)
ITEMS = st.lists(ITEM, min_size=1, max_size=3)
TEXT = st.text(alphabet="АБВГДЕЖЗИКЛМНабвгдежзиклмн0123456789 .,:-ABCxyz", min_size=1, max_size=40)


class CashSessions(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.kkt, core = memory_driver("kf", start=START)
        self.session = Session(self.kkt, core)

    def teardown(self) -> None:
        if hasattr(self, "kkt"):
            self.kkt.close()

    @property
    def model(self) -> CashDeskModel:
        return self.session.model

    @invariant()
    def the_register_agrees_with_the_model(self) -> None:
        if hasattr(self, "session"):
            self.session.check()
            self.session.tick()

    @precondition(lambda self: not self.model.shift_open)
    @rule()
    def open_shift(self) -> None:
        self.session.open_shift()

    @precondition(lambda self: self.model.shift_open)
    @rule(items=ITEMS, how=st.sampled_from(["cash", "card", "split"]), data=st.data())
    def sale(self, items: list[Item], how: str, data: st.DataObject) -> None:
        total = sum((amount(price, quantity) for _, quantity, price in items), Decimal(0))
        cents = int(total * 100)
        payments: list[tuple[int, Decimal]] = []
        if how == "split" and cents >= 2:
            card = Decimal(data.draw(st.integers(1, cents - 1), label="card part (cents)")) / 100
            payments.append((CARD, card))
            total -= card
        elif how == "card":
            payments.append((CARD, total))
            total = Decimal(0)
        if total:
            change = data.draw(st.sampled_from([0, 0, 1, 50, 10000]), label="change (cents)")  # tendered more
            payments.append((CASH, total + Decimal(change) / 100))
        self.session.receipt(SALE, items, payments)

    @precondition(lambda self: self.model.shift_open and self.model.returnable >= Decimal("0.01"))
    @rule(data=st.data(), name=NAMES)
    def cash_return(self, data: st.DataObject, name: str) -> None:
        limit = int(self.model.returnable * 100)
        price = Decimal(data.draw(st.integers(1, limit), label="returned (cents)")) / 100
        self.session.receipt(RETURN, [(name, Decimal(1), price)], [(CASH, price)])

    @precondition(lambda self: self.model.shift_open)
    @rule(value=_cents(1, 1_000_000))
    def cash_in(self, value: Decimal) -> None:
        self.session.cash_move(CASH_IN, value)

    @precondition(lambda self: self.model.shift_open and self.model.cash > 0)
    @rule(data=st.data())
    def cash_out(self, data: st.DataObject) -> None:
        cents = data.draw(st.integers(1, int(self.model.cash * 100)), label="cash out (cents)")
        self.session.cash_move(CASH_OUT, Decimal(cents) / 100)

    @precondition(lambda self: self.model.shift_open)
    @rule(excess=_cents(1, 100_000))
    def cash_out_more_than_the_drawer(self, excess: Decimal) -> None:
        self.session.cash_out_refused(self.model.cash + excess)

    @precondition(lambda self: self.model.shift_open)
    @rule(items=ITEMS, subtotal=st.booleans())
    def annul(self, items: list[Item], subtotal: bool) -> None:
        self.session.annul(items, subtotal)

    @rule(lines=st.lists(TEXT, min_size=1, max_size=3))
    def service_document(self, lines: list[str]) -> None:
        self.session.service(lines)

    @precondition(lambda self: self.model.shift_open)
    @rule()
    def x_report(self) -> None:
        self.session.x_report()

    @precondition(lambda self: self.model.shift_open)
    @rule()
    def z_report(self) -> None:
        self.session.close_shift()


CashSessions.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,  # the same sessions on every run: never flaky
    database=None,
    # no "explain" phase: it traces every line (sys.settrace before Python 3.12) and replaying a
    # failing session under it takes minutes
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    report_multiple_bugs=False,  # one failing session, shrunk: the others are usually the same fault
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_cash_sessions = CashSessions.TestCase


# ------------------------------------------------------------------ one working day


@pytest.fixture
def day() -> Iterator[Session]:
    kkt, core = memory_driver("kf", start=START, settings={"ofd": "offline"})
    try:
        yield Session(kkt, core)
    finally:
        kkt.close()


def test_a_working_day(day: Session) -> None:
    """Shift open, cash in, sales in cash (with change), by card and split, a cash return, an
    annulled receipt, cash out, a service document, X report, the ФН and OFD queries, Z report, the
    OFD link back, the next shift: every figure written out."""
    kkt, model = day.kkt, day.model
    first_fd, shift = model.fd, model.shift
    assert (first_fd, shift, model.cash) == (1, 0, Decimal(0))  # a fresh register: its registration, no shift
    day.ofd(False)  # the OFD link is down all day: the queue holds the day's documents
    day.check()

    day.open_shift()
    day.tick()
    day.cash_move(CASH_IN, Decimal("1000.00"))
    day.tick()
    sugar, bread = ("Сахар", Decimal("2"), Decimal("55.50")), ("Хлеб", Decimal("1"), Decimal("42.30"))
    closed, total, settled = day.receipt(SALE, [sugar, bread], [(CASH, Decimal("200.00"))])
    assert (total, settled) == (Decimal("153.30"), {CASH: Decimal("153.30")})  # 46.70 change
    assert (int(closed[3]), int(closed[5]), int(closed[6])) == (first_fd + 2, shift + 1, 1)
    day.tick()
    day.receipt(SALE, [("Кофе", Decimal("1"), Decimal("999.99"))], [(CARD, Decimal("999.99"))])
    day.tick()
    day.receipt(
        SALE, [("Молоко", Decimal("3"), Decimal("100.00"))], [(CARD, Decimal("100.00")), (CASH, Decimal("200"))]
    )
    day.tick()
    day.receipt(RETURN, [bread], [(CASH, Decimal("42.30"))])
    day.tick()
    assert day.annul([sugar], subtotal=True) == Decimal("111.00")
    day.tick()
    day.cash_move(CASH_OUT, Decimal("500.00"))
    day.cash_out_refused(Decimal("100000.00"))
    day.service(["Инкассация принята", "Смена 1, касса 1"])
    day.tick()
    day.check()

    cash = Decimal("1000.00") + Decimal("153.30") + Decimal("200.00") - Decimal("42.30") - Decimal("500.00")
    assert money(query(kkt, 0x02, 7)) == [cash] == [Decimal("811.00")]
    assert money(query(kkt, 0x01, 3))[:2] == [Decimal("353.30"), Decimal("1099.99")]
    assert ints(query(kkt, 0x01, 4))[:2] == [2, 2]
    assert money(query(kkt, 0x01, 5))[:2] == [Decimal("42.30"), 0]
    assert ints(query(kkt, 0x01, 6))[:2] == [1, 0]
    assert ints(query(kkt, 0x01, 7)) == [3, 1, 1, 0, 1, 1]
    assert money(query(kkt, 0x01, 8)) == [Decimal("111.00"), 0, Decimal("1000.00"), Decimal("500.00")]
    assert money(query(kkt, 0x02, 12)) == [Decimal("1453.29"), Decimal("42.30"), 0, 0]
    assert ints(query(kkt, 0x01, 2)) == [5]

    day.x_report()
    expected = ["811.00", "3", "1453.29", "1", "42.30", "1", "111.00", "1", "1000.00", "1", "500.00"]
    assert money(query(kkt, 0x01, 12)[2:]) == [Decimal(v) for v in expected]

    # the ФН: its number, state (fiscal mode, shift open), last FD, the shift, the OFD queue
    fn_number = query(kkt, 0x78, 1)[0]
    assert fn_number.isdigit() and len(fn_number) == 16, fn_number
    state, document, _warnings = ints(query(kkt, 0x78, 2))
    assert (state & 0x0F, bool(state & 0x20), document) == (3, True, 0)
    assert ints(query(kkt, 0x78, 3)) == [first_fd + 5]  # shift open and four receipts
    assert ints(query(kkt, 0x78, 6)) == [shift + 1, 1, 5]
    ofd = day.check_ofd_queue()
    assert int(ofd[1]) == 5 and int(ofd[2]) == first_fd + 1

    day.close_shift()
    assert ints(query(kkt, 0x78, 3)) == [first_fd + 6]
    assert int(query(kkt, 0x00)[1]) & 0b100 == 0
    assert int(day.check_ofd_queue()[1]) == 6
    day.check()

    day.ofd(True)  # the link comes back: the queue empties
    assert ints(query(kkt, 0x78, 7)[:3])[1:] == [0, 0]
    day.tick()
    day.open_shift()  # the new shift's counters are zero, the drawer and the grand totals carry over
    day.check()
    assert money(query(kkt, 0x02, 7)) == [Decimal("811.00")]
    assert money(query(kkt, 0x02, 12))[:2] == [Decimal("1453.29"), Decimal("42.30")]
    assert ints(query(kkt, 0x78, 6)) == [shift + 2, 1, 1]


# ------------------------------------------------------------------ what the manual says of edge cases


def test_an_item_sum_is_rounded_half_up(day: Session) -> None:
    """0x42: "the product of price and quantity is rounded to the nearest kopeck: less than 0.5
    kopeck is dropped, 0.5 kopeck and more rounds up" — 1.25 x 0.5 = 0.625 is 0.63."""
    day.open_shift()
    day._open(SALE)
    ask(day.kkt, 0x42, ["Товар", "", "0.5", "1.25", NO_VAT], ITEM_ANSWER)
    ask(day.kkt, 0x42, ["Товар", "", "0.5", "0.75", NO_VAT], ITEM_ANSWER)  # 0.375: 0.38
    assert money(query(day.kkt, 0x03, 1))[0] == Decimal("1.01")
    ask(day.kkt, 0x32)


def test_the_last_receipt_after_an_annulled_one_is_of_type_0(day: Session) -> None:
    """0x03/2: "data of the last closed receipt: receipt type (0 for an annulled one), …"."""
    day.open_shift()
    day.receipt(SALE, [("Сахар", Decimal(1), Decimal("10.00"))], [(CASH, Decimal("10.00"))])
    day.annul([("Хлеб", Decimal(1), Decimal("20.00"))], subtotal=False)
    assert int(query(day.kkt, 0x03, 2)[0]) == 0
