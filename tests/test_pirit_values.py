"""Pirit field values and names (devices/pirit/protocol): dates, times, money and quantities
formatted and parsed strictly, the command-name table, and ``describe()`` — exact for the §2.6
worked frames and total (never raising) on any input.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.pirit import protocol as p
from devices.pirit.protocol import ACK, ENQ

from .pirit_frames import NO_PAPER_ANS, OFD_ANS, OPEN_SHIFT_REQ, START_REQ, STATUS_ANS, STATUS_REQ

# --------------------------------------------------------------------------------------------
# Data types


def test_dates_and_times() -> None:
    assert p.format_date(date(2024, 11, 23)) == "231124"
    assert p.format_date(date(2009, 1, 5)) == "050109"
    assert p.parse_date("231124") == date(2024, 11, 23)
    assert p.parse_date("26032022") == date(2022, 3, 26)
    assert p.format_time(time(10, 15, 0)) == "101500"
    assert p.format_time(time(9, 5, 7, 999)) == "090507"
    assert p.parse_time("153000") == time(15, 30)
    for bad in ("", "2311245", "23-11-24", "321124", "２３１１２４"):
        with pytest.raises(ValueError):
            p.parse_date(bad)
    for bad in ("1015", "246000", "ab0000"):
        with pytest.raises(ValueError):
            p.parse_time(bad)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.times())
def test_date_time_round_trip(d: date, t: time) -> None:
    assert p.parse_date(p.format_date(d)) == d
    assert p.parse_time(p.format_time(t)) == t.replace(microsecond=0, tzinfo=None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("100"), "100.00"),
        (Decimal("100.5"), "100.50"),
        (Decimal("0.01"), "0.01"),
        (Decimal("-3.10"), "-3.10"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("12.3400"), "12.34"),
        (7, "7.00"),
    ],
)
def test_format_money(value: Decimal, text: str) -> None:
    assert p.format_money(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1"), "1"),
        (Decimal("1.000"), "1"),
        (Decimal("1.5"), "1.5"),
        (Decimal("1.50"), "1.5"),
        (Decimal("0.125"), "0.125"),
        (Decimal("10"), "10"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.000"), "0"),
        (Decimal("-0.000"), "0"),
    ],
)
def test_format_quantity(value: Decimal, text: str) -> None:
    assert p.format_quantity(value) == text


@pytest.mark.parametrize("value", [Decimal("1.005"), Decimal("NaN"), 1.5, "1.00", True])
def test_format_money_refuses(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        p.format_money(value)  # type: ignore[arg-type]  # a wrong type on purpose


def test_format_quantity_refuses_rounding() -> None:
    with pytest.raises(ValueError):
        p.format_quantity(Decimal("0.0001"))


def test_parse_numbers() -> None:
    assert p.parse_int("") == 0 and p.parse_int("42") == 42
    assert p.parse_decimal("") == 0 and p.parse_decimal("-1.25") == Decimal("-1.25")
    assert p.parse_decimal("100.00") == Decimal("100.00")
    with pytest.raises(ValueError):
        p.parse_decimal("1e5")
    with pytest.raises(ValueError):
        p.parse_int("x")


# --------------------------------------------------------------------------------------------
# Names and describe()


def test_command_names() -> None:
    assert p.COMMAND_NAMES[0x00] == "status"
    assert p.COMMAND_NAMES[0x10] == "start of work"
    for code in (0x02, 0x06, 0x21, 0x23, 0x30, 0x31, 0x42, 0x47, 0x60, 0x78, 0x9C, 0xA6):
        assert p.COMMAND_NAMES[code]
    assert all(isinstance(k, int) and 0 <= k <= 0xFF for k in p.COMMAND_NAMES)


def test_describe_examples() -> None:
    assert p.describe(STATUS_REQ) == "REQ id=0x21 00 status []"
    assert p.describe(STATUS_ANS) == 'ANS id=0x21 00 status err=00 ["0","4","0"]'
    assert p.describe(NO_PAPER_ANS) == "ANS id=0x27 30 open document err=08 []"
    assert p.describe(OPEN_SHIFT_REQ) == 'REQ id=0x25 23 open shift ["Кассир"]'
    assert p.describe(bytes([ENQ])) == "ENQ"
    assert p.describe(bytes([ACK])) == "ACK"


def test_describe_variants() -> None:
    assert "pwd='DRRB'" in p.describe(p.encode_request(0, packet_id=0x21, password=b"DRRB"))
    assert "BAD-CRC(got 21, want 20)" in p.describe(START_REQ[:-2] + b"21")
    assert p.describe(START_REQ[:-2] + b"21").startswith("REQ id=0x22 10 start of work")
    assert "recovery" in p.describe(p.encode_response(0x20, 0x00, 0x05))
    assert "unknown" in p.describe(p.encode_request(0xFE, packet_id=0x21))
    assert p.describe(OFD_ANS, kind="answer").startswith("ANS id=0x23 78 FN query err=00")


@pytest.mark.parametrize(
    "junk", [b"", b"\x02", b"\x02PIRI", b"hello world", b"\xff" * 100, STATUS_REQ[:-1], b"\x15\x15"]
)
def test_describe_never_raises(junk: bytes) -> None:
    text = p.describe(junk)
    assert text.startswith("undecodable: ")


def test_describe_never_raises_on_non_bytes() -> None:
    assert p.describe(None).startswith("undecodable: ")  # type: ignore[arg-type]  # a wrong type on purpose


@given(st.binary(max_size=40))
def test_describe_total(junk: bytes) -> None:
    assert isinstance(p.describe(junk), str)
