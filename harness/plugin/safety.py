"""The scenario-level safety rules: destructive scenarios on real registers, and markers.

DESIGN.md "Safety": a destructive operation reaches a real register only with the
``destructive`` marker, ``--allow-destructive``, an inventory entry marked sacrificial and a
matching serial.  ``url:`` specs cannot prove the last two, so marked scenarios are skipped (or
broken) before connecting.  The operations themselves are refused lower down, on the wire, by
the transport's guard (:mod:`harness.safety`), whichever path sends them.
"""

from __future__ import annotations

import pytest

from harness.device import Capability
from harness.errors import HarnessError
from harness.inventory import Inventory
from harness.lab_open import LAB_KINDS, LabOptions, lab_entries
from harness.spec import DeviceSpec
from harness.versions import parse_version

from ..connect import DeviceHandle
from ..report.categories import SKIP_CAPABILITY, SKIP_SAFETY

INVENTORY_KEY = pytest.StashKey[Inventory]()


def lab_options(request: pytest.FixtureRequest) -> LabOptions:
    config = request.config
    return LabOptions(
        config.stash.get(INVENTORY_KEY, None),
        allow_destructive=config.getoption("--allow-destructive"),
        destructive=request.node.get_closest_marker("destructive") is not None,
        operator=config.getoption("--operator"),
        real_time_budget=config.getoption("--real-time-budget"),
    )


def check_markers_before_connect(request: pytest.FixtureRequest, spec: DeviceSpec) -> None:
    node = request.node
    models = node.get_closest_marker("models")
    if models and spec.model not in models.args:
        pytest.skip(f"{SKIP_CAPABILITY}: сценарий для моделей {', '.join(models.args)}; устройство — {spec.model}")
    if node.get_closest_marker("destructive") and spec.kind in LAB_KINDS:
        if not request.config.getoption("--allow-destructive"):
            pytest.skip(f"{SKIP_SAFETY}: разрушающий сценарий на реальной ККТ — запустите с --allow-destructive")
        entries = lab_entries(request.config.stash[INVENTORY_KEY], spec)  # a pool: each member it may lend
        entry = next((e for e in entries if not e.sacrificial), entries[0])
        if not entry.sacrificial:
            pytest.skip(
                f"{SKIP_SAFETY}: lab:{entry.id} ({entry.source}) не отмечена в инвентаре как жертвенная (sacrificial)"
            )
        return
    if node.get_closest_marker("destructive") and spec.kind != "emulator":
        if not request.config.getoption("--allow-destructive"):
            pytest.skip(
                f"{SKIP_SAFETY}: разрушающий сценарий на реальном устройстве: только --allow-destructive, жертвенный ФН"
            )
        raise HarnessError(
            "destructive scenarios on real devices need a lab inventory entry marked sacrificial "
            f"(serial checked against the device); {spec.kind}: specs cannot prove that"
            + (' (an inventory entry may sit on the place: labgrid = "PLACE")' if spec.kind == "labgrid" else "")
        )


def check_markers_after_connect(request: pytest.FixtureRequest, handle: DeviceHandle) -> None:
    node = request.node
    required = node.get_closest_marker("requires")
    if required:
        missing = [c for c in required.args if isinstance(c, Capability) and c not in handle.kkt.capabilities]
        if missing:
            names = ", ".join(c.value for c in missing)
            pytest.skip(f"{SKIP_CAPABILITY}: у устройства {handle.spec.model} нет: {names}")
    firmware = node.get_closest_marker("firmware")
    if firmware and "min" in firmware.kwargs:
        current = handle.kkt.info().firmware
        try:
            too_old = parse_version(current) < parse_version(firmware.kwargs["min"])
        except ValueError:
            too_old = False
        if too_old:
            pytest.skip(f"{SKIP_CAPABILITY}: прошивка {current} старше {firmware.kwargs['min']}")
