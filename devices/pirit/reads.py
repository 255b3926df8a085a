"""Pirit reads that take several requests: the shift counters (0x01, 0x02/7) and the number of
registrations the ФН holds (0x78/20).  A mixin of :class:`~devices.pirit.driver.PiritDriver`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from harness.device import ShiftCounters
from harness.errors import DeviceError, LinkCorrupted

from .protocol import parse_int
from .wire import PiritWire

REGISTRATIONS_SEARCH_LIMIT = 64  # more than any ФН allows (R5.6: 30 observed)


class PiritReads(PiritWire):
    _registrations_seen: int | None = None  # the last registration count 0x78/20 showed

    def counters(self) -> ShiftCounters:
        """The manual's 0x01 "сменные счетчики": 1 shift number, 7 receipt counts (sale, return,
        annulled, postponed, cash in, cash out), 3 / 5 sale / return sums by the 16 payment types
        (summed here); 0x02/7 the cash in the drawer."""
        shift = self.sub(0x01, 1)
        counts = self.sub(0x01, 7)
        if not shift or len(counts) < 2:
            raise LinkCorrupted(f"0x01/1, 0x01/7 answers have {len(shift)}, {len(counts)} fields, expected 1, 6")
        return ShiftCounters(
            shift_number=parse_int(shift[0]),
            sales=parse_int(counts[0]),
            sales_total=_money_sum(self.sub(0x01, 3), "0x01/3"),
            returns=parse_int(counts[1]),
            returns_total=_money_sum(self.sub(0x01, 5), "0x01/5"),
            cash=_money(self.sub(0x02, 7)[0], "0x02/7"),
        )

    def _registrations_done(self) -> int | None:
        """How many registrations the ФН holds: the highest n that 0x78/20 answers; None when the
        firmware has no 0x78/20.  The count only grows on one ФН: the last one found is tried
        first (2 requests), else a binary search (at most 7)."""
        known = self._registrations_seen
        if known is not None and self._answers_registration(known) and not self._answers_registration(known + 1):
            return known
        if not self._answers_registration(1):
            self._registrations_seen = None
            return None
        low, high = 1, REGISTRATIONS_SEARCH_LIMIT  # 0x78/20 answers for 1..low, not for high
        while high - low > 1:
            middle = (low + high) // 2
            if self._answers_registration(middle):
                low = middle
            else:
                high = middle
        self._registrations_seen = low
        return low

    def _answers_registration(self, n: int) -> bool:
        try:
            self.sub(0x78, 20, n)
        except DeviceError:
            return False
        return True


def _money(text: str, what: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:
        raise LinkCorrupted(f"{what} answer has a sum of {text!r}") from None


def _money_sum(fields: Sequence[str], what: str) -> Decimal:
    """The sums by payment type of a 0x01/3 or 0x01/5 answer, added up."""
    return sum((_money(value, what) for value in fields if value.strip()), Decimal(0))
