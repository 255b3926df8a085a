"""The ``rig`` fixture of the per-family driver tests (tests/test_pirit_driver.py,
tests/test_atol_driver_emulator.py): the family's real driver, connected ("start of work" done),
against its in-process emulator over a pty and over loopback TCP, opened with the public
``harness.open_kkt`` exactly as a lab script would.  A test gets ``(driver, core)``: the
``FiscalCore`` is there to pull paper, open the cover or move the clock behind the driver's back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pytest

from devices.emulator.build import Emulator
from devices.emulator.core import FiscalCore
from harness import open_kkt

LINK_TIMEOUT = 2.0  # opening the port and each write, seconds

Driver = TypeVar("Driver")


def driver_rig(model: str, driver: type[Driver], *, start: datetime, timeout_scale: float) -> Callable[..., Any]:
    """A ``rig`` fixture, parametrized over ``pty`` and ``tcp``: ``rig = driver_rig("kf", PiritDriver, ...)``
    at module level.  ``timeout_scale`` scales every vendor timeout of the driver's link."""

    @pytest.fixture(params=["pty", "tcp"])
    def rig(request: pytest.FixtureRequest) -> Iterator[tuple[Driver, FiscalCore]]:
        spec = f"emulator:{model}?clock={start.isoformat()}&transport={request.param}"
        with open_kkt(spec, timeout_scale=timeout_scale, link_timeout=LINK_TIMEOUT) as handle:
            assert isinstance(handle.kkt, driver), handle.kkt
            assert isinstance(handle.emulator, Emulator), handle.emulator
            yield handle.kkt, handle.emulator.core

    return rig
