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
from harness.spec import DeviceSpec
from harness.versions import parse_version

from ..connect import DeviceHandle


def check_markers_before_connect(request: pytest.FixtureRequest, spec: DeviceSpec) -> None:
    node = request.node
    models = node.get_closest_marker("models")
    if models and spec.model not in models.args:
        pytest.skip(f"scenario is for models {', '.join(models.args)}; device is {spec.model}")
    if node.get_closest_marker("destructive") and spec.kind != "emulator":
        if not request.config.getoption("--allow-destructive"):
            pytest.skip("destructive scenario on a real device: run with --allow-destructive on a sacrificial ФН")
        raise HarnessError(
            "destructive scenarios on real devices need a lab inventory entry marked sacrificial "
            "(serial checked against the device); url: specs cannot prove that"
        )


def check_markers_after_connect(request: pytest.FixtureRequest, handle: DeviceHandle) -> None:
    node = request.node
    required = node.get_closest_marker("requires")
    if required:
        missing = [c for c in required.args if isinstance(c, Capability) and c not in handle.kkt.capabilities]
        if missing:
            names = ", ".join(c.value for c in missing)
            pytest.skip(f"device {handle.spec.model} lacks {names}")
    firmware = node.get_closest_marker("firmware")
    if firmware and "min" in firmware.kwargs:
        current = handle.kkt.info().firmware
        try:
            too_old = parse_version(current) < parse_version(firmware.kwargs["min"])
        except ValueError:
            too_old = False
        if too_old:
            pytest.skip(f"firmware {current} is older than {firmware.kwargs['min']}")
