"""Inventory entries on a labgrid place (``labgrid = "PLACE"``), and the lab of a place: its power
resource through ``labgrid-client power`` (see harness.labgrid)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..bench import wait_for_power_up
from ..errors import HarnessError, UsageError
from ..lab import UnavailableLab
from ..spec import DeviceSpec
from .client import Client, Place
from .places import Acquisition, entry_spec, entry_specs, held

if TYPE_CHECKING:
    from ..inventory import Inventory, LabDevice

# ------------------------------------------------------------------------------ inventory entries


def hold_entries(spec: DeviceSpec, inventory: Inventory) -> Callable[[], None]:
    """For a script's ``open_kkt("lab:ID")``: the places of the entries the spec names that this
    process does not hold yet, acquired now; the callable releases them."""
    releases = []
    try:
        for one in entry_specs(spec, inventory):
            if held(one) is None:
                releases.append(Acquisition(one, (one.model,)).release)
    except BaseException:
        _release_all(releases)
        raise
    return lambda: _release_all(releases)


def _release_all(releases: list[Callable[[], None]]) -> None:
    for release in reversed(releases):
        with contextlib.suppress(Exception):
            release()


def entry_url(entry: LabDevice) -> str:
    """The URL of the serial port of ``entry``'s place, which this process (or its controller) holds."""
    place = held(entry_spec(entry))
    if place is None:
        raise UsageError(
            f"{entry.source}: {entry.id} is on labgrid place {entry.labgrid}, which this process does not hold "
            "(open it with open_kkt or a kkt-hil run / pytest --kkt lab:ID, which acquire it)"
        )
    return place.url


class PlaceSupply:
    """A place's power resource as a lab register's bench supply (harness.bench.Supply)."""

    def __init__(self, place: Place) -> None:
        self.place = place

    def output(self, on: bool) -> None:
        Client(self.place.name, self.place.coordinator).call("power", "on" if on else "off")

    def output_state(self) -> bool:
        said = Client(self.place.name, self.place.coordinator).call("power", "get")
        if not said.strip().endswith((" on", " off")):
            raise HarnessError(f"{self.place.where}: unexpected `labgrid-client power get` output: {said.strip()!r}")
        return said.strip().endswith(" on")


def entry_supply(entry: LabDevice) -> PlaceSupply | None:
    """The power resource of ``entry``'s place (held by this run), if the place has one."""
    place = held(entry_spec(entry))
    return PlaceSupply(place) if place is not None and place.power is not None else None


# ------------------------------------------------------------------------------ the lab of a place


class PlaceLab(UnavailableLab):
    """A labgrid place's lab: its power resource through ``labgrid-client power`` if it has one;
    paper, cover, OFD and time are not a place's to control (skipped with the reason)."""

    def __init__(self, place: Place, kkt: Any) -> None:
        if place.power is None:
            reason = f"у места labgrid {place.name} нет ресурса питания и нет управления бумагой, ОФД и часами"
        else:
            reason = f"место labgrid {place.name} управляет только питанием ({place.power})"
        super().__init__(reason, description=f"labgrid place {place.name} ({place.coordinator})")
        self.place = place
        self._kkt = kkt

    def power(self, action: str) -> None:
        if self.place.power is None:
            super().power(action)
        if action not in ("off", "on", "cycle"):
            raise HarnessError(f"power takes off, on or cycle, not {action!r}")
        Client(self.place.name, self.place.coordinator).call("power", action)
        if action in ("on", "cycle"):
            wait_for_power_up(self._kkt)
