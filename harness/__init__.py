"""kkt-hil, the stand itself (vendor-neutral).

The public entry point for lab scripts: :func:`open_kkt` — the same spec strings as ``--kkt``::

    from harness import open_kkt

    with open_kkt("emulator:kf") as h:
        print(h.kkt.status())

Imported lazily, so ``import harness.device`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connect import DeviceHandle, open_kkt

__all__ = ["DeviceHandle", "open_kkt"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import connect

        return getattr(connect, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
