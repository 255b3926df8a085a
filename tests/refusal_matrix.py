"""The refusal matrix: every way to send a destructive request × every safety condition that fails.

A stand-in register (the harness reaches it only through its inventory entry, like hardware) is
tried through each path with exactly one of the conditions broken; the register's own journal
(read through the stand-in's diagnostics, never by the harness) says whether anything destructive
arrived.  Used by ``tests/test_lab_safety.py`` and ``benchmarks/lab_standin.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from devices.pirit import protocol as pp
from devices.pirit import safety
from harness import open_kkt
from harness.connect import DeviceHandle
from harness.device import TaxSystem
from harness.errors import KktError
from harness.inventory import LabDevice, entry_toml, write_inventory
from harness.standin import StandIn

DESTRUCTIVE_EVENTS = ("re-registered", "clock set", "technological reset", "ФН closed")


def _raw(handle: DeviceHandle) -> Any:
    lensed: Any = handle.kkt
    return lensed._target  # the driver under the scenario-time lens, with its vendor methods


def _forward(handle: DeviceHandle) -> Any:
    return _raw(handle).clock() + timedelta(days=3)


PATHS: dict[str, Callable[[DeviceHandle], object]] = {
    "typed reregister": lambda h: h.kkt.reregister(TaxSystem.OSN | TaxSystem.PATENT),
    "typed set_clock": lambda h: h.kkt.set_clock(h.kkt.clock() + timedelta(days=3)),
    "raw call 0x60": lambda h: _raw(h).call(0x60, [0, "", "", 33, 0, "x", "010121", "100000"]),
    "raw call 0x14": lambda h: _raw(h).call(
        0x14, [pp.format_date(_forward(h).date()), pp.format_time(_forward(h).time())]
    ),
    "raw call 0x63": lambda h: _raw(h).call(0x63, ["010121", "100000"]),
    "driver internals": lambda h: _raw(h)._exchange(0x60, [0, "", "", 33, 0, "x", "010121", "100000"], None),
    "link write": lambda h: h.link.write(pp.encode_request(0x71, ["x"], packet_id=0x30)),
    "transport write": lambda h: h.link.transport.write(pp.encode_request(0x60, [0], packet_id=0x31)),
}
REGISTRATION_PATHS = {"typed reregister", "raw call 0x60", "driver internals", "transport write"}


@dataclass(frozen=True)
class Condition:
    name: str
    entry: Callable[[LabDevice], LabDevice]  # the inventory entry with this condition broken
    allow_destructive: bool = True
    destructive: bool = True
    registration_only: bool = False  # the condition guards registrations only (the floor)


CONDITIONS = [
    Condition("scenario not marked destructive", lambda e: e, destructive=False),
    Condition("no --allow-destructive", lambda e: e, allow_destructive=False),
    Condition("entry not sacrificial", lambda e: dataclasses.replace(e, sacrificial=False)),
    Condition("serial does not match", lambda e: dataclasses.replace(e, serial="0497000000")),
    Condition("at the registrations floor", lambda e: dataclasses.replace(e, rereg_floor=40), registration_only=True),
]


def _events(standin: StandIn) -> int:
    assert standin.emulated is not None
    journal = standin.emulated.control({"op": "journal"})["journal"]
    return sum(1 for e in journal if e["event"].startswith(DESTRUCTIVE_EVENTS))


def _destructive_on_the_wire(handle: DeviceHandle) -> bool:
    """Did a destructive request leave the harness?  The wire trace, scanned like the guard does."""
    sent = b"".join(record.raw for record in handle.trace.records if record.direction == "TX")
    return bool(safety.scan(sent)[0])


def run_matrix(standin: StandIn, folder: Path) -> dict[tuple[str, str], str]:
    """(condition, path) → "refused" | "REACHED" (a destructive request arrived) | "n/a"."""
    results: dict[tuple[str, str], str] = {}
    for condition in CONDITIONS:
        inventory = folder / f"{condition.name.replace(' ', '-')}.toml"
        write_inventory(inventory, [entry_toml(condition.entry(standin.entry))])
        for path, attempt in PATHS.items():
            if condition.registration_only and path not in REGISTRATION_PATHS:
                results[(condition.name, path)] = "n/a"
                continue
            before = _events(standin)
            sent = False
            try:
                with open_kkt(
                    f"lab:{standin.entry.id}",
                    inventory=inventory,
                    allow_destructive=condition.allow_destructive,
                    destructive=condition.destructive,
                    timeout_scale=0.5,
                ) as handle:
                    try:
                        attempt(handle)
                    finally:
                        sent = _destructive_on_the_wire(handle)
            except KktError:
                pass  # refused by the guard, or the identity check failed before anything was sent
            results[(condition.name, path)] = "REACHED" if sent or _events(standin) > before else "refused"
    return results
