"""Model profiles: a catalogue record (:mod:`devices.models`) extended with emulator choices.

A profile adds to the model's identity what the emulator picks: the firmware it reports, its
ФН kind, time zone, and the *model-specific choices* the reference leaves open (domain-rules.md,
"record it per model").  Every choice is a field, so a spec like
``emulator:kf?rereg_requires_empty_queue=1`` flips it without code changes; a family's wire
front-end settings (``harness.families.Setting``, e.g. Pirit ``tax_mismatch_code``) live in
``extra`` and are checked against their allowed values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast

from devices.models import MODELS, Model
from harness.families import family
from harness.fiscal import FFD_CODES, FN_REGISTRATION_LIMIT, TaxSystem
from harness.versions import parse_version

__all__ = ["FN_KINDS", "PROFILES", "FnKind", "ModelProfile", "UnknownSetting", "fn_kind", "parse_version", "profile"]


@dataclass(frozen=True)
class FnKind:
    """A ФН model: nominal key life and registration limit (R2.4, R5.6)."""

    id: str
    title: str
    nominal_days: int
    max_registrations: int = FN_REGISTRATION_LIMIT

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


class UnknownSetting(ValueError):
    """A ``key=value`` whose key is neither a profile choice nor a front-end setting."""


@dataclass(frozen=True)
class ModelProfile(Model):
    """A catalogue record extended with what the emulator chooses for that model."""

    firmware: str = ""  # version string reported by the device ("" → the model's cloud firmware gate)
    firmware_id: int = 0  # Pirit 0x02/2 numeric firmware id
    fn_kind: str = "fn36"
    utc_offset_hours: int = 3  # device time zone (МСК)
    needs_start_of_work: bool = True  # Pirit 0x10 after every power-up; АТОЛ is ready at once
    # --- model-specific choices (domain-rules.md leaves them open; record per model) ---
    shift_limit_inclusive: bool = False  # True: exactly 24:00:00 already counts as expired (R3.6)
    ofd_block_allows_shift_close: bool = True  # R4.2 default: closing allowed under the 30-day block
    ofd_block_allows_shift_open: bool = False
    auto_open_shift: bool = False  # R3.8: a receipt on a closed shift opens one implicitly
    paper_check_before_commit: bool = True  # refuse a new document before the ФН when paper is out
    x_report_needs_open_shift: bool = True
    envd_rejected_from_2021: bool = True  # R1.4
    rereg_failure_opens_shift: bool = True  # deferred task failed at open: open on the old regime
    # wire front-end settings of the model's family (harness.families.Setting), by name
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.firmware:
            if self.rereg_min_firmware is None:
                raise ValueError(f"profile {self.id}: no firmware given and no firmware gate to start from")
            object.__setattr__(self, "firmware", self.rereg_min_firmware)

    @classmethod
    def of(cls, model: Model, **choices: Any) -> ModelProfile:
        """The profile of a catalogue model with these emulator choices."""
        identity: dict[str, Any] = {f.name: getattr(model, f.name) for f in dataclasses.fields(Model)}
        return cls(**identity, **choices)

    @property
    def model(self) -> Model:
        return self

    def setting(self, name: str) -> str:
        """A family front-end setting's value (``extra``, else the family's default)."""
        if name in self.extra:
            return self.extra[name]
        known = family(self.family).setting(name)
        if known is None:
            raise KeyError(f"{self.family} has no setting {name!r}")
        return known.default

    def with_overrides(self, overrides: dict[str, str]) -> ModelProfile:
        """Apply ``key=value`` overrides from a spec; unknown keys or bad values raise ValueError."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        extra = dict(self.extra)
        for key, raw in overrides.items():
            front_end = family(self.family).setting(key)
            if front_end is not None:
                extra[key] = front_end.check(raw.strip())
                continue
            if key not in fields or key in IDENTITY_FIELDS:
                raise UnknownSetting(f"unknown profile setting {key!r} for model {self.id}")
            current = getattr(self, key)
            changes[key] = _coerce(key, raw, current)
        if "fn_kind" in changes:
            fn_kind(str(changes["fn_kind"]))
        return dataclasses.replace(self, **cast(dict[str, Any], changes), extra=extra)

    def settings_help(self) -> dict[str, str]:
        """Every ``key=value`` this profile takes, with its current value."""
        names = {f.name: str(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in IDENTITY_FIELDS}
        names.update({s.name: self.setting(s.name) for s in family(self.family).settings})
        return names


# identity is the catalogue's: a spec cannot make a Касса Ф into another model
IDENTITY_FIELDS = frozenset(
    {
        "id",
        "family",
        "model_codes",
        "serial_prefixes",
        "serial_checked",
        "usb_ids",
        "in_default_set",
        "extra",
        "edition",
    }
)


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
    if key == "ffd" and raw not in FFD_CODES:
        raise ValueError(f"ffd takes one of {', '.join(FFD_CODES)}, not {raw!r}")
    return raw


PROFILES: dict[str, ModelProfile] = {
    p.id: p
    for p in (
        ModelProfile.of(MODELS["kf"], firmware_id=570),
        ModelProfile.of(MODELS["dkf"], firmware_id=570),
        ModelProfile.of(MODELS["start"], firmware_id=670),
        *(
            ModelProfile.of(
                MODELS[atol],
                firmware="3.0.8000",
                needs_start_of_work=False,
                auto_open_shift=True,  # ATOL FPrint: the first receipt opens the shift (§3.5.5)
            )
            for atol in ("atol", "atol55", "atol90")
        ),
    )
}


def profile(model: str) -> ModelProfile:
    key = model.strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown model {model!r} (known: {', '.join(PROFILES)})")
    return PROFILES[key]
