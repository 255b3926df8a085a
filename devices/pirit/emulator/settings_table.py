"""The Pirit settings table (0x11 read, 0x12 write): every element of the manual's "Настройки ККТ"
section, with its number, indexes, type, limits and editions; pure data and checks.

An element is addressed by (number, index); a scalar takes index 0 (or an empty field).  Types:
``mask`` (a bit mask 0..255), ``int`` (a range), ``str`` (a length range; ``ip`` is four dotted
octets), ``dec`` (a fixed-point number).  The manual gives no defaults: the values below are the
emulator's [inferred], chosen to look like a registered, working register.

Editions (:mod:`devices.pirit.catalogue`): 12 (printer corrections) is not in the FM16 manual; 88
and 90 are in FM16 and punix, 87 only in Пирит 2Ф; 91..94 and 201..204 only in the FFD 1.2
editions.  An element the edition lacks is unknown (0x03), as is a number or an index outside the
table.

Writes the manual forbids: the elements marked "(только чтение)" (32/0, 32/1, 32/13..15, 40, 41,
70, 71, 72, 93) and 88 (a query of activated options) answer 0x03 [inferred: the manual names no
code]; bit 5 of element 1 (QR code) is "неотключаемая, всегда 1" and stays set whatever is
written.  The registration data 30/0..3 (user name, address lines) answer success and do not
change ("ошибки не будет, однако данные не изменятся").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from harness.device import ReceiptKind

from ..catalogue import FM16, PIRIT2F, PUNIX
from ..protocol import Field, Request
from .fields import Fields, ParamError, handles, money

ALL = frozenset({PIRIT2F, FM16, PUNIX})
QR_BIT = 1 << 5  # element 1 bit 5: print the QR code, always 1
# the QR code's n= (tag 1054, operation type) of each receipt kind
QR_OPERATION = {
    ReceiptKind.SALE: 1,
    ReceiptKind.SALE_RETURN: 2,
    ReceiptKind.PURCHASE: 3,
    ReceiptKind.PURCHASE_RETURN: 4,
}


@dataclass(frozen=True)
class Element:
    number: int
    kind: str  # "mask" | "int" | "str" | "ip" | "dec"
    indexes: range = range(1)  # a scalar: index 0
    low: int = 0  # int: value range; str: length range
    high: int = 255
    default: Field | tuple[Field, ...] = 0  # one value, or a tuple by index (from indexes.start)
    read_only: frozenset[int] = frozenset()  # indexes the host cannot write
    editions: frozenset[str] = ALL
    ffd12: bool = False
    ignored: frozenset[int] = frozenset()  # registration data: written "successfully", unchanged

    def default_at(self, index: int) -> Field:
        if isinstance(self.default, tuple):
            return self.default[index - self.indexes.start]
        return self.default


def _ro(*indexes: int) -> frozenset[int]:
    return frozenset(indexes)


_PAYMENTS = (
    "НАЛИЧНЫМИ",
    "ЭЛЕКТРОННЫМИ",
    *([""] * 11),
    "ПРЕДВАРИТЕЛЬНАЯ ОПЛАТА (АВАНС)",
    "ПОСЛЕДУЮЩАЯ ОПЛАТА (КРЕДИТ)",
    "ИНАЯ ФОРМА ОПЛАТЫ",
)
_TAX_NAMES = ("НДС 20%", "НДС 10%", "НДС 0%", "", "НДС 20/120", "НДС 10/110")
_TAX_RATES = tuple(Decimal(v) for v in ("20.00", "10.00", "0.00", "0.00", "20.00", "10.00"))
_NOT_FM16 = frozenset({PIRIT2F, PUNIX})
_NOT_PIRIT2F = frozenset({FM16, PUNIX})

ELEMENTS: dict[int, Element] = {
    e.number: e
    for e in (
        Element(1, "mask", default=QR_BIT),
        Element(2, "mask"),
        Element(3, "mask"),
        Element(4, "mask"),
        Element(5, "mask"),
        Element(6, "mask"),
        Element(10, "int", low=1, high=9999, default=1),
        Element(11, "int", low=1, high=65535, default=1),
        Element(12, "int", range(1, 4), 0, 100, (100, 50, 50), editions=_NOT_FM16),
        Element(20, "str", low=4, high=4, default="PIRI"),
        Element(
            30,
            "str",
            range(14),
            0,
            57,
            ('ООО "ЭМУЛЯТОР"', "", "г. Москва, ул. Тестовая, д. 1", "", *([""] * 10)),
            ignored=_ro(0, 1, 2, 3),
        ),
        Element(31, "str", range(10), 0, 44, ""),
        Element(32, "str", range(16), 0, 18, _PAYMENTS, read_only=_ro(0, 1, 13, 14, 15)),
        Element(40, "str", range(6), 0, 18, _TAX_NAMES, read_only=_ro(*range(6))),
        Element(41, "dec", range(6), default=_TAX_RATES, read_only=_ro(*range(6))),
        Element(42, "str", low=0, high=44, default=""),
        Element(50, "str", range(1, 17), 0, 44, tuple(f"ОТДЕЛ {n}" for n in range(1, 17))),
        Element(51, "str", low=0, high=44, default=""),
        Element(52, "str", range(1, 6), 0, 30, ""),
        Element(54, "str", range(2), 0, 44, ""),
        Element(70, "str", low=0, high=12, default="", read_only=_ro(0)),
        Element(71, "str", low=10, high=12, default="7700000000", read_only=_ro(0)),
        Element(72, "str", low=20, high=160, default="", read_only=_ro(0)),  # computed: the last receipt
        Element(73, "ip", low=7, high=15, default="192.168.1.100"),
        Element(74, "ip", low=7, high=15, default="255.255.255.0"),
        Element(75, "ip", low=7, high=15, default="192.168.1.1"),
        Element(76, "ip", low=7, high=15, default="192.168.1.1"),
        Element(77, "str", low=0, high=64, default="ofd.emulator.test"),
        Element(78, "int", low=1, high=65534, default=7777),
        Element(79, "int", low=0, high=60, default=60),
        Element(80, "int", low=0, high=3600, default=60),
        Element(81, "str", low=0, high=64, default='ООО "ТЕСТОВЫЙ ОФД"'),
        Element(82, "str", low=0, high=64, default=""),
        Element(83, "str", low=0, high=64, default="www.nalog.gov.ru"),
        Element(85, "str", low=0, high=112, default="Торговый зал"),
        Element(87, "mask", editions=frozenset({PIRIT2F})),
        Element(88, "mask", read_only=_ro(0), editions=_NOT_PIRIT2F),
        Element(90, "mask", editions=_NOT_PIRIT2F),
        Element(91, "ip", low=7, high=15, default="", ffd12=True),
        Element(92, "int", low=1, high=65534, default=26101, ffd12=True),
        Element(93, "str", low=0, high=64, default="prod01.okp-fn.ru", read_only=_ro(0), ffd12=True),
        Element(94, "int", low=0, high=65535, default=60, ffd12=True),
        Element(201, "ip", low=0, high=15, default="", ffd12=True),  # empty: the OFD server's address
        Element(202, "int", low=0, high=65534, default=0, ffd12=True),  # 0: the OFD server's port
        Element(203, "str", low=0, high=64, default="", ffd12=True),
        Element(204, "int", low=0, high=65535, default=3, ffd12=True),
    )
}


class SettingError(ValueError):
    """A (number, index) the table lacks, a value of the wrong type or range, a read-only element."""


def element(number: int, index: int, edition: str, ffd: str) -> Element:
    found = ELEMENTS.get(number)
    if found is None or edition not in found.editions or (found.ffd12 and ffd != "1.2"):
        raise SettingError(f"no settings element {number} in the {edition} manual")
    if index not in found.indexes:
        raise SettingError(f"settings element {number} has no index {index}")
    return found


def parse_value(found: Element, index: int, raw: str) -> Field:
    """The stored form of a written value; raises :class:`SettingError`."""
    if index in found.read_only:
        raise SettingError(f"settings element {found.number}/{index} is read-only")
    if found.kind in ("mask", "int"):
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingError(f"settings element {found.number}: not an integer: {raw!r}") from None
        if not found.low <= value <= found.high:
            raise SettingError(f"settings element {found.number}: {value} outside {found.low}..{found.high}")
        return value | QR_BIT if found.number == 1 else value
    if found.kind == "dec":
        try:
            return Decimal(raw.strip())
        except ArithmeticError:
            raise SettingError(f"settings element {found.number}: not a number: {raw!r}") from None
    if not found.low <= len(raw) <= found.high:
        raise SettingError(f"settings element {found.number}: length {len(raw)} outside {found.low}..{found.high}")
    if found.kind == "ip" and raw and not _is_ip(raw):
        raise SettingError(f"settings element {found.number}: not a dotted IPv4 address: {raw!r}")
    return raw


def _is_ip(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts)


# ------------------------------------------------------------------ the front-end mixin


class SettingsCommands(Fields):
    """0x11/0x12 over ``core.wire_memory["pirit_settings"]`` ((number, index) → value; a missing
    key reads its default).  Like all ``wire_memory`` it is not in ``--state`` snapshots: a
    restarted emulator is back at the defaults [decided].  Writing element 20 (the link password)
    is recorded but does not change the password the link checks [decided: the front-end is
    built with its password]."""

    edition: str  # the manual edition (set by the front-end)

    @property
    def _table_store(self) -> dict[tuple[int, int], Field]:
        return self.core.wire_memory.setdefault("pirit_settings", {})  # type: ignore[no-any-return]

    def table_value(self, number: int, index: int = 0) -> Field:
        """The current value of a table element (for the other commands: OFD address, names …)."""
        found = ELEMENTS[number]
        if number == 72:
            return self._table_qr()
        return self._table_store.get((number, index), found.default_at(index))

    def _table_address(self, request: Request) -> tuple[Element, int]:
        number = self._int(request, 0, -1)
        index = self._int(request, 1, 0)
        try:
            return element(number, index, self.edition, self.core.profile.ffd), index
        except SettingError as exc:
            raise ParamError(str(exc)) from None

    @handles(0x11)
    def _read_setting(self, request: Request) -> list[Field]:
        found, index = self._table_address(request)
        value = self.table_value(found.number, index)
        if isinstance(value, Decimal):
            return [money(value)]
        return [value]

    @handles(0x12)
    def _write_setting(self, request: Request) -> list[Field]:
        found, index = self._table_address(request)
        if len(request.fields) < 3:
            raise ParamError(f"0x12: no value for element {found.number}/{index}")
        try:
            value = parse_value(found, index, request.fields[2])
        except SettingError as exc:
            raise ParamError(str(exc)) from None
        if index in found.ignored:
            self.core.log("setting unchanged", f"{found.number}/{index}: registration data")
            return []
        self._table_store[(found.number, index)] = value
        return []

    def _table_qr(self) -> str:
        """Element 72: the QR code of the last receipt (t, s, fn, i, fp, n as FFD prints them)."""
        receipts = [d for d in self.core.fn.archive if d.receipt_kind is not None]
        if not receipts:
            return ""
        d = receipts[-1]
        total = money(d.total or Decimal(0))
        kind = QR_OPERATION.get(d.receipt_kind or ReceiptKind.SALE, 1)
        return f"t={d.at:%Y%m%dT%H%M}&s={total}&fn={self.core.fn.serial}&i={d.number}&fp={d.fiscal_sign}&n={kind}"
