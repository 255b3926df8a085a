"""The refusal matrix: every way to send a destructive request × every safety condition that fails,
plus a control row where all four conditions hold and every path must get through.

A stand-in register (the harness reaches it only through its inventory entry, like hardware) is
tried through each path with exactly one of the conditions broken.  A request counts as having
reached the register when its frame is in the wire trace (scanned with the family's own guard
scanner), when the register's journal (read through the stand-in's diagnostics, never by the
harness) shows a destructive event, or when a Кабинет task for it appeared on its hub.  Used by
``tests/test_lab_safety.py`` and ``benchmarks/lab_standin.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from devices.atol import protocol as ap
from devices.pirit import protocol as pp
from harness import families, open_kkt
from harness.connect import DeviceHandle
from harness.device import TaxSystem
from harness.errors import KktError
from harness.inventory import LabDevice, entry_toml, write_inventory
from harness.standin import StandIn, start_standin

DESTRUCTIVE_EVENTS = ("re-registered", "clock set", "technological reset", "ФН closed")
Attempt = Callable[[DeviceHandle], object]


def _raw(handle: DeviceHandle) -> Any:
    lensed: Any = handle.kkt
    return lensed._target  # the driver under the scenario-time lens, with its vendor methods


def _forward(handle: DeviceHandle) -> Any:
    return _raw(handle).clock() + timedelta(days=3)


def _hub_task(handle: DeviceHandle) -> object:
    if handle.bench is None or handle.bench.hub is None:
        raise AssertionError("the stand-in's entry names no hub")
    return handle.bench.hub.schedule(TaxSystem.OSN | TaxSystem.PATENT, date.today())


def _atol_frame(code: int, params: bytes) -> bytes:
    return ap.encode_frame(0x30, ap.encode_add(0x30, ap.encode_command(code, params)))


# In each table the ФН close comes last: in the control row it really happens.
PIRIT_PATHS: dict[str, Attempt] = {
    "typed reregister": lambda h: h.kkt.reregister(TaxSystem.OSN | TaxSystem.PATENT),
    "Кабинет task": _hub_task,
    "typed set_clock": lambda h: h.kkt.set_clock(h.kkt.clock() + timedelta(days=3)),
    "raw call 0x60": lambda h: _raw(h).call(0x60, [0, "", "", 33, 0, "x", "010121", "100000"]),
    "raw call 0x14": lambda h: _raw(h).call(
        0x14, [pp.format_date(_forward(h).date()), pp.format_time(_forward(h).time())]
    ),
    "raw call 0x63": lambda h: _raw(h).call(0x63, ["010121", "100000"]),
    "driver internals": lambda h: _raw(h)._exchange(0x60, [0, "", "", 33, 0, "x", "010121", "100000"], None),
    "transport write": lambda h: h.link.transport.write(pp.encode_request(0x60, [0], packet_id=0x31)),
    "link write": lambda h: h.link.write(pp.encode_request(0x71, ["x"], packet_id=0x30)),
}
ATOL_PATHS: dict[str, Attempt] = {
    "typed reregister": lambda h: h.kkt.reregister(TaxSystem.OSN | TaxSystem.PATENT),
    "typed set_clock": lambda h: h.kkt.set_clock(h.kkt.clock() + timedelta(days=3)),
    "raw call A6h": lambda h: _raw(h).call(ap.Cmd.REGISTRATION, b"\x02\x01"),
    "raw call EDh": lambda h: _raw(h).call(ap.Cmd.SET_DATETIME, ap.encode_datetime_params(_forward(h))),
    "raw call 6Bh": lambda h: _raw(h).call(ap.Cmd.TECH_RESET),
    "link write": lambda h: h.link.write(_atol_frame(ap.Cmd.REGISTRATION, b"\x02\x01")),
    "v2 frame": lambda h: h.link.transport.write(ap.encode_v2_frame(ap.encode_command(ap.Cmd.TECH_RESET))),
    "transport write": lambda h: h.link.transport.write(_atol_frame(ap.Cmd.CLOSE_ARCHIVE, b"")),
}
PATHS = {"pirit": PIRIT_PATHS, "atol": ATOL_PATHS}
REGISTRATION_PATHS = {
    "pirit": {"typed reregister", "Кабинет task", "raw call 0x60", "driver internals", "transport write"},
    "atol": {"typed reregister", "raw call A6h", "link write"},
}


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
    Condition("serial does not match", lambda e: dataclasses.replace(e, serial=e.serial[:-1] + "9")),
    Condition("at the registrations floor", lambda e: dataclasses.replace(e, rereg_floor=40), registration_only=True),
]
CONTROL = Condition("all four hold (control)", lambda e: e)


@dataclass
class Matrix:
    family: str
    cells: dict[tuple[str, str], str]  # (condition, path) → "refused" | "REACHED" | "n/a"

    def tried(self) -> list[str]:
        return [v for (c, _), v in self.cells.items() if c != CONTROL.name and v != "n/a"]

    def reached(self) -> dict[tuple[str, str], str]:
        """Cells of a failing condition where the request got through: must be empty."""
        return {k: v for k, v in self.cells.items() if k[0] != CONTROL.name and v == "REACHED"}

    def control(self) -> dict[str, str]:
        return {p: v for (c, p), v in self.cells.items() if c == CONTROL.name}


def _events(standin: StandIn) -> int:
    assert standin.emulated is not None
    journal = standin.emulated.control({"op": "journal"})["journal"]
    return sum(1 for e in journal if e["event"].startswith(DESTRUCTIVE_EVENTS))


def _tasks(standin: StandIn) -> int:
    if not standin.entry.hub:
        return 0
    cloud = families.cloud_of(standin.entry.model)
    assert cloud is not None
    return len(cloud.admin(standin.entry.hub).tasks(standin.entry.serial))


def _on_the_wire(handle: DeviceHandle, family: families.Family) -> bool:
    """Did a destructive request leave the harness?  The wire trace, scanned as the guard does."""
    sent = b"".join(record.raw for record in handle.trace.records if record.direction == "TX")
    return bool(family.scan(sent)[0])


def run_matrix_on_own_standin(model: str, folder: Path) -> Matrix:
    """The matrix on a stand-in of its own (the control row burns its registrations), closed after."""
    standin = start_standin(model, device_id="matrix", sacrificial=True)
    try:
        return run_matrix(standin, folder)
    finally:
        standin.close()


def run_matrix(standin: StandIn, folder: Path) -> Matrix:
    """Every (condition, path) cell on ``standin``, the control row last."""
    family = families.family(families.model(standin.entry.model).family)
    paths = PATHS[family.name]
    registration = REGISTRATION_PATHS[family.name]
    cells: dict[tuple[str, str], str] = {}
    for condition in [*CONDITIONS, CONTROL]:
        inventory = folder / f"{family.name}-{condition.name.replace(' ', '-')}.toml"
        write_inventory(inventory, [entry_toml(condition.entry(standin.entry))])
        for path, attempt in paths.items():
            if (condition.registration_only and path not in registration) or (
                path == "Кабинет task" and not standin.entry.hub
            ):
                cells[(condition.name, path)] = "n/a"
                continue
            events, tasks, sent = _events(standin), _tasks(standin), False
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
                        sent = _on_the_wire(handle, family)
                        if handle.bench is not None and handle.bench.hub is not None:
                            reached_hub = _tasks(standin) > tasks
                            handle.bench.hub.settle()  # a control-row task must not re-register later
                            sent = sent or reached_hub
            except KktError:
                pass  # refused by the guard, the register's own refusal, or identification failed first
            reached = sent or _events(standin) > events
            cells[(condition.name, path)] = "REACHED" if reached else "refused"
    return Matrix(family.name, cells)
