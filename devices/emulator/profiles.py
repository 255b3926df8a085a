"""Model profiles: what differs between the emulated registers.

A profile holds identity (serial prefix, model code, firmware), defaults (ФН kind, FFD, time
zone) and the *model-specific choices* the reference leaves open (domain-rules.md, "record it
per model").  Every choice is a field, so a spec like ``emulator:kf?rereg_requires_empty_queue=1``
can flip it without code changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta

from harness.device import TaxSystem


@dataclass(frozen=True)
class FnKind:
    """A ФН model: nominal key life and registration limit (R2.4, R5.6)."""

    id: str
    title: str
    nominal_days: int
    max_registrations: int = 30

    def term_days(self, tax_systems: TaxSystem, *, autonomous: bool = False, excise: bool = False) -> int:
        """Effective key life for a registration (R2.4); the ФН recomputes it on every registration."""
        if autonomous:
            return 395 if self.nominal_days < 1000 else 560  # 13 months / 560 days
        if excise:
            return 410
        if TaxSystem.OSN in tax_systems:
            # ОСН alone or combined with a special regime: the short term (R2.4; ОСН-only on a
            # 36-month ФН is not stated in the sources — the short term is the documented guess).
            return 410 if (tax_systems != TaxSystem.OSN or self.nominal_days > 1000) else self.nominal_days
        return self.nominal_days

    def valid_until(self, activated: date, tax_systems: TaxSystem, **flags: bool) -> date:
        return activated + timedelta(days=self.term_days(tax_systems, **flags))


FN_KINDS: dict[str, FnKind] = {
    "fn15": FnKind("fn15", "ФН-1.1М 15 мес.", 470),
    "fn36": FnKind("fn36", "ФН-1.1М 36 мес.", 1100),
}
FN_ALIASES = {"15": "fn15", "36": "fn36", "fn-15": "fn15", "fn-36": "fn36"}


def fn_kind(name: str) -> FnKind:
    key = FN_ALIASES.get(name.lower(), name.lower())
    if key not in FN_KINDS:
        raise ValueError(f"unknown ФН kind {name!r} (known: {', '.join(FN_KINDS)})")
    return FN_KINDS[key]


@dataclass(frozen=True)
class ModelProfile:
    id: str
    title: str  # Russian name a QA engineer knows
    protocol: str  # protocol family: "pirit" | "atol"
    model_code: int  # Pirit 0x02/21, ATOL model byte
    model_name: str
    serial_prefix: str
    firmware: str  # version string reported by the device
    firmware_id: int  # Pirit 0x02/2 numeric firmware id
    rereg_min_firmware: str | None  # deferred re-registration needs at least this (None: no cloud task)
    fn_kind: str = "fn36"
    ffd: str = "1.2"
    utc_offset_hours: int = 3  # device time zone (МСК)
    baudrate: int = 57600
    tcp_port: int = 50003
    needs_start_of_work: bool = True  # Pirit 0x10 after every power-up; АТОЛ is ready at once
    # --- model-specific choices (domain-rules.md leaves them open; record per model) ---
    shift_limit_inclusive: bool = False  # True: exactly 24:00:00 already counts as expired (R3.6)
    rereg_requires_empty_queue: bool = False  # R4.6 for a pure СНО change
    ofd_block_allows_shift_close: bool = True  # R4.2 default: closing allowed under the 30-day block
    ofd_block_allows_shift_open: bool = False
    auto_open_shift: bool = False  # R3.8: a receipt on a closed shift opens one implicitly
    paper_check_before_commit: bool = True  # refuse a new document before the ФН when paper is out
    x_report_needs_open_shift: bool = True
    envd_rejected_from_2021: bool = True  # R1.4
    rereg_failure_opens_shift: bool = True  # deferred task failed at open: open on the old regime
    tax_mismatch_code: str = "fn"  # Pirit: "fn" → 0x59, "param" → 0x03 + extended 43 (R1.3)
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def with_overrides(self, overrides: dict[str, str]) -> ModelProfile:
        """Apply ``key=value`` overrides from a spec; unknown keys or bad values raise ValueError."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        for key, raw in overrides.items():
            if key not in fields or key in ("id", "protocol", "extra"):
                raise ValueError(f"unknown profile setting {key!r} for model {self.id}")
            current = getattr(self, key)
            changes[key] = _coerce(key, raw, current)
        if "fn_kind" in changes:
            fn_kind(str(changes["fn_kind"]))
        return dataclasses.replace(self, **changes)


def _coerce(key: str, raw: str, current: object) -> object:
    if isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key} takes a boolean (1/0, true/false), not {raw!r}")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{key} takes an integer, not {raw!r}") from None
    if key in ("firmware", "rereg_min_firmware"):
        parse_version(raw)
    return raw


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.26.0"`` → ``(2, 26, 0)``; compares chronologically, never as text."""
    parts = text.strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad firmware version {text!r} (expected digits like 2.26.0)")
    return tuple(int(p) for p in parts)


PROFILES: dict[str, ModelProfile] = {
    p.id: p
    for p in (
        ModelProfile(
            id="kf",
            title="Касса Ф",
            protocol="pirit",
            model_code=9,  # punix answers 0x02/21 with 9 "Пирит 2СФ"
            model_name="Пирит 2СФ (Касса Ф)",
            serial_prefix="0497",
            firmware="2.26.0",
            firmware_id=570,
            rereg_min_firmware="2.26.0",
        ),
        ModelProfile(
            id="dkf",
            title="Дримкас-Ф",
            protocol="pirit",
            model_code=9,
            model_name="Пирит 2СФ (Дримкас-Ф)",
            serial_prefix="0496",
            firmware="1.12.0",
            firmware_id=570,
            rereg_min_firmware="1.12.0",
        ),
        ModelProfile(
            id="start",
            title="Дримкас Старт",
            protocol="pirit",
            model_code=3,  # built-in Вики Принт 57-class FR (FM16)
            model_name="Вики Принт 57Ф (Старт)",
            serial_prefix="0493",
            firmware="10.50.1",  # the Старт application version, as the hub sees it
            firmware_id=670,
            rereg_min_firmware="10.50.1",
            rereg_requires_empty_queue=True,
        ),
        # АТОЛ platform 2.5, "Протокол ККТ 3.x" over the v3 transport (reference §3).  Model bytes
        # are libfptr's LIBFPTR_MODEL_* (believed equal to the A5h/3Fh model byte, §3.1).  Real
        # serials have 14 digits; the core keeps 10 (3Fh carries only 8 BCD digits anyway).
        ModelProfile(
            id="atol",
            title="АТОЛ 30Ф",
            protocol="atol",
            model_code=61,
            model_name="АТОЛ 30Ф",
            serial_prefix="0010",
            firmware="3.0.8000",
            firmware_id=0,
            rereg_min_firmware=None,  # no Dreamkas cloud: re-registration only over the wire
            baudrate=115200,
            tcp_port=5555,
            needs_start_of_work=False,
            rereg_requires_empty_queue=True,  # ATOL 237 / libfptr 139 "unsent FDs in the FN"
            auto_open_shift=True,  # ATOL FPrint: the first receipt opens the shift (§3.5.5)
        ),
    )
}


def _atol_variant(model_id: str, name: str, model_code: int) -> ModelProfile:
    """Other АТОЛ platform-2.5 models: same protocol and choices as the 30Ф, own model byte."""
    return dataclasses.replace(PROFILES["atol"], id=model_id, title=name, model_code=model_code, model_name=name)


for _variant in (_atol_variant("atol55", "АТОЛ 55Ф", 62), _atol_variant("atol90", "АТОЛ 90Ф", 72)):
    PROFILES[_variant.id] = _variant


def profile(model: str) -> ModelProfile:
    key = model.strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown model {model!r} (known: {', '.join(sorted(PROFILES))})")
    return PROFILES[key]


def register_profile(p: ModelProfile) -> None:
    """Protocol families add their profiles (e.g. АТОЛ) at import time."""
    PROFILES[p.id] = p
