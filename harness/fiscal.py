"""The fiscal vocabulary shared by the device interface, drivers, emulator core, fisGo and the hub.

One place for the words of 54-ФЗ that several layers speak: tax systems (СНО) with their tag
1055/1062 bits, our names, Russian titles and the aliases people type; FFD versions and their
tag 1209 codes; the re-registration reason bits of tag 1205 (and 1101 on FFD 1.05); the date
ЕНВД ended.  Vendor vocabularies (Кабинет strings, АТОЛ tax bytes) stay with their vendor.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from datetime import date
from types import MappingProxyType

# ------------------------------------------------------------------------------------ tax systems


class TaxSystem(enum.IntFlag):
    """СНО bits shared by tags 1055/1062, Pirit 0x60 field 4 and fisGo config."""

    OSN = 1  # общая
    USN_INCOME = 2  # УСН доход
    USN_INCOME_EXPENSE = 4  # УСН доход − расход
    ENVD = 8  # ЕНВД (abolished 2021-01-01)
    ESN = 16  # ЕСХН
    PATENT = 32  # ПСН

    @classmethod
    def from_names(cls, names: Sequence[str] | str) -> TaxSystem:
        """Parse ``osn``, ``usn_income`` … (the hub/admin vocabulary); a str may be ``a+b``."""
        if isinstance(names, str):
            names = [n for n in names.replace(";", "+").replace(",", "+").split("+") if n.strip()]
        result = cls(0)
        for raw in names:
            key = raw.strip().lower()
            if key not in TAX_NAMES:
                raise ValueError(f"unknown tax system {raw!r} (known: {', '.join(TAX_NAMES)})")
            result |= TAX_NAMES[key]
        return result

    @property
    def names(self) -> list[str]:
        return [name for name, bit in TAX_NAMES.items() if bit in self and bit.value]

    @property
    def index(self) -> int:
        """Driver-level index 0..5 (Pirit 0x30 field 5) of a single-bit value."""
        if self.value == 0 or self.value & (self.value - 1):
            raise ValueError(f"{self!r} is not a single tax system")
        return self.value.bit_length() - 1

    @classmethod
    def from_index(cls, index: int) -> TaxSystem:
        if not 0 <= index <= 5:
            raise ValueError(f"tax system index {index} out of range 0..5")
        return cls(1 << index)

    @property
    def lowest(self) -> TaxSystem:
        """The first registered system: what a register uses when none is given (R1.3)."""
        if not self.value:
            raise ValueError("no tax system registered")
        return TaxSystem(self.value & -self.value)

    @property
    def title(self) -> str:
        return " + ".join(TAX_TITLES[bit] for bit in TaxSystem if bit in self and bit.value) or "—"


#: our names (the ``--kkt ...?tax=`` and hub/admin vocabulary) → bit
TAX_NAMES: Mapping[str, TaxSystem] = MappingProxyType(
    {
        "osn": TaxSystem.OSN,
        "usn_income": TaxSystem.USN_INCOME,
        "usn_income_expense": TaxSystem.USN_INCOME_EXPENSE,
        "envd": TaxSystem.ENVD,
        "esn": TaxSystem.ESN,
        "patent": TaxSystem.PATENT,
    }
)
#: bit → the Russian abbreviation on a receipt
TAX_TITLES: Mapping[TaxSystem, str] = MappingProxyType(
    {
        TaxSystem.OSN: "ОСН",
        TaxSystem.USN_INCOME: "УСН доход",
        TaxSystem.USN_INCOME_EXPENSE: "УСН доход−расход",
        TaxSystem.ENVD: "ЕНВД",
        TaxSystem.ESN: "ЕСХН",
        TaxSystem.PATENT: "ПСН",
    }
)
#: what people write in partner lists and reports, by our name
RUSSIAN_TAX_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "osn": ("осн", "общая"),
        "usn_income": ("усн доход", "усн доходы", "усн д"),
        "usn_income_expense": (
            "усн доход-расход",
            "усн доходы-расходы",
            "усн доход минус расход",
            "усн доходы минус расходы",
            "усн д-р",
        ),
        "envd": ("енвд",),
        "esn": ("есхн",),
        "patent": ("патент", "псн"),
    }
)

ENVD_ABOLISHED = date(2021, 1, 1)  # R1.4: no ЕНВД in a registration from this date
# R5.6: registrations a ФН allows (30 observed on ФН-1.1М); read from the register where it tells
# (АТОЛ A4h/32h), assumed where it does not (Pirit counts only the registrations done)
FN_REGISTRATION_LIMIT = 30


def registrations_left(left: int | None, done: int | None, limit: int | None) -> int | None:
    """Registrations still allowed: as the register tells (АТОЛ), else the ФН's ``limit`` (from
    the lab inventory) minus those done (Pirit); None when neither is known."""
    if left is not None:
        return int(left)
    if done is not None and limit is not None:
        return max(0, limit - int(done))
    return None


def alias_key(text: str) -> str:
    """Normalize a tax-system spelling for lookup: case, ё, dashes and spaces folded."""
    text = text.strip().lower().replace("ё", "е")
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub(r"\s+", " ", text)


# ------------------------------------------------------------------------------------ FFD

#: FFD version name → tag 1209 code (the same numbers on Pirit 0x78/14, 0x78/22 and АТОЛ E9h 1209)
FFD_CODES: Mapping[str, int] = MappingProxyType({"1.0": 1, "1.05": 2, "1.1": 3, "1.2": 4})
FFD_NAMES: Mapping[int, str] = MappingProxyType({code: name for name, code in FFD_CODES.items()})

# ------------------------------------------------------------------------------------ tag 1205 / 1101

REREG_REASON_TAX_SYSTEMS = 1 << 7  # tag 1205 bit 7: change of the СНО list (§4.1)
REREG_REASON_SETTINGS_105 = 4  # tag 1101 "change of ККТ settings" (FFD 1.05)
