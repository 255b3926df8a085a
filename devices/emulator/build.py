"""Build a complete emulated register from a model id and ``key=value`` settings.

Shared by ``kkt-hil emulate`` and the pytest plugin so that a spec like
``emulator:kf?firmware=2.25.0&defects=ignore_24h_rule&fn=fn15`` means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from harness.device import TaxSystem

from .clock import VirtualClock
from .control import ControlHandler
from .core import FiscalCore
from .defects import check_defects
from .profiles import ModelProfile, fn_kind, parse_version, profile

DEFAULT_START = datetime(2020, 12, 1, 9, 0, 0)

# settings that are not profile fields
EMULATOR_SETTINGS = {
    "firmware": "firmware version the device reports (x.y.z)",
    "defects": "comma-separated seeded defects",
    "fn": "ФН kind: fn15 or fn36",
    "serial": "factory number (10 digits)",
    "clock": "device local time at start, ISO (2020-12-31T23:50:00)",
    "tax": "registered tax systems, e.g. usn_income or osn+patent",
    "transport": "how the plugin reaches the emulator: pty (default) or tcp",
}


@dataclass
class Emulator:
    profile: ModelProfile
    core: FiscalCore
    control: ControlHandler


def build_emulator(model: str, settings: Mapping[str, str] | None = None, *, flowing_clock: bool = False) -> Emulator:
    """ValueError with a one-line message for any bad setting."""
    settings = dict(settings or {})
    base = profile(model)
    overrides = {k: v for k, v in settings.items() if k not in EMULATOR_SETTINGS}
    if "firmware" in settings:
        parse_version(settings["firmware"])
        overrides["firmware"] = settings["firmware"]
    if "fn" in settings:
        overrides["fn_kind"] = fn_kind(settings["fn"]).id
    try:
        prof = base.with_overrides(overrides)
    except ValueError as exc:
        known = ", ".join([*EMULATOR_SETTINGS, "or a profile field"])
        raise ValueError(f"{exc} (settings: {known})") from None
    start = DEFAULT_START
    if "clock" in settings:
        try:
            start = datetime.fromisoformat(settings["clock"])
        except ValueError:
            raise ValueError(f"clock takes ISO local time like 2020-12-31T23:50:00, not {settings['clock']!r}") from None
    elif flowing_clock:
        start = datetime.now().replace(microsecond=0)
    serial = settings.get("serial")
    if serial is not None and not (serial.isdigit() and len(serial) == 10):
        raise ValueError(f"serial must be 10 digits, not {serial!r}")
    tax = TaxSystem.from_names(settings["tax"]) if "tax" in settings else TaxSystem.USN_INCOME
    if not tax:
        raise ValueError("tax needs at least one tax system")
    defects = check_defects(settings.get("defects", "").split(","))
    if settings.get("transport", "pty") not in ("pty", "tcp"):
        raise ValueError(f"transport is pty or tcp, not {settings['transport']!r}")
    core = FiscalCore(
        prof,
        clock=VirtualClock(start, flowing=flowing_clock),
        serial=serial,
        defects=frozenset(defects),
        tax_systems=tax,
    )
    return Emulator(prof, core, ControlHandler(core))
