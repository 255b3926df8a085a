"""Protocol families: how the stand reaches a model (driver, emulator front-end, trace decoder).

python-can style: a model id picks a profile, the profile names its protocol family, the family
module (``devices/<family>/family.py``) says which driver and which emulator front-end speak it.
Imported lazily so that a Pirit-only run never imports АТОЛ code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness.device import Kkt
from harness.transport import Transport

FAMILIES = ("pirit", "atol")


@dataclass(frozen=True)
class Family:
    name: str
    make_driver: Callable[..., Kkt]  # (transport, *, model, timeout_scale, host_clock) -> Kkt
    make_frontend: Callable[[Any], Any]  # (FiscalCore) -> FrontEnd (feed/pending/reset)
    describe: Callable[[bytes], str]  # one-line decoder for the wire trace
    baudrate: int
    inter_byte_timeout: float = 0.2


def load_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown protocol family {name!r} (known: {', '.join(FAMILIES)})")
    module = importlib.import_module(f"devices.{name}.family")
    family: Family = module.FAMILY
    return family


def make_driver(family: Family, transport: Transport, *, model: str, timeout_scale: float = 1.0,
                host_clock: Callable[[], datetime] | None = None) -> Kkt:
    kwargs: dict[str, Any] = {"model": model, "timeout_scale": timeout_scale}
    if host_clock is not None:
        kwargs["host_clock"] = host_clock
    return family.make_driver(transport, **kwargs)
