"""What tests/test_pirit_cash_sessions.py needs besides the tests: the real Pirit driver on an
in-process emulator over an in-memory link, the manual's answer layouts, and the cash desk's
expected state (the model the state machine keeps).

The link: a pyserial-like port whose far end is a :class:`~devices.pirit.emulator.PiritFrontEnd`
in this process.  What the driver writes is fed to the front-end at once and its answer waits to
be read, so every request goes through the driver's framing (packet ids, CRC, the answer matcher,
the 0x06/1 read after a 0x01/0x03 refusal) without a pty, a socket or a thread.  Nothing sleeps:
an answer is there before the driver reads, a missing one is a timeout at once.

The layouts are the Punix 1.2 manual's (commands 0x00, 0x01, 0x02, 0x03, 0x13, 0x31, 0x42, 0x78):
each answer must have exactly the manual's fields, each of the manual's type, after the echoed
sub-request number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore
from devices.pirit.driver import PiritDriver
from devices.pirit.emulator import PiritFrontEnd
from devices.pirit.protocol import Field, describe, parse_date, parse_time
from harness.link import Link
from harness.trace import Trace, TraceRecord
from harness.transport import Transport

CASHIER = "Кассир Иванова"
CENT = Decimal("0.01")

# ------------------------------------------------------------------ the in-memory link


class MemoryPort:
    """The pyserial port :class:`~harness.transport.Transport` expects, wired to a front-end."""

    def __init__(self, frontend: PiritFrontEnd) -> None:
        self._frontend = frontend
        self._answer = bytearray()
        self._open = True
        self.timeout: float | None = None
        self.write_timeout: float | None = 1.0

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def in_waiting(self) -> int:
        return len(self._answer)

    def read(self, size: int = 1) -> bytes:
        chunk = bytes(self._answer[:size])
        del self._answer[:size]
        return chunk

    def write(self, data: bytes, /) -> int:
        self._answer += self._frontend.feed(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False


def memory_driver(
    model: str = "kf", *, start: datetime, settings: dict[str, str] | None = None
) -> tuple[PiritDriver, FiscalCore]:
    """The real driver, connected ("start of work" done), on a fresh emulator of ``model`` whose
    virtual clock starts at ``start`` and never moves by itself."""
    emulator = build_emulator(model, {"clock": start.isoformat(), **(settings or {})})
    core = emulator.core
    transport = Transport(MemoryPort(PiritFrontEnd(core)), f"memory://{model}", Trace(describe), guard=None)
    kkt = PiritDriver(Link(transport), model=model, host_clock=core.now)
    kkt.connect()
    return kkt, core


# ------------------------------------------------------------------ the manual's layouts

INT, MONEY, TEXT, DATE, TIME, DIGITS = "integer", "fractional number", "string", "date", "time", "digits"
_INTEGER = re.compile(r"-?[0-9]+")
_FRACTION = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _of_type(value: str, kind: str) -> bool:
    if kind == TEXT:
        return True
    if kind in (INT, DIGITS):
        return bool(_INTEGER.fullmatch(value)) and (kind == INT or not value.startswith("-"))
    if kind == MONEY:
        return bool(_FRACTION.fullmatch(value))
    if kind == DATE:
        if value == "000000":  # an empty date (0x78/7 with an empty queue)
            return True
        try:
            parse_date(value)
        except ValueError:
            return False
        return len(value) == 6
    if kind == TIME:
        try:
            parse_time(value)
        except ValueError:
            return False
        return True
    raise AssertionError(f"unknown field type {kind}")


M16 = (MONEY,) * 16
I16 = (INT,) * 16
#: (command, sub-request or None) → the answer's fields after the echoed sub-request number
LAYOUTS: dict[tuple[int, int | None], tuple[str, ...]] = {
    (0x00, None): (INT, INT, INT),  # fatal, current flags, document state
    (0x01, 1): (INT,),  # shift number
    (0x01, 2): (INT,),  # next receipt number
    (0x01, 3): M16,  # sales by payment type
    (0x01, 4): I16,  # payments by sales, count
    (0x01, 5): M16,  # returns by payment type
    (0x01, 6): I16,  # payments by returns, count
    (0x01, 7): (INT,) * 6,  # sales, returns, annulled, postponed, cash in, cash out receipts
    (0x01, 8): (MONEY,) * 4,  # annulled, postponed, cash in, cash out sums
    # operation counter, document number, cash, then count and sum of sales, returns, annulled,
    # cash in, cash out
    (0x01, 12): (TEXT, INT, MONEY, INT, MONEY, INT, MONEY, INT, MONEY, INT, MONEY, INT, MONEY),
    (0x02, 7): (MONEY,),  # cash in the drawer
    (0x02, 8): (INT,),  # next document number
    (0x02, 12): (MONEY,) * 4,  # grand totals: sale, return, purchase, purchase return
    (0x03, 1): (MONEY,) * 3,  # current document: sum, discount, 0
    # type (0 annulled), operation counter, receipt number, document number, sum, discount, 0, FP, FD
    (0x03, 2): (INT, TEXT, INT, INT, MONEY, MONEY, MONEY, TEXT, INT),
    (0x13, None): (DATE, TIME),
    (0x78, 1): (TEXT,),  # ФН number
    (0x78, 2): (INT, INT, INT),  # ФН state, current document, warnings
    (0x78, 3): (DIGITS,),  # last FD number ("Строка")
    (0x78, 6): (INT, INT, INT),  # shift number, open, receipt number in shift
    (0x78, 7): (INT, INT, INT, DATE, TIME),  # status, queue length, first FD, its date and time
}
#: 0x31: through number, operation counter, "FD FP", FD, FP, shift, number in shift, date, time
CLOSE_FISCAL = (INT, TEXT, TEXT, INT, DIGITS, INT, INT, DATE, TIME)
CLOSE_OTHER = (INT, TEXT)  # every other document: through number and operation counter
NO_FIELDS: tuple[str, ...] = ()
ITEM_ANSWER = (MONEY,)  # 0x42: the item's tax, 4 places


def layout_problems(fields: Sequence[str], layout: Sequence[str]) -> list[str]:
    problems = []
    if len(fields) != len(layout):
        problems.append(f"{len(fields)} fields, the manual has {len(layout)}")
    for index, (value, kind) in enumerate(zip(fields, layout, strict=False)):
        if not _of_type(value, kind):
            problems.append(f"field {index + 1} {value!r} is not a {kind}")
    return problems


def last_frames(kkt: PiritDriver) -> str:
    """The last request and answer on the wire, raw and decoded (for a failure message)."""
    tx: TraceRecord | None = None
    rx: TraceRecord | None = None
    for record in reversed(kkt.trace.records):
        if record.direction == "RX" and rx is None:
            rx = record
        elif record.direction == "TX" and tx is None and rx is not None:
            tx = record
        if tx is not None:
            break
    lines = []
    for seen in (tx, rx):
        if seen is not None:
            lines.append(f"{seen.direction} {seen.raw.hex(' ')}  | {seen.decoded}")
    return "\n".join(lines)


def ask(kkt: PiritDriver, command: int, request: Sequence[Field] = (), layout: Sequence[str] = NO_FIELDS) -> list[str]:
    """``command`` through the driver's ``call``; its answer must have the manual's ``layout``."""
    answer = list(kkt.call(command, request).fields)
    problems = layout_problems(answer, layout)
    assert not problems, f"0x{command:02X} {list(request)}: {'; '.join(problems)}\n{last_frames(kkt)}"
    return answer


def query(kkt: PiritDriver, command: int, n: int | None = None) -> list[str]:
    """An information request (0x00, 0x13; 0x01/0x02/0x03/0x78 sub-request ``n``) checked against
    the manual's layout; the fields after the echoed number."""
    if n is None:
        return ask(kkt, command, (), LAYOUTS[(command, None)])
    answer = list(kkt.fields(command, [n]))
    where = f"0x{command:02X}/{n}"
    assert answer and answer[0].strip() == str(n), (
        f"{where}: the answer does not echo {n}: {answer}\n{last_frames(kkt)}"
    )
    problems = layout_problems(answer[1:], LAYOUTS[(command, n)])
    assert not problems, f"{where}: {'; '.join(problems)}: {answer[1:]}\n{last_frames(kkt)}"
    return answer[1:]


def money(values: Sequence[str]) -> list[Decimal]:
    return [Decimal(v) for v in values]


def ints(values: Sequence[str]) -> list[int]:
    return [int(v) for v in values]


def amount(price: Decimal, quantity: Decimal) -> Decimal:
    """An item's sum as the manual's 0x42 says: the product rounded to the kopeck, half up."""
    return (price * quantity).quantize(CENT, ROUND_HALF_UP)


# ------------------------------------------------------------------ the expected cash desk

CASH, CARD = 0, 1  # 0x47 payment type codes
PAYMENT_TYPES = 16


@dataclass
class ShiftSums:
    """One kind of receipt (sales or returns) over the shift: by payment type and in all."""

    count: int = 0
    total: Decimal = Decimal(0)
    by_type: list[Decimal] = field(default_factory=lambda: [Decimal(0)] * PAYMENT_TYPES)
    payments: list[int] = field(default_factory=lambda: [0] * PAYMENT_TYPES)

    def add(self, total: Decimal, paid: dict[int, Decimal]) -> None:
        self.count += 1
        self.total += total
        for kind, value in paid.items():
            self.by_type[kind] += value
            self.payments[kind] += 1


@dataclass
class CashDeskModel:
    """What the register must hold after each step, kept apart from it."""

    fd: int  # the last fiscal document's number
    shift: int
    shift_open: bool = False
    receipts: int = 0  # receipts (sales and returns) in the shift
    cash: Decimal = Decimal(0)  # in the drawer
    sales: ShiftSums = field(default_factory=ShiftSums)
    returns: ShiftSums = field(default_factory=ShiftSums)
    annulled: int = 0
    annulled_sum: Decimal = Decimal(0)
    cash_in: int = 0
    cash_in_sum: Decimal = Decimal(0)
    cash_out: int = 0
    cash_out_sum: Decimal = Decimal(0)
    grand_sales: Decimal = Decimal(0)  # 0x02/12, every receipt since the start
    grand_returns: Decimal = Decimal(0)
    through: int = 0  # the last 0x31 answer's through document number

    def open_shift(self) -> None:
        self.fd += 1
        self.shift += 1
        self.shift_open = True
        self.receipts = 0
        self.sales, self.returns = ShiftSums(), ShiftSums()
        self.annulled, self.annulled_sum = 0, Decimal(0)
        self.cash_in, self.cash_in_sum = 0, Decimal(0)
        self.cash_out, self.cash_out_sum = 0, Decimal(0)

    def close_shift(self) -> None:
        self.fd += 1
        self.shift_open = False

    def receipt(self, *, sale: bool, total: Decimal, paid: dict[int, Decimal]) -> None:
        """A closed receipt: ``paid`` is what each payment type settled (cash net of change)."""
        self.fd += 1
        self.receipts += 1
        cash = paid.get(CASH, Decimal(0))
        if sale:
            self.sales.add(total, paid)
            self.grand_sales += total
            self.cash += cash
        else:
            self.returns.add(total, paid)
            self.grand_returns += total
            self.cash -= cash

    @property
    def returnable(self) -> Decimal:
        """What a cash return may pay out: sold in cash this shift and not yet returned, and in the drawer."""
        return min(self.sales.by_type[CASH] - self.returns.by_type[CASH], self.cash)

    def counts(self) -> list[int]:
        """0x01/7: sales, returns, annulled, postponed, cash in, cash out."""
        return [self.sales.count, self.returns.count, self.annulled, 0, self.cash_in, self.cash_out]

    def sums(self) -> list[Decimal]:
        """0x01/8: annulled, postponed, cash in, cash out."""
        return [self.annulled_sum, Decimal(0), self.cash_in_sum, self.cash_out_sum]

    def last_report(self) -> list[Decimal | int]:
        """0x01/12 from field 3 on: cash, then count and sum of sales, returns, annulled, cash in, cash out."""
        return [
            self.cash,
            self.sales.count,
            self.sales.total,
            self.returns.count,
            self.returns.total,
            self.annulled,
            self.annulled_sum,
            self.cash_in,
            self.cash_in_sum,
            self.cash_out,
            self.cash_out_sum,
        ]
